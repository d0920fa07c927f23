"""fluidsynth and Debian's General MIDI soundfont: how the stages' test fixtures render MIDI they
wrote (chords' progressions, beats' drum grooves) into real sampled instruments. Shared here
because no stage imports another; each stage's test-packages.txt installs
`fluidsynth fluid-soundfont-gm`."""

from __future__ import annotations

import shutil
from pathlib import Path

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")


def missing() -> str | None:
    """Why nothing can be rendered here (with how to install it), or None."""
    if shutil.which("fluidsynth") is None or not SOUNDFONT.exists():
        return "fluidsynth and the GM soundfont are needed: apt-get install -y fluidsynth fluid-soundfont-gm"
    return None


def fluidsynth() -> str:
    """The fluidsynth command."""
    why = missing()
    if why is not None:
        raise FileNotFoundError(why)
    return shutil.which("fluidsynth")
