"""stable-audio-tools custom metadata module, copied into `stable-audio` exports as custom_metadata.py.

stable-audio-tools calls `get_custom_metadata(info, audio)` for each file of an `audio_dir`
dataset; the prompt (and the rest of the crop's metadata) is in the JSON file beside the audio.
This file must stay self-contained: it runs inside the trainer, without this package.
"""

import json
import os


def get_custom_metadata(info, audio):
    sidecar = os.path.splitext(info["path"])[0] + ".json"
    with open(sidecar, encoding="utf-8") as handle:
        metadata = json.load(handle)
    return {"prompt": metadata["prompt"]}
