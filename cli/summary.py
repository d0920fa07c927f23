"""The line that closes `etl run` (and `make demo`): what ran, what was up to date, what was skipped
or stopped and why, and how many items failed.

`python -m cli.summary RUN.json` prints it again from `etl run --json`'s output (the demo's last line).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import Any


def rows(reports: list[Any]) -> list[dict[str, Any]]:
    """`etl run --json`'s records: each StageReport, plus `note`, the one-line form of a skip reason."""
    from etl.engine.stage import short_reason

    return [{**asdict(report), "note": short_reason(report.skipped_reason)} for report in reports]


def line(records: list[dict[str, Any]]) -> str:
    ran = [f"{r['stage']} {r['done']}" for r in records if not r["skipped_reason"] and r["pending"]]
    current = [r["stage"] for r in records if not r["skipped_reason"] and not r["pending"]]
    skipped = [f"{r['stage']} ({r.get('note') or r['skipped_reason']})" for r in records if r["skipped_reason"]]
    failed = sum(r["failed"] for r in records)
    parts = [f"ran: {', '.join(ran)}" if ran else "ran: nothing"]
    if current:
        parts.append(f"up to date: {', '.join(current)}")
    if skipped:
        parts.append(f"skipped or stopped: {'; '.join(skipped)}")
    parts.append(f"failed: {failed} item(s)" + (" (`etl failures` lists them)" if failed else ""))
    return " · ".join(parts)


if __name__ == "__main__":
    with open(sys.argv[1]) as handle:
        print(line(json.load(handle)))
