"""Fingerprints: what the engine hashes to know what is stale.

- A stage's hash covers its result-affecting parameters and its code `version`.
- An item's input fingerprint covers its own input (`input_fp` of its items query, e.g.
  a file's size and mtime) and the output fingerprint of every upstream key it reads (`reads`).
- An item's output fingerprint, per key it produced, is a hash of what it produced there (result
  rows, with the content hashes of its files). It is recorded in stage_outputs when the item is
  committed done or skipped; a failed item keeps its previous one.

So a change whose output is the same (a setting that does not change results) stops at the stage
it touched; a changed output re-queues exactly the items that read it.

Counting needs the lineage joins only when something could have moved: every commit that writes
or clears a stage's outputs bumps its version (stage_marks), and a stage that finished a whole
pass records the stage hash and upstream versions it was checked against (stage_checks). While
those still hold, `etl status` counts stored states without joining upstream outputs.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from etl.engine.config import params_hash
from etl.engine.resources import sql, used_binds
from etl.engine.stage import Stage


def item_binds(stage: Stage, params: Any) -> dict[str, Any]:
    """The values the stage's items query takes from its params (`Stage.item_binds`)."""
    return stage.item_binds(params) if stage.item_binds is not None else {}


def stage_hash(stage: Stage, params: Any) -> str:
    try:
        models = f":{model_files_hash(stage.model_files(params))}" if stage.model_files is not None else ""
    except OSError:  # a model folder this user may not read: the stage is unavailable (it says why), runs nothing
        models = ":unreadable"
    return hashlib.sha256(f"{params_hash(params)}:v{stage.version}{models}".encode()).hexdigest()[:16]


def model_files_hash(paths: list[str]) -> str:
    """The model files a stage uses, by name and content: a sampled hash (size and 16 blocks, as
    for audio files), so `etl status` stays fast beside gigabyte checkpoints. Where the files sit
    does not count (moving the models folder recomputes nothing); a missing file counts as absent."""
    from etl.dsp.identity import sample_hash

    parts = []
    for path in sorted(paths, key=lambda p: (os.path.basename(p), p)):
        try:
            parts.append([os.path.basename(path), sample_hash(path)])
        except OSError:
            parts.append([os.path.basename(path), None])
    return fingerprint(parts)


# One encoder for every call: json.dumps with options builds a new one each time (a third of the
# cost of hashing a small result).
_ENCODER = json.JSONEncoder(sort_keys=True, default=str, separators=(",", ":"))


def fingerprint(value: Any) -> str:
    """A stable hash of a JSON-like value (dict keys sorted; floats by their repr)."""
    return hashlib.sha256(_ENCODER.encode(value).encode()).hexdigest()[:16]


def outputs(stage: Stage, status: str, result: Any, error: str | None, item: dict[str, Any]) -> dict[str, str]:
    """{key: output fingerprint} of a committed outcome (done or skipped)."""
    if status == "skipped":
        return {item["item_id"]: fingerprint(["skipped", error])}
    produced = stage.outputs(result, item) if stage.outputs is not None else {item["item_id"]: result}
    return {key: fingerprint(value) for key, value in produced.items()}


COUNT_COLUMNS = ("pending", "running", "done", "failed", "skipped", "missing")


def counts(con: Any, stage: Stage, params: Any) -> dict[str, int]:
    """Per status, as a run would find it now (what `etl status` shows)."""
    current = stage_hash(stage, params)
    binds = {"stage": stage.name, "stage_hash": current, **item_binds(stage, params)}
    if stage.reads and _checked(con, stage) == (current, upstream_versions(con, stage)):
        statement = stage_sql(stage, "counts_checked")
        *row, unchecked = con.execute(statement, used_binds(statement, binds)).fetchone()
        if not unchecked:
            return dict(zip(COUNT_COLUMNS, row))
    statement = stage_sql(stage, "counts")
    return dict(zip(COUNT_COLUMNS, con.execute(statement, used_binds(statement, binds)).fetchone()))


def upstream_versions(con: Any, stage: Stage) -> str:
    versions = dict(con.execute(sql("engine/lineage.sql", "outputs_versions")).fetchall())
    return ",".join(f"{read.stage}={versions.get(read.stage, 0)}" for read in stage.reads)


def _checked(con: Any, stage: Stage) -> tuple[str, str] | None:
    row = con.execute(sql("engine/lineage.sql", "check"), {"stage": stage.name}).fetchone()
    return tuple(row) if row else None


def stage_sql(stage: Stage, name: str) -> str:
    """An engine statement specialised with the stage's items query and its upstream reads."""
    text = sql(stage.items_sql) if stage.items_sql.endswith(".sql") else stage.items_sql
    joins, columns = [], []
    for n, read in enumerate(stage.reads):
        names = {"n": str(n), "stage": read.stage, "key": read.key}
        join = "read_join" if read.shared is False else "read_join_shared"
        joins.append(_fill(sql("engine/lineage.sql", join), names))
        column = "read_column_optional" if read.optional else "read_column"
        columns.append(_fill(sql("engine/lineage.sql", column), names))
    return _fill(sql("engine/state.sql", name), {
        "items": text.rstrip().rstrip(";"),
        "lineage_joins": "\n".join(joins),
        "lineage_columns": " ".join(columns),
        "present": "items.present" if stage.presence else "true",
    })


def _fill(template: str, names: dict[str, str]) -> str:
    for name, value in names.items():
        template = template.replace("{" + name + "}", value)
    return template
