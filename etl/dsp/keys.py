"""Musical key names: the features stage's essentia keys and the chords stage's madmom keys are
stored the same way (sharp tonic, "F# minor", Camelot wheel number)."""

from __future__ import annotations

_FLAT_TO_SHARP = {"Db": "C#", "Eb": "D#", "Gb": "F#", "Ab": "G#", "Bb": "A#"}
# Camelot wheel: number per tonic, "B" for major, "A" for minor.
_CAMELOT_MAJOR = {"B": 1, "F#": 2, "C#": 3, "G#": 4, "D#": 5, "A#": 6, "F": 7, "C": 8, "G": 9, "D": 10, "A": 11, "E": 12}
_CAMELOT_MINOR = {"G#": 1, "D#": 2, "A#": 3, "F": 4, "C": 5, "G": 6, "D": 7, "A": 8, "E": 9, "B": 10, "F#": 11, "C#": 12}


def key_names(tonic: str, mode: str) -> tuple[str, str, str]:
    """A tonic (which may be flat) and a mode -> (sharp tonic, "F# minor", Camelot "11A")."""
    tonic = _FLAT_TO_SHARP.get(tonic, tonic)
    camelot = (f"{_CAMELOT_MAJOR[tonic]}B" if mode == "major" else f"{_CAMELOT_MINOR[tonic]}A")
    return tonic, f"{tonic} {mode}", camelot
