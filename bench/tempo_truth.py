"""Tempo against the truth: the beats stage's BPM (and its octave) on music whose tempo is known.

    python bench/tempo_truth.py [--ref 05b43ca] [--no-render] [--essentia] [FOLDER ...]

Material: drum grooves rendered from MIDI at 160, 174, 190 and 200 BPM (etl/stages/beats/testing.py:
16th hats, a double-kick "dense" groove, swing, half time; each with a bass; 40 s) unless
--no-render, and every Frets on Fire song under FOLDER (a song.ogg beside a notes.mid holding one
tempo: that tempo is the truth; `fetch-debian-music` in ../shared/corpus fetches the sectoid and
muldjord packs, data/demo-music holds the sectoid one).
Sides, each over the whole material:
  - "stage": this checkout's beats stage (`beats.process`: segments, network, DBN, tempo);
  - "ref": the stage at --ref (05b43ca: stage version 2, before the forward state was carried);
  - "madmom": bare madmom on the whole file: RNNDownBeatProcessor, DBNDownBeatTrackingProcessor
    (60 / median interval), and its tempo histogram's top (TempoEstimationProcessor on the beat
    activation, the figure madmom itself reports as the tempo).
Octave evidence per file (what the store or the stage could know without the truth): the tempo
histogram's weight at the read tempo, twice and half it; the beat activation at the midpoints
between beats against that at the beats (a grid read at half the tempo skips real beats there);
the bar length in seconds; with --essentia, RhythmExtractor2013 (the features stage's crop
estimate) over the file. Figures: how many within 4 % and 0.5 %, and the octave errors.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from library import REPO, stage_at

sys.path.insert(0, str(REPO))
TODAY = "05b43ca"  # stage version 2 (slope fit, network restarted cold in each segment)


def songs(folders: list[Path]) -> list[tuple[Path, float]]:
    """(song.ogg, tempo) for each Frets on Fire song folder whose notes.mid holds a single tempo."""
    import pretty_midi

    found = []
    for notes in sorted(p for folder in folders for p in folder.rglob("notes.mid")):
        tempi = pretty_midi.PrettyMIDI(str(notes)).get_tempo_changes()[1]
        if len(set(round(t, 3) for t in tempi)) == 1 and (notes.parent / "song.ogg").exists():
            found.append((notes.parent / "song.ogg", float(tempi[0])))
    return found


def rendered(dest: Path) -> list[tuple[Path, float]]:
    from etl.stages.beats.testing import GROOVES, TEMPI, render_groove

    made = []
    for groove in GROOVES:
        for bpm in TEMPI:
            path = dest / f"{groove}_{bpm:.0f}.wav"
            render_groove(path, groove, bpm, seconds=40.0)
            made.append((path, bpm))
    return made


def octave(read: float, truth: float) -> str:
    """How a reading relates to the truth: "ok" within 4 %, "half"/"double"/... or "wrong"."""
    for name, factor in (("ok", 1.0), ("half", 0.5), ("double", 2.0), ("two thirds", 2 / 3), ("three halves", 1.5)):
        if abs(read / (truth * factor) - 1) <= 0.04:
            return name
    return "wrong"


def measure(path: Path, modules: dict[str, object], essentia: bool) -> dict:
    import numpy as np
    import soundfile as sf
    from madmom.features.tempo import CombFilterTempoHistogramProcessor, TempoEstimationProcessor

    from etl.dsp import audio, sourcefile
    from etl.stages import beats

    info = sf.info(path)
    item = {"duration_s": info.duration, "sample_rate": info.samplerate, "source": sourcefile.describe(str(path))}
    row: dict = {}
    grid = None
    for name, module in modules.items():
        params = module.Params()  # type: ignore[attr-defined]
        if name == "stage":
            grid = module.process(item, params)  # type: ignore[attr-defined]
            row["stage"] = (grid["bpm"], grid["bpm_method"], grid["bpm_confidence"])
        else:
            other = module.summarise(module.find_beats(str(path), info.duration, info.samplerate, params), params)  # type: ignore[attr-defined]
            row[name] = (other["bpm"], other["bpm_method"], other["bpm_confidence"])
    network, tracker = beats.loaded(beats.Params())
    data, rate = sf.read(path, dtype="float32", always_2d=True)
    activations = network(audio.resample(data.mean(axis=1), rate, 44100))
    whole = tracker(activations)[:, 0]
    beat = activations.sum(axis=1)  # the downbeat network's beat and downbeat classes: any beat
    histogram_processor = CombFilterTempoHistogramProcessor(min_bpm=40.0, max_bpm=250.0, fps=100)
    histogram = TempoEstimationProcessor(fps=100, histogram_processor=histogram_processor)(beat)
    row["madmom"] = (60.0 / float(np.median(np.diff(whole))), float(histogram[0, 0]))

    def weight(bpm: float) -> float:
        near = histogram[np.abs(histogram[:, 0] / bpm - 1) <= 0.04]
        return float(near[:, 1].max()) if len(near) else 0.0

    def peak(t: float) -> float:
        frame = int(round(t * 100))
        return float(beat[max(0, frame - 3):frame + 4].max())

    assert grid is not None
    times = np.asarray(grid["beat_times_s"])
    bpm = grid["bpm"]
    row["evidence"] = {
        "hist": [round(weight(bpm / 2), 3), round(weight(bpm), 3), round(weight(2 * bpm), 3)],
        "midpoints": round(np.mean([peak(t) for t in (times[1:] + times[:-1]) / 2]) / np.mean([peak(t) for t in times]), 3),
        "bar_s": round(float(np.median(np.diff(grid["downbeat_times_s"]))), 2) if grid["n_bars"] > 1 else None,
    }
    if essentia:
        import essentia.standard as es

        mono44 = audio.resample(data.mean(axis=1), rate, 44100).astype(np.float32)
        row["essentia"] = float(es.RhythmExtractor2013(method="degara")(mono44)[0])
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path)
    parser.add_argument("--ref", default=TODAY, help="the commit whose beats stage is the 'ref' side ('' for none)")
    parser.add_argument("--no-render", action="store_true", help="leave out the rendered grooves")
    parser.add_argument("--essentia", action="store_true", help="also essentia's RhythmExtractor2013 per file")
    parser.add_argument("--json", type=Path, help="write the rows here too")
    args = parser.parse_args()
    from etl.stages import beats

    with tempfile.TemporaryDirectory() as tmp:
        material = ([] if args.no_render else rendered(Path(tmp))) + songs(args.folders)
        modules: dict[str, object] = {"stage": beats}
        if args.ref:
            sys.path.insert(0, str(stage_at(args.ref, "beats", Path(tmp) / "ref")))
            import beats_today

            modules["ref"] = beats_today
        tallies: dict[str, list[str]] = {}
        rows = []
        for path, truth in material:
            row = measure(path, modules, args.essentia)
            label = path.stem if path.name != "song.ogg" else path.parent.name
            rows.append({"file": label, "truth": truth, **row})
            readings = {name: row[name][0] for name in modules} | {"madmom DBN": row["madmom"][0],
                                                                 "madmom histogram": row["madmom"][1]}
            if args.essentia:
                readings["essentia"] = row["essentia"]
            cells = []
            for name, read in readings.items():
                tallies.setdefault(name, []).append(
                    "exact" if abs(read / truth - 1) <= 0.005 else octave(read, truth))
                cells.append(f"{name} {read:.2f}" + (f" {row[name][1]} {row[name][2]:.2f}" if name in modules else ""))
            print(f"{label:24s} truth {truth:6.2f} | " + " | ".join(cells) + f" | evidence {json.dumps(row['evidence'])}",
                  flush=True)
        print(f"\n{len(material)} files; within 4 % / within 0.5 % / octave errors (half, double):")
        for name, marks in tallies.items():
            within = sum(m in ("ok", "exact") for m in marks)
            print(f"  {name:18s} {within}/{len(marks)}  {marks.count('exact')}/{len(marks)}  "
                  f"half {marks.count('half')}, double {marks.count('double')}, other {len(marks) - within - marks.count('half') - marks.count('double')}")
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
