"""Tempo at fast tempi on rendered drum grooves (issue 28.1): real sampled drums and bass through
fluidsynth at a known tempo (etl/stages/beats/testing.py), through the beats stage's worker
function. The octave rule (etl/stages/beats/README.md, "Tempo octave"): the DBN's octave stands;
a half-time groove reads at the tempo it is felt at, half the written one."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl.stages.beats import testing as grooves
from tests.helpers import require, skip_unless_ci

if grooves.missing():
    skip_unless_ci(grooves.missing())
require("madmom")

from etl.dsp import sourcefile  # noqa: E402
from etl.stages import beats  # noqa: E402

SECONDS = 20.0


def grid_of(path: Path) -> dict:
    import soundfile as sf

    info = sf.info(path)
    item = {"duration_s": info.duration, "sample_rate": info.samplerate, "source": sourcefile.describe(str(path))}
    return beats.process(item, beats.Params())


@pytest.mark.slow
@pytest.mark.parametrize("groove, bpm", [("dense", 200.0), ("straight", 190.0), ("swing", 174.0)])
def test_fast_grooves_read_their_tempo_not_half(tmp_path: Path, groove: str, bpm: float) -> None:
    truth = grooves.render_groove(tmp_path / f"{groove}.wav", groove, bpm, seconds=SECONDS)
    grid = grid_of(tmp_path / f"{groove}.wav")
    assert grid["bpm"] == pytest.approx(bpm, rel=0.005), grid["bpm"]
    assert grid["bpm_method"] == "fit" and grid["tempo_steady"] and grid["meter"] == 4
    # every written beat found once (a half-tempo grid would hold half of them)
    assert abs(grid["n_beats"] - len(truth)) <= 2, (grid["n_beats"], len(truth))


@pytest.mark.slow
def test_a_half_time_groove_reads_its_felt_tempo(tmp_path: Path) -> None:
    grooves.render_groove(tmp_path / "halftime.wav", "halftime", 174.0, seconds=SECONDS)
    grid = grid_of(tmp_path / "halftime.wav")
    assert grid["bpm"] == pytest.approx(87.0, rel=0.005), grid["bpm"]
    assert grid["tempo_steady"]
