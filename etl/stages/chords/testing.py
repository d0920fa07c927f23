"""Chord progressions with known labels, written as MIDI (pretty_midi) and rendered to audio by
fluidsynth with Debian's General MIDI soundfont (fluid-soundfont-gm): a real synthesiser playing
sampled instruments, so the chords are known per beat while the audio is not a bare sum of sines.

`apt-get install -y fluidsynth fluid-soundfont-gm` (test-packages.txt: .ci/run installs them); the
tests skip without them (`missing()` says why; CI fails instead).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from etl.dsp.fluidsynth import SOUNDFONT, fluidsynth, missing

PITCH_CLASSES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
# Scale degrees (semitones above the tonic, quality) of a cadence-rich progression in each mode:
# major I vi IV V I ii V I; minor i VI iv V i iv V i (harmonic minor's major dominant).
PROGRESSIONS = {"major": [(0, "maj"), (9, "min"), (5, "maj"), (7, "maj"), (0, "maj"), (2, "min"), (7, "maj"),
                          (0, "maj")],
                "minor": [(0, "min"), (8, "maj"), (5, "min"), (7, "maj"), (0, "min"), (5, "min"), (7, "maj"),
                          (0, "min")]}
# (melodic instrument, GM program) pairs: piano, strings, organ, guitar voicings of the same chords.
INSTRUMENTS = {"piano": 0, "strings": 48, "organ": 19, "guitar": 24}


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


# Pieces of music21's corpus (its own files, installed with it) rendered as tracks with a key known from
# the score: the first key signature names a major key and its relative minor, and the bass of the
# piece's last sound, on one of their tonics, picks which (classical pieces close on the tonic, a minor
# one often on a major chord: the bass still names it). A piece whose last signature differs from its
# first, or whose last bass is neither tonic, has no key by this rule and is left out. Bach's chorales
# are left out too: they are a held-back set, never in the suite.
def parse_score(corpus_path: str) -> Any:
    """A piece of music21's corpus ("mozart/k80/movement1.mxl") as a music21 Score."""
    from music21 import corpus

    return corpus.parse(corpus_path)


def score_key(score: Any) -> str | None:
    """The stated key of a music21 Score ("F# minor", tonic spelled with sharps), or None."""
    from music21 import key

    signatures = list(score.recurse().getElementsByClass(key.KeySignature))
    if not signatures or signatures[-1].sharps != signatures[0].sharps:
        return None
    last_pitches = [p for part in score.parts for n in list(part.recurse().notes)[-1:] for p in n.pitches]
    if not last_pitches:
        return None
    bass = min(last_pitches, key=lambda p: p.ps).pitchClass
    major = (7 * signatures[0].sharps) % 12
    if bass == major:
        return f"{PITCH_CLASSES[bass]} major"
    if bass == (major + 9) % 12:
        return f"{PITCH_CLASSES[bass]} minor"
    return None


def render_score(score: Any, path: Path, max_quarters: float = 160.0, sample_rate: int = 44100,
                 timeout_s: float = 60.0) -> float:
    """Render the opening of a music21 Score (its measures up to `max_quarters` quarter notes,
    at the score's own tempo marks or music21's 120 per minute) to audio at `path` (WAV) with each
    part's General MIDI instrument. Returns the seconds rendered."""
    import soundfile as sf

    first_part = score.parts[0]
    last = None
    for measure in first_part.getElementsByClass("Measure"):
        if measure.offset >= max_quarters:
            break
        last = measure.number
    excerpt = score.measures(0, last) if last is not None else score
    # The written music once through: a repeat cut off by the excerpt would leave music21's MIDI writer
    # a repeat it cannot expand (and the opening is what is wanted, not its repeat).
    from music21 import bar, repeat

    for measure in excerpt.recurse().getElementsByClass("Measure"):
        for side in ("leftBarline", "rightBarline"):
            if isinstance(getattr(measure, side), bar.Repeat):
                setattr(measure, side, None)
    for mark in list(excerpt.recurse().getElementsByClass(repeat.RepeatExpression)):
        mark.activeSite.remove(mark)
    midi_path = path.with_suffix(".mid")
    excerpt.write("midi", fp=str(midi_path))
    subprocess.run([fluidsynth(), "-ni", "-q", "-g", "0.6", "-r", str(sample_rate), "-F", str(path),
                    str(SOUNDFONT), str(midi_path)], check=True, capture_output=True, timeout=timeout_s)
    return sf.info(str(path)).duration
