"""Chord progressions with known labels, written as MIDI (pretty_midi) and rendered to audio by
fluidsynth with Debian's General MIDI soundfont (fluid-soundfont-gm): a real synthesiser playing
sampled instruments, so the chords are known per beat while the audio is not a bare sum of sines.

`apt-get install -y fluidsynth fluid-soundfont-gm` (test-packages.txt: .ci/run installs them); the
tests skip without them (`missing()` says why; CI fails instead).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
PITCH_CLASSES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
# Scale degrees (semitones above the tonic, quality) of a cadence-rich progression in each mode:
# major I vi IV V I ii V I; minor i VI iv V i iv V i (harmonic minor's major dominant).
PROGRESSIONS = {"major": [(0, "maj"), (9, "min"), (5, "maj"), (7, "maj"), (0, "maj"), (2, "min"), (7, "maj"),
                          (0, "maj")],
                "minor": [(0, "min"), (8, "maj"), (5, "min"), (7, "maj"), (0, "min"), (5, "min"), (7, "maj"),
                          (0, "min")]}
# (melodic instrument, GM program) pairs: piano, strings, organ, guitar voicings of the same chords.
INSTRUMENTS = {"piano": 0, "strings": 48, "organ": 19, "guitar": 24}


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


def chord_label(root_pc: int, quality: str) -> str:
    """madmom's (Harte) label of a chord: "C:maj", "A:min"."""
    return f"{PITCH_CLASSES[root_pc % 12]}:{quality}"


def progression(tonic_pc: int, mode: str) -> list[tuple[int, str]]:
    """The (root pitch class, quality) chords of PROGRESSIONS[mode] in the key of `tonic_pc`."""
    return [((tonic_pc + degree) % 12, quality) for degree, quality in PROGRESSIONS[mode]]


def render(path: Path, chords: list[tuple[int, str]], bpm: float = 100.0, beats_per_chord: int = 4,
           instrument: str = "piano", lead_in_s: float = 0.0, sample_rate: int = 44100) -> tuple[list[float], list[str]]:
    """Write `chords` (root pitch class, "maj" | "min") as audio at `path` (WAV): each chord struck on
    every beat in close position around middle C with its root in the bass. Returns the beat times
    (seconds) and the chord label sounding over each beat."""
    import pretty_midi

    beat_s = 60.0 / bpm
    midi = pretty_midi.PrettyMIDI(initial_tempo=bpm)
    upper = pretty_midi.Instrument(program=INSTRUMENTS[instrument])
    bass = pretty_midi.Instrument(program=32)  # acoustic bass
    beats, labels = [], []
    for index, (root, quality) in enumerate(chords):
        third = 4 if quality == "maj" else 3
        start = lead_in_s + index * beats_per_chord * beat_s
        tones = sorted(60 + (root + interval) % 12 for interval in (0, third, 7))
        for beat in range(beats_per_chord):
            onset = start + beat * beat_s
            beats.append(onset)
            labels.append(chord_label(root, quality))
            for pitch in tones:
                upper.notes.append(pretty_midi.Note(velocity=80, pitch=pitch, start=onset, end=onset + beat_s * 0.95))
        bass.notes.append(pretty_midi.Note(velocity=90, pitch=36 + root, start=start,
                                           end=start + beats_per_chord * beat_s * 0.98))
    midi.instruments.extend([upper, bass])
    midi_path = path.with_suffix(".mid")
    midi.write(str(midi_path))
    subprocess.run([fluidsynth(), "-ni", "-q", "-g", "0.6", "-r", str(sample_rate), "-F", str(path),
                    str(SOUNDFONT), str(midi_path)], check=True, capture_output=True, timeout=120)
    return beats, labels
