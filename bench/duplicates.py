"""Near-duplicate search (issue 29): the fingerprint stage's cost per track, and the time to form
groups on a synthetic store.

    python bench/duplicates.py per-track [--rounds 3] [FOLDER ...]
    python bench/duplicates.py groups [--tracks 10000 40000] [--items 480] [--batch 32] [--planted 0.05]

per-track: side by side in one process, alternating, best round of each (CPU seconds): "stage", the
stage's worker (`fingerprint.process`: the file checked unchanged before and after, decoded in
blocks by etl.dsp.audio, mixed to mono, fed to Chromaprint) and "bare", a loop of the same calls
without the stage (soundfile reads the whole file, mono, int16, Fingerprinter.start / feed / finish,
decode_fingerprint). FOLDER defaults to ../shared/corpus/librosa_data and mp3_tagged.

groups: a store of --tracks random fingerprints of --items sub-fingerprints (480: a minute), with a
--planted share of them copies of another (random bits flipped at an MP3-like 3 %, shifted by up to
20 items, trimmed to 70-100 %). "one pass" writes them all as one batch through the stage's write.sql
(a recomputation: the index join over everything at once); "per batch" times the stage's write of
--batch new tracks (clear, insert, index, search) into that store, as a run's commits do; then the
groups view over the pairs. Prints the planted pairs found (recall) and the pairs found that were
not planted.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def bare(path: str) -> list[int]:
    import chromaprint
    import numpy as np
    import soundfile as sf

    x, rate = sf.read(path, dtype="float32", always_2d=True)
    printer = chromaprint.Fingerprinter()
    printer.start(rate, 1)
    printer.feed(np.clip(np.rint(x.mean(axis=1) * 32767.0), -32768, 32767).astype("<i2").tobytes())
    items, _ = chromaprint.decode_fingerprint(printer.finish())
    return [v & 0xFFFFFFFF for v in items]


def per_track(folders: list[Path], rounds: int) -> None:
    import soundfile as sf

    from etl.dsp import sourcefile
    from etl.stages import fingerprint

    files = sorted(str(p) for f in folders for p in f.iterdir() if p.suffix in (".ogg", ".mp3", ".flac", ".wav"))
    audio_s = sum(sf.info(p).duration for p in files)
    items = [{"path": p, "source": sourcefile.describe(p), "duration_s": sf.info(p).duration} for p in files]
    params = fingerprint.Params()
    stage = lambda: [fingerprint.process(item, params) for item in items]  # noqa: E731
    plain = lambda: [bare(p) for p in files]  # noqa: E731
    assert [r["fingerprint"] for r in stage()] == plain()  # like for like: the same fingerprints
    best = {"stage": float("inf"), "bare": float("inf")}
    for _ in range(rounds):
        for name, side in (("stage", stage), ("bare", plain)):
            start = time.process_time()
            side()
            best[name] = min(best[name], time.process_time() - start)
    print(f"{len(files)} tracks, {audio_s:.0f} s of audio; best of {rounds} rounds, CPU seconds")
    for name, cpu_s in best.items():
        print(f"  {name:6s} {cpu_s:6.2f} s  {1000 * cpu_s / len(files):6.1f} ms/track  "
              f"{1000 * cpu_s / audio_s:5.2f} ms per audio second  ({audio_s / cpu_s:5.0f}x real time)")


def synthetic(n: int, n_items: int, planted: float, seed: int = 1):
    """(arrow table shaped like new_fingerprints, {(copy, original)})."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    prints = [rng.integers(0, 2**32, n_items, dtype=np.uint64) for _ in range(n)]
    pairs: set[tuple[int, int]] = set()
    copies: set[int] = set()
    originals: set[int] = set()
    for copy in rng.choice(n, int(n * planted), replace=False):
        original = int(rng.integers(n))
        if original == copy or original in copies or int(copy) in originals:  # one level: copies of originals
            continue
        copies.add(int(copy))
        originals.add(original)
        source = prints[original]
        shift = int(rng.integers(0, 20))
        keep = min(int(len(source) * rng.uniform(0.7, 1.0)), len(source) - shift)
        flips = (rng.random((keep, 32)) < 0.03) @ (1 << np.arange(32, dtype=np.uint64))
        prints[copy] = source[shift:shift + keep] ^ flips.astype(np.uint64)
        pairs.add((int(copy), original))
    ids = [f"{i:08d}" for i in range(n)]
    table = pa.table({"track_id": ids, "algorithm": pa.array([1] * n, pa.int32()),
                      "item_s": [4096 / 3 / 11025] * n, "n_items": pa.array([len(p) for p in prints], pa.int32()),
                      "fingerprint": pa.array([p.astype(np.uint32) for p in prints], pa.list_(pa.uint32()))})
    # Two copies of one original are duplicates of each other too.
    truth = {frozenset((ids[a], ids[b])) for a, b in pairs}
    truth |= {frozenset((ids[a], ids[b])) for a, o in pairs for b, p in pairs if o == p and a < b}
    return table, truth


def write(con, batch, params, clear: bool) -> None:
    import pyarrow as pa

    from etl.engine.resources import registered, sql, used_binds
    from etl.stages import fingerprint

    binds = {"params_hash": "bench", **fingerprint.binds(params)}
    names = ["clear_pairs", "clear_index", "clear_fingerprints"] if clear else []
    cleared = pa.table({"item_id": batch.column("track_id")})
    with registered(con, new_fingerprints=batch, cleared=cleared):
        for name in [*names, "insert_fingerprints", "insert_index", "insert_pairs"]:
            text = sql("stages/fingerprint/write.sql", name)
            con.execute(text, used_binds(text, binds))


def groups(sizes: list[int], n_items: int, batch_size: int, planted: float) -> None:
    import duckdb

    from etl.stages import fingerprint

    migration = sorted((REPO / "etl/stages/fingerprint/migrations").glob("*.sql"))
    views = (REPO / "etl/stages/fingerprint/views.sql").read_text().split("-- name: tracks_v.select")[0]
    params = fingerprint.Params()
    for n in sizes:
        table, truth = synthetic(n + batch_size, n_items, planted)
        con = duckdb.connect()
        for path in migration:
            con.execute(path.read_text())
        con.execute(views.split("-- name: macros", 1)[1])
        start = time.perf_counter()
        write(con, table.slice(0, n), params, clear=False)
        one_pass_s = time.perf_counter() - start
        index_rows = con.sql("SELECT count(*) FROM fingerprint_index").fetchall()[0][0]
        start = time.perf_counter()
        write(con, table.slice(n, batch_size), params, clear=True)
        batch_s = time.perf_counter() - start
        start = time.perf_counter()
        n_groups, largest = con.sql("SELECT count(DISTINCT duplicate_group), max(group_size) FROM duplicate_groups_v").fetchall()[0]
        view_s = time.perf_counter() - start
        found = {frozenset(p) for p in con.sql("SELECT track_id, other_track_id FROM duplicate_pairs").fetchall()}
        print(f"{n:7d} tracks ({index_rows / 1e6:.1f} M index rows): one pass {one_pass_s:6.1f} s "
              f"({1e6 * one_pass_s / n:5.0f} µs/track); a batch of {batch_size} into it {batch_s:5.2f} s; "
              f"groups view {view_s:5.2f} s ({n_groups} groups, largest {largest}); "
              f"planted found {len(found & truth)}/{len(truth)}, others {len(found - truth)}")
        con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["per-track", "groups"])
    parser.add_argument("folders", nargs="*", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tracks", type=int, nargs="+", default=[10000, 40000])
    parser.add_argument("--items", type=int, default=480)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--planted", type=float, default=0.05)
    args = parser.parse_args()
    if args.what == "per-track":
        corpus = REPO.parent / "shared" / "corpus"
        per_track(args.folders or [corpus / "librosa_data", corpus / "mp3_tagged"], args.rounds)
    else:
        groups(args.tracks, args.items, args.batch, args.planted)


if __name__ == "__main__":
    main()
