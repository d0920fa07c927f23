"""Fingerprints: what the engine hashes to know what is stale.

- A stage's hash covers its result-affecting parameters and its code `version`.
- An item's input fingerprint covers its own input (`input_fp` of its items query, e.g.
  a file's size and mtime) and the output fingerprint of every upstream key it reads (`reads`).
- An item's output fingerprint, per key it produced, is a hash of what it produced there (result
  rows, with the content hashes of its files). It is recorded in stage_outputs when the item is
  committed done or skipped; a failed item keeps its previous one.

So a change whose output is the same (a setting that does not change results) stops at the stage
it touched; a changed output re-queues exactly the items that read it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from etl.engine.config import params_hash
from etl.engine.resources import sql
from etl.engine.stage import Stage


def stage_hash(stage: Stage, params: Any) -> str:
    return hashlib.sha256(f"{params_hash(params)}:v{stage.version}".encode()).hexdigest()[:16]


def fingerprint(value: Any) -> str:
    """A stable hash of a JSON-like value (dict keys sorted; floats by their repr)."""
    blob = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def outputs(stage: Stage, status: str, result: Any, error: str | None, item: dict[str, Any]) -> dict[str, str]:
    """{key: output fingerprint} of a committed outcome (done or skipped)."""
    if status == "skipped":
        return {item["item_id"]: fingerprint(["skipped", error])}
    produced = stage.outputs(result, item) if stage.outputs is not None else {item["item_id"]: result}
    return {key: fingerprint(value) for key, value in produced.items()}


def stage_sql(stage: Stage, name: str) -> str:
    """An engine statement specialised with the stage's items query and its upstream reads."""
    text = sql(stage.items_sql) if stage.items_sql.endswith(".sql") else stage.items_sql
    joins, columns = [], []
    for n, read in enumerate(stage.reads):
        names = {"n": str(n), "stage": read.stage, "key": read.key}
        joins.append(_fill(sql("engine/lineage.sql", "read_join"), names))
        columns.append(_fill(sql("engine/lineage.sql", "read_column"), names))
    return _fill(sql("engine/state.sql", name), {
        "items": text.rstrip().rstrip(";"),
        "lineage_joins": "\n".join(joins),
        "lineage_columns": " ".join(columns),
    })


def _fill(template: str, names: dict[str, str]) -> str:
    for name, value in names.items():
        template = template.replace("{" + name + "}", value)
    return template
