#!/usr/bin/env bash
# `make demo`: fetch openly licensed real music, run every stage, show the store, export, report.
# Ends with one line saying what ran, what was skipped and why, and what failed; exits like
# `etl run` (0: nothing failed, 3: items failed, 1: a stage stopped), after showing the store anyway.
#
#   scripts/demo.sh [etl run options...]      e.g. scripts/demo.sh --skip chords
set -uo pipefail
BIN=${BIN:-.venv/bin}
DB=${DEMO_DB:-data/demo.duckdb}
MUSIC=${DEMO_MUSIC:-data/demo-music}
EXPORT=${DEMO_EXPORT:-data/demo-export}
REPORT=${DEMO_REPORT:-data/demo-report}
RUN_JSON=${DB%.duckdb}-run.json

scripts/fetch-demo-music.sh "$MUSIC" || exit 1
etl() { "$BIN/etl" --db "$DB" "$@"; }

start=$(date +%s)
etl run --source "$MUSIC" --json "$@" >"$RUN_JSON"
status=$?
echo "etl run: $(( $(date +%s) - start )) s, exit $status" >&2
etl status
etl query --name track_features
etl export --format jsonl --split 85/15 --group-by folder --link --out "$EXPORT" --force
etl report --out "$REPORT"   # prints the page's path
[ -s "$RUN_JSON" ] && "$BIN/python" -m cli.summary "$RUN_JSON"
exit $status
