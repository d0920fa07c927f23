"""Drum grooves at known tempi, written as MIDI (pretty_midi) and rendered by fluidsynth with
Debian's General MIDI soundfont: real sampled drum kits and a bass, so the tempo is known exactly
while the audio is not a click track. Fast tempi (160-200 BPM) with dense drums, swing and
half-time feels are where beat trackers read half (or double) the tempo: the tempo test
(tests/integration/test_tempo_octave.py) and bench/tempo_truth.py measure the beats stage on them.

Rendering goes through etl/dsp/fluidsynth.py (the command, the soundfont, `missing()`), as the
chords stage's fixtures do: test-packages.txt installs `fluidsynth fluid-soundfont-gm`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from etl.dsp.fluidsynth import SOUNDFONT, fluidsynth, missing

__all__ = ["GROOVES", "TEMPI", "missing", "render_groove"]

# General MIDI drum keys (channel 10)
KICK, SNARE, CLOSED_HAT, OPEN_HAT, CRASH, RIDE, LOW_TOM, MID_TOM, HIGH_TOM = 36, 38, 42, 46, 49, 51, 45, 47, 50

# Each groove: one 4/4 bar as (drum key, position in beats, velocity); a fill replaces every 4th bar.
# "straight": 16th hats, kick on 1 and 3 (and the "and" of 3), snare on 2 and 4 (drum and bass, punk).
# "dense": double kick in 16ths under the same backbeat and 16th hats (metal: the miss of issue 28).
# "swing": ride in triplet-feel 8ths (on the beat and its last third), kick 1 and 3, snare 2 and 4.
# "halftime": snare on 3 only, kick on 1 and the "and" of 2, 16th hats: a groove that feels half as fast.
SIXTEENTHS = [i / 4 for i in range(16)]
GROOVES: dict[str, list[tuple[int, float, int]]] = {
    "straight": [(CLOSED_HAT, t, 100 if t % 1 == 0 else 70) for t in SIXTEENTHS]
    + [(KICK, 0.0, 110), (KICK, 2.0, 105), (KICK, 2.5, 90), (SNARE, 1.0, 110), (SNARE, 3.0, 110)],
    "dense": [(CLOSED_HAT, t, 95 if t % 1 == 0 else 75) for t in SIXTEENTHS]
    + [(KICK, t, 100) for t in SIXTEENTHS] + [(SNARE, 1.0, 115), (SNARE, 3.0, 115), (CRASH, 0.0, 90)],
    "swing": [(RIDE, t + third, 95 if third == 0 else 70) for t in range(4) for third in (0.0, 2 / 3)]
    + [(CLOSED_HAT, 1.0, 70), (CLOSED_HAT, 3.0, 70), (KICK, 0.0, 100), (KICK, 2.0, 95),
       (SNARE, 1.0, 100), (SNARE, 3.0, 100)],
    "halftime": [(CLOSED_HAT, t, 95 if t % 1 == 0 else 70) for t in SIXTEENTHS]
    + [(KICK, 0.0, 110), (KICK, 1.5, 95), (SNARE, 2.0, 115)],
}
# A fill: 16th snare and toms over the bar's second half, after the first half of the groove.
FILL = [(drum, 2.0 + i / 4, 90 + 3 * i) for i, drum in enumerate([SNARE, SNARE, HIGH_TOM, HIGH_TOM, MID_TOM, MID_TOM,
                                                                    LOW_TOM, LOW_TOM])]
TEMPI = (160.0, 174.0, 190.0, 200.0)
BASS_ROOTS = (40, 40, 43, 38)  # E2 E2 G2 D2: one root per bar, in turn


def render_groove(path: Path, groove: str, bpm: float, seconds: float = 30.0, lead_in_s: float = 0.5,
                  sample_rate: int = 44100) -> list[float]:
    """Write `groove` at `bpm` as audio at `path` (WAV): drums, and a bass in 8ths (swung with the
    swing groove, on 1 and the "and" of 2 in half time) on each bar's root. Returns the beat times."""
    import pretty_midi

    beat_s = 60.0 / bpm
    midi = pretty_midi.PrettyMIDI(initial_tempo=bpm)
    drums = pretty_midi.Instrument(program=0, is_drum=True)
    bass = pretty_midi.Instrument(program=33)  # electric bass (finger)
    bars = int((seconds - lead_in_s) / (4 * beat_s))
    bass_steps = {"swing": [t + third for t in range(4) for third in (0.0, 2 / 3)], "halftime": [0.0, 1.5, 3.0]}
    for bar in range(bars):
        start = lead_in_s + 4 * bar * beat_s
        pattern = GROOVES[groove]
        if bar % 4 == 3:
            pattern = [hit for hit in pattern if hit[1] < 2.0] + FILL
        for drum, position, velocity in pattern:
            onset = start + position * beat_s
            drums.notes.append(pretty_midi.Note(velocity=velocity, pitch=drum, start=onset, end=onset + 0.1))
        steps = bass_steps.get(groove, [i / 2 for i in range(8)])
        for index, position in enumerate(steps):
            onset = start + position * beat_s
            length = (steps[index + 1] if index + 1 < len(steps) else 4.0) - position
            bass.notes.append(pretty_midi.Note(velocity=95, pitch=BASS_ROOTS[bar % 4] + (12 if index % 4 == 3 else 0),
                                               start=onset, end=onset + 0.9 * length * beat_s))
    midi.instruments.extend([drums, bass])
    midi_path = path.with_suffix(".mid")
    midi.write(str(midi_path))
    subprocess.run([fluidsynth(), "-ni", "-q", "-g", "0.6", "-r", str(sample_rate), "-F", str(path),
                    str(SOUNDFONT), str(midi_path)], check=True, capture_output=True, timeout=120)
    return [lead_in_s + i * beat_s for i in range(4 * bars)]
