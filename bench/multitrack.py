"""The multitrack stage against the bare library loop and against the stage at an earlier commit.

    python bench/multitrack.py [--today-ref 8802204] [--rounds 3] [FOLDER]

FOLDER: a folder of Frets on Fire song folders (song.ogg + guitar.ogg; default the demo's
fretsonfire-songs-sectoid). Each side runs in a fresh process with one maths thread, warm (ingest
and imports done before the clock starts), and reports the CPU seconds of the multitrack stage
alone: each song's stems summed into a rendered FLAC mix, every stem measured (levels, loudness).

- bare: soundfile decodes each stem once, sums them, writes the FLAC; numpy peak and power and
  pyloudnorm's integrated loudness per stem.
- today: the stage at `--today-ref` (it decoded every stem twice: once to measure, once to render).
- stage: this checkout's stage (each stem decoded once, measured on the rendering pass).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SINGLE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

STAGE_SIDE = """
import json, sys, time, uuid
from pathlib import Path
from etl.app import pipeline
from etl.engine.runner import RunOptions
src, db = Path(sys.argv[1]), Path(sys.argv[2])
config = pipeline.load_config(None, {"run.executor": "inline"})
run = lambda stages, **kw: pipeline.run(db, config, stage_names=stages, options=RunOptions(
    run_id=uuid.uuid4().hex[:12], executor="inline"), **kw)
run(["ingest"], sources=[src])
started = time.process_time()
[report] = run(["multitrack"])
print(json.dumps({"cpu_s": time.process_time() - started, "done": report.done}))
"""

BARE_SIDE = """
import json, sys, time
from pathlib import Path
import numpy as np, pyloudnorm, soundfile as sf
songs = sorted({p.parent for p in Path(sys.argv[1]).rglob("guitar.ogg")})
out = Path(sys.argv[2]); out.mkdir(exist_ok=True)
started = time.process_time()
for n, song in enumerate(songs):
    stems = [sf.read(p, dtype="float32", always_2d=True) for p in sorted(song.glob("*.ogg"))]
    length = max(len(a) for a, _ in stems)
    mix = np.zeros((length, max(a.shape[1] for a, _ in stems)), dtype=np.float32)
    for audio, _ in stems:
        mix[:len(audio)] += audio
        peak, power = float(np.abs(audio).max()), float(np.mean(audio.astype(np.float64) ** 2))
        lufs = pyloudnorm.Meter(stems[0][1]).integrated_loudness(audio)
    sf.write(out / f"{n}.flac", np.clip(mix, -1, 1), stems[0][1], subtype="PCM_16")
print(json.dumps({"cpu_s": time.process_time() - started, "done": len(songs)}))
"""


def side(code: str, args: list[str], pythonpath: Path) -> dict:
    env = {**__import__("os").environ, **SINGLE_THREAD, "PYTHONPATH": str(pythonpath)}
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", type=Path,
                        default=REPO / "data" / "demo-music" / "fretsonfire-songs-sectoid")
    parser.add_argument("--today-ref", default="8802204")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        today = Path(tmp) / "today"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(today), args.today_ref], cwd=REPO, check=True)
        try:
            best: dict[str, float] = {}
            for round_ in range(args.rounds):  # alternating sides, best of rounds
                runs = {"bare": side(BARE_SIDE, [str(args.folder), f"{tmp}/bare{round_}"], REPO),
                        "today": side(STAGE_SIDE, [str(args.folder), f"{tmp}/today{round_}.duckdb"], today),
                        "stage": side(STAGE_SIDE, [str(args.folder), f"{tmp}/stage{round_}.duckdb"], REPO)}
                for name, run in runs.items():
                    best[name] = min(best.get(name, float("inf")), run["cpu_s"])
                    print(f"round {round_ + 1}: {name:5s} {run['cpu_s']:6.2f} CPU-s ({run['done']} songs)")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(today)], cwd=REPO, check=False)
    print(f"best of {args.rounds}: bare {best['bare']:.2f} CPU-s · today ({args.today_ref}) {best['today']:.2f} · "
          f"stage {best['stage']:.2f} — stage/bare {best['stage'] / best['bare']:.2f}x, "
          f"today/stage {best['today'] / best['stage']:.2f}x")


if __name__ == "__main__":
    main()
