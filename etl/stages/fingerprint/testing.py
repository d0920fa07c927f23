"""The fingerprint stage's test set: real recordings from the shared corpus, each copied as another
file the way libraries come to hold one recording twice (re-encoded to MP3 128k, Opus and FLAC,
resampled, trimmed, cut as a loop, delayed with a gain change and a fade), beside distinct
recordings (two pieces by one artist among them) that must not be grouped. soundfile writes every
format, so no ffmpeg is needed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

LIBROSA = "librosa_data"
# name -> corpus file: the originals
ORIGINALS = {
    "vibe_ace": f"{LIBROSA}/Kevin_MacLeod_-_Vibe_Ace.hq.ogg",
    "sugar_plum": f"{LIBROSA}/Kevin_MacLeod_-_P_I_Tchaikovsky_Dance_of_the_Sugar_Plum_Fairy.hq.ogg",
    "hungarian": f"{LIBROSA}/Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).hq.ogg",
    "minstrels": "mp3_tagged/wesnoth_traveling_minstrels_30s_lame.mp3",
    "deprecation": "mp3_tagged/singularity_deprecation_30s_mapmeta.mp3",
}


def _resample(x: np.ndarray, rate: int, to_rate: int) -> np.ndarray:
    from etl.dsp.audio import resample

    return resample(x, rate, to_rate).astype("float32")


def _fade_out(x: np.ndarray, seconds: float, rate: int) -> np.ndarray:
    n = min(len(x), int(seconds * rate))
    ramp = np.ones(len(x), dtype="float32")
    ramp[len(x) - n:] = np.linspace(1.0, 0.0, n, dtype="float32")
    return x * ramp[:, None]


def build(corpus_dir: Path, out: Path) -> dict[str, str]:
    """Write the set into `out`; returns {file name: the original it copies} (an original is its own)."""
    import soundfile as sf

    out.mkdir(parents=True, exist_ok=True)
    truth: dict[str, str] = {}

    def write(name: str, original: str, x: np.ndarray, rate: int, **kwargs: object) -> None:
        sf.write(out / name, np.clip(x, -1, 1), rate, **kwargs)
        truth[name] = original

    for original, relative in ORIGINALS.items():
        x, rate = sf.read(corpus_dir / relative, dtype="float32", always_2d=True)
        write(f"{original}.flac", original, x, rate)
        if original == "vibe_ace":  # every kind of copy of one recording
            write("vibe_ace_128k.mp3", original, x, rate, format="MP3", bitrate_mode="CONSTANT",
                  compression_level=0.9)
            write("vibe_ace.opus", original, _resample(x, rate, 48000), 48000, format="OGG", subtype="OPUS")
            write("vibe_ace_22k.wav", original, _resample(x, rate, 22050), 22050, subtype="PCM_16")
            write("vibe_ace_loop.flac", original, x[int(12.3 * rate):int(32.3 * rate)], rate)  # a 20 s loop
            delayed = np.concatenate([np.zeros((int(3.217 * rate), x.shape[1]), "float32"), x])
            write("vibe_ace_delayed_quiet_fade.flac", original, _fade_out(delayed * 10 ** (-9 / 20), 10, rate), rate)
        if original == "sugar_plum":  # an edit: the first 45 s, mono, faded, as MP3
            write("sugar_plum_edit.mp3", original, _fade_out(x[:45 * rate].mean(axis=1, keepdims=True), 5, rate),
                  rate, format="MP3")
        if original == "minstrels":  # trimmed both ends, louder, resampled to 48 kHz
            write("minstrels_trimmed.ogg", original,
                  _resample(x[int(4.1 * rate):int(26 * rate)] * 1.6, rate, 48000), 48000, format="OGG")
    return truth
