"""A stage's outputs do not depend on how many BLAS threads the process that runs it has (issue 24).

With OpenBLAS's Haswell kernels (what AVX2 machines get) a matrix product's float32 rounding depends
on the thread count (etl/engine/blas.py has the measurements). An inline run had 2 threads until
the features stage limited them to 1 for the rest of the process, so on such a machine a fresh run
after the first gave other beats and chords output fingerprints (test_change).

The condition is made here on any x86-64 machine: a child process with OPENBLAS_CORETYPE=Haswell
computes one track's beats and one 10 s clip's chords and key through the engine's executors: its
own BLAS at 2 threads, then at 1 (as after features' worker setup), and in a process pool's worker.
Every output fingerprint must be the same. Before the engine pinned one BLAS thread, the beats'
and the chords' fingerprints at 2 threads (and in the worker, 2 threads on 2 cores) differed from
those at 1.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from typing import Any

import pytest

from tests.helpers import REPO, corpus, require

TRACK = ("mp3_tagged", "wesnoth_traveling_minstrels_30s_lame.mp3")


def _run(stage_name: str, settings: dict[str, Any], item: dict[str, Any], executor: str) -> tuple[str, Any]:
    """(output fingerprints, result) of one item run through an engine executor (`inline` or `process`)."""
    from etl.app import registry
    from etl.engine import lineage
    from etl.engine.pool import InlineExecutor, ProcessExecutor

    stage = next(s for s in registry.all_stages() if s.name == stage_name)
    params = stage.Params(**settings)
    pool = (InlineExecutor(stage.process, params, stage.init_worker) if executor == "inline"
            else ProcessExecutor(stage.process, params, stage.init_worker, workers=1))
    try:
        [outcome] = pool.submit([item]).result()
    finally:
        pool.shutdown()
    assert outcome.status == "done", outcome.error
    return json.dumps(lineage.outputs(stage, outcome.status, outcome.result, outcome.error, item)), outcome.result


def child() -> None:
    """Runs in the child process: prints {condition: [beats' fingerprints, chords' fingerprints]}."""
    import tempfile

    import soundfile as sf
    from threadpoolctl import threadpool_limits

    from etl.dsp.sourcefile import describe

    path = str(corpus(*TRACK))
    info = sf.info(path)
    track = {"item_id": "track", "track_id": "track", "duration_s": info.duration, "sample_rate": info.samplerate,
             "source": describe(path), "path": path}
    beats_settings = {"meters": (3, 4)}
    chords_settings = {"chord_model": "deepchroma"}  # the madmom DNN behind the chords, ~200x the CNN's speed
    with tempfile.TemporaryDirectory() as folder:
        clip_path = os.path.join(folder, "clip.wav")  # a crop's length: 10 s of the track
        sf.write(clip_path, sf.read(path, frames=10 * info.samplerate)[0], info.samplerate)

        def both(executor: str) -> list[str]:
            beats, grid = _run("beats", beats_settings, track, executor)
            beat_times = [t for t in grid["beat_times_s"] if t < 10]
            clip = {"item_id": "clip", "track_id": "track", "path": clip_path, "beat_times_s": beat_times}
            return [beats, _run("chords", chords_settings, clip, executor)[0]]

        results = {}
        threadpool_limits(2, user_api="blas")
        results["inline, 2 BLAS threads"] = both("inline")
        threadpool_limits(1, user_api="blas")
        results["inline, 1 BLAS thread"] = both("inline")
        results["process pool worker"] = both("process")
    print(json.dumps(results))


@pytest.mark.timeout(600)
def test_outputs_do_not_depend_on_the_blas_thread_count() -> None:
    require("madmom")
    corpus(*TRACK)
    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("OPENBLAS_CORETYPE=Haswell (the kernels whose products depend on the thread count) is x86-64 only")
    env = {**os.environ, "OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_NUM_THREADS": "2",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", "from tests.integration.test_blas_threads import child; child()"],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=540)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    first = next(iter(results.values()))
    assert all(value == first for value in results.values()), json.dumps(results, indent=1)
