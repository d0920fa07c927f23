"""The effect of [fingerprint] min_share (issue 29) on the fingerprint tests' set of real recordings,
their copies (re-encoded, resampled, trimmed, looped, offset, quieter with a fade) and distinct
recordings: every candidate pair is verified once with a threshold near 0, then each threshold's
precision and recall over the true pairs are counted from the stored shares.

    python bench/duplicates_threshold.py WORK_DIR    # WORK_DIR: empty or absent; the set is written there
"""

from __future__ import annotations

import sys
from itertools import combinations
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.95)


def main() -> None:
    from etl.stages.fingerprint import testing
    from tests.helpers import CORPUS, rows, run_stages

    root = Path(sys.argv[1])
    truth = testing.build(CORPUS, root / "music")
    db = root / "etl.duckdb"
    run_stages(db, root / "music", ["ingest", "fingerprint"], **{"fingerprint.min_share": str(THRESHOLDS[0])})
    names = {r["track_id"]: r["name"] for r in rows(db, "SELECT track_id, parse_filename(path) AS name FROM tracks_v")}
    pairs = [(frozenset((names[r["track_id"]], names[r["other_track_id"]])), r["matched_share"])
             for r in rows(db, "SELECT track_id, other_track_id, matched_share FROM duplicate_pairs")]
    expected = {frozenset((a, b)) for a, b in combinations(sorted(truth), 2) if truth[a] == truth[b]}
    print(f"{len(truth)} files, {len(expected)} true pairs, {len(pairs)} candidate pairs verified")
    print("shares of true pairs:", sorted(round(s, 3) for p, s in pairs if p in expected))
    print("shares of other candidates:", sorted(round(s, 3) for p, s in pairs if p not in expected))
    for threshold in THRESHOLDS:
        found = {p for p, share in pairs if share >= threshold}
        hits = len(found & expected)
        print(f"min_share {threshold:4.2f}: {len(found):3d} pairs, precision {hits / max(len(found), 1):.3f}, "
              f"recall {hits / len(expected):.3f}")


if __name__ == "__main__":
    main()
