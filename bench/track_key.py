"""Track keys (issue 28.2): tracks_v.key_name against the crops' agreed keys voted and against bare
essentia over the whole file, on rendered pieces of music21's corpus and real recordings with a stated key.

    python bench/track_key.py [--quarters 160] [--limit N] [--work DIR]

The pieces: every piece of music21's corpus by the composers of tests/key_eval.py `COMPOSERS` (not
Bach: his chorales are a held-back set) whose score states a key by etl/stages/chords/testing.py
`score_key` (first key signature, the last bass note on one of its tonics), its opening (measures up to
--quarters quarter notes) rendered by fluidsynth with the GM soundfont; and the three recordings of
../shared/corpus/librosa_data whose publisher states a key (tests/key_eval.py `REAL`; the trumpet
loop's "in F" names no mode and is scored on its tonic). Everything goes through ingest, beats,
crops (15 s, sequential), features (tonal) and chords into one store, in this process; --work keeps
the renders and the store, so a second run only reads them (delete it to measure afresh).

Printed, per set (rendered / real):
  - how many tracks each estimate gets exactly right and the MIREX weighted score (mir_eval):
    tracks_v.key_name; the crops' agreed keys voted; madmom's crop probabilities summed alone;
    essentia's crop keys voted alone; bare essentia (KeyExtractor over the whole file, mono 44.1 kHz);
  - the agreed per-crop rule (crops_v.key_name, chords' views.sql) re-measured on every crop, each
    crop's truth being its piece's key (a crop in a passage that modulates counts as wrong for
    every opinion alike): essentia, madmom, agreed; and where they disagree, by kind (mode / differ),
    how often the rule's pick, and the other opinion, is right;
  - calibration: exact accuracy per band of tracks_v.key_confidence, and of crops_v.key_confidence.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from library import REPO

sys.path.insert(0, str(REPO))  # tests/key_eval.py holds the evaluation the suite's test shares

from tests import key_eval  # noqa: E402

BANDS = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0001)


def prepare(work: Path, quarters: float, limit: int | None) -> tuple[dict[str, str], dict[str, Path]]:
    """Render the pieces (once: kept in `work`), link the real recordings; {stem: truth}, {stem: file}."""
    rendered = work / "rendered"
    truths_file = work / "truths.json"
    if truths_file.exists():
        truths = json.loads(truths_file.read_text())
    else:
        started = time.perf_counter()
        pieces = key_eval.corpus_pieces()[:limit] if limit else key_eval.corpus_pieces()
        truths = {"rendered": key_eval.render_pieces(pieces, rendered, quarters), "real": {}}
        print(f"rendered {len(truths['rendered'])} of {len(pieces)} pieces (the others state no key) "
              f"in {time.perf_counter() - started:.0f} s", flush=True)
        real = work / "real"
        real.mkdir(exist_ok=True)
        for relative, truth in key_eval.REAL:
            source = REPO.parent / "shared" / "corpus" / relative
            (real / source.name).symlink_to(source)
            truths["real"][source.stem] = truth  # as tracks_v.source_name names it
        truths_file.write_text(json.dumps(truths, indent=1))
    files = {p.stem: p for folder in ("rendered", "real") for p in (work / folder).iterdir()}
    return truths, files


def run_store(work: Path) -> Path:
    db = work / "etl.duckdb"
    if not db.exists():
        started = time.perf_counter()
        key_eval.run_track_stages(db, [work / "rendered", work / "real"])
        print(f"stages ran in {time.perf_counter() - started:.0f} s", flush=True)
    return db


def crop_opinions(db: Path) -> dict[str, list[dict[str, Any]]]:
    """Per track stem, its crops in order: both opinions, madmom's scores, the agreed key."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        result = con.execute("SELECT t.source_name, c.crop_index, c.key_essentia, c.key_madmom, c.key_name, "
                             "c.key_confidence, c.key_agreement, ch.key_madmom_scores "
                             "FROM crops_v AS c JOIN tracks_v AS t USING (track_id) "
                             "LEFT JOIN crop_chords AS ch USING (crop_id) ORDER BY 1, 2")
        names = [d[0] for d in result.description]
        rows = [dict(zip(names, r)) for r in result.fetchall()]
    finally:
        con.close()
    found: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        found.setdefault(row["source_name"], []).append(row)
    return found


def first_most_common(keys: list[str | None]) -> str | None:
    counts = Counter(k for k in keys if k)
    if not counts:
        return None
    top = max(counts.values())
    return next(k for k in keys if k and counts[k] == top)  # a tie goes to the earliest crop's key


def madmom_summed(crops: list[dict[str, Any]]) -> str | None:
    totals: Counter[str] = Counter()
    for crop in crops:
        totals.update(crop["key_madmom_scores"] or {})
    return max(totals, key=totals.__getitem__) if totals else None


def scored(rows: list[tuple[str, str | None]]) -> str:
    scores = [key_eval.score(truth, estimate) for truth, estimate in rows]
    right = sum(s[0] for s in scores)
    return f"{right:.0f}/{len(rows)} right, weighted {sum(s[1] for s in scores) / max(1, len(rows)):.3f}"


def bands(pairs: list[tuple[float | None, bool]]) -> list[str]:
    lines = []
    for low, high in zip(BANDS, BANDS[1:]):
        inside = [right for confidence, right in pairs if confidence is not None and low <= confidence < high]
        if inside:
            lines.append(f"  [{low:.1f}, {min(high, 1.0):.1f}{']' if high > 1 else ')'}: "
                         f"{sum(inside)}/{len(inside)} right ({sum(inside) / len(inside):.0%})")
    missing = [right for confidence, right in pairs if confidence is None]
    if missing:
        lines.append(f"  no confidence: {sum(missing)}/{len(missing)} right")
    return lines


def report(name: str, truths: dict[str, str], files: dict[str, Path], db: Path,
           crops: dict[str, list[dict[str, Any]]]) -> None:
    tracks = key_eval.track_keys(db, truths, files)
    print(f"\n== {name}: {len(tracks)} tracks, {sum(len(crops.get(t.name, [])) for t in tracks)} crops")
    estimates = {
        "tracks_v.key_name (opinions summed)": [t.track for t in tracks],
        "crops' agreed keys voted": [t.vote for t in tracks],
        "madmom's crop probabilities summed": [madmom_summed(crops.get(t.name, [])) for t in tracks],
        "essentia's crop keys voted": [first_most_common([c["key_essentia"] for c in crops.get(t.name, [])])
                                       for t in tracks],
        "bare essentia, whole file": [t.essentia for t in tracks],
    }
    for label, keys in estimates.items():
        print(f"{label:38s} {scored([(t.truth, k) for t, k in zip(tracks, keys)])}")
    if len(tracks) <= 12:
        for t in tracks:
            print(f"  {t.name:60s} truth {t.truth:9s} track {t.track} ({t.confidence or 0:.2f}) vote {t.vote} "
                  f"essentia {t.essentia}")
    right = [(t.confidence, key_eval.score(t.truth, t.track)[0] == 1) for t in tracks]
    print("tracks_v.key_confidence, exact accuracy per band:", *bands(right), sep="\n")

    rows = [(t.truth, c) for t in tracks for c in crops.get(t.name, [])]
    print(f"per crop ({len(rows)}), truth = its piece's key:")
    for column in ("key_essentia", "key_madmom", "key_name"):
        print(f"  {column:13s} {scored([(truth, c[column]) for truth, c in rows])}")
    for kind in ("mode", "differ"):
        split = [(truth, c) for truth, c in rows if c["key_agreement"] == kind]
        if split:
            other = "key_madmom" if kind == "mode" else "key_essentia"
            print(f"  '{kind}' ({len(split)} crops): the rule's pick {scored([(t, c['key_name']) for t, c in split])}; "
                  f"the other ({other}) {scored([(t, c[other]) for t, c in split])}")
    crop_right = [(c["key_confidence"], key_eval.score(truth, c["key_name"])[0] == 1) for truth, c in rows]
    print("crops_v.key_confidence, exact accuracy per band:", *bands(crop_right), sep="\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quarters", type=float, default=160.0, help="render each piece's measures up to this")
    parser.add_argument("--limit", type=int, default=None, help="only the first N candidate pieces")
    parser.add_argument("--work", type=Path, default=None, help="keep renders and the store here (reused)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        work = args.work or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        truths, files = prepare(work, args.quarters, args.limit)
        db = run_store(work)
        crops = crop_opinions(db)
        report("rendered music21 pieces", truths["rendered"], files, db, crops)
        report("real recordings with a stated key", truths["real"], files, db, crops)
        brahms = {k: "G minor" if k.startswith("Hungarian") else v for k, v in truths["real"].items()}
        report("real recordings, the Hungarian Dance scored as G minor (its usual arrangement's key)",
               brahms, files, db, crops)


if __name__ == "__main__":
    main()
