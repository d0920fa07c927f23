"""CI: after the demo, every stage that can run on this machine made something and nothing failed.

    python .ci/check_demo.py DB [--left-out STAGE ...]

Reads `etl status --json`: a stage with no `note` (nothing missing here: it can run offline) must
have done items and no failed or pending ones; a stage left out of the demo on purpose is named.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("--left-out", nargs="*", default=[])
    args = parser.parse_args()
    status = json.loads(subprocess.run([sys.executable, "-m", "cli.main", "--db", args.db, "status", "--json"],
                                       check=True, capture_output=True, text=True).stdout)
    problems = []
    for row in status:
        stage = row["stage"]
        if row["failed"]:
            problems.append(f"{stage}: {row['failed']} failed")
        if stage in args.left_out or row["note"]:
            print(f"{stage}: not checked ({'left out of the demo' if stage in args.left_out else row['note']})")
            continue
        if not row["done"]:
            problems.append(f"{stage}: can run here but did nothing")
        if row["pending"]:
            problems.append(f"{stage}: {row['pending']} still pending")
    for problem in problems:
        print(f"demo check: {problem}", file=sys.stderr)
    if not problems:
        print("demo check: every stage that can run here made something; nothing failed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
