#!/usr/bin/env bash
# `make demo`: run the example pipelines end to end on the embedded default
# (in-process runs; the SQLite store under .ductwork), then say where to look.
set -euo pipefail
cd "$(dirname "$0")/.."
export DUCTWORK_HOME="${DUCTWORK_HOME:-$PWD/.ductwork}"
export DUCTWORK_FLOWS_FOLDER="${DUCTWORK_FLOWS_FOLDER:-$PWD/examples}"
DW=.venv/bin/ductwork
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "(a) the seeds' four-step pipeline: retrieve, ETL, aggregate, report"
$DW run four_step_pipeline --date 2024-01-31 --no-progress

step "(b) a Luigi-style report pipeline (class tasks, date parameter, file targets, wrapper task)"
$DW build --module examples/luigi_reports.py AllReports --date 2024-01-31 --workers 2 --no-progress
step "(b) again: every target exists, so nothing runs"
$DW build --module examples/luigi_reports.py AllReports --date 2024-01-31 --no-progress

step "(c) a machine-learning pipeline of decorated functions"
$DW run ml_pipeline --date 2024-01-31 --no-progress

step "(d) branching, a short circuit and tasks created in a loop"
$DW run branching --date 2024-01-28 --no-progress

step "(e) cloud inventory: Bash listings, an HTML report e-mailed, a Slack summary (local stand-ins)"
STANDINS=demo-output/standins
rm -rf "$STANDINS"
.venv/bin/python scripts/standins.py --state-dir "$STANDINS" > "$STANDINS.log" 2>&1 &
STANDINS_PID=$!
trap 'kill "$STANDINS_PID" 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -f "$STANDINS/standins.env" ] && break; sleep 0.1; done
# shellcheck disable=SC1091
. "$STANDINS/standins.env"
$DW run cloud_inventory --date 2024-01-31 --no-progress
kill "$STANDINS_PID" && wait "$STANDINS_PID" 2>/dev/null || true
trap - EXIT
echo "received: $(ls "$STANDINS/mail" | wc -l) e-mail(s) in $STANDINS/mail, $(wc -l < "$STANDINS/webhooks.jsonl") webhook call(s)"

step "(f) data-aware: files land in a watched folder; a model is retrained only when the data changed"
.venv/bin/python scripts/demo_retrain.py

if [ -x .venv/bin/ductwork ] && $DW --help | grep -q " db "; then
  $DW db init >/dev/null
fi

cat <<MSG

Done. Outputs:
  demo-output/four_step/reports/sales_2024-01-31.md   the report of pipeline (a)
  demo-output/luigi/summaries/                         the daily summaries of pipeline (b)
  demo-output/ml/metrics_2024-01-31.json               the metrics of pipeline (c)
  demo-output/standins/mail/, webhooks.jsonl           what pipeline (e) e-mailed and posted
  demo-output/retrain/model.pkl, metrics.json          the model of (f), retrained when its data changed
  $DUCTWORK_HOME/logs/                                 the tries' logs (short ones share _tries.log per run;
                                                       read one with: ductwork tasks logs FLOW RUN TASK)

The runs above are recorded in $DUCTWORK_HOME/ductwork.db. See them in the web UI:
  DUCTWORK_HOME=$DUCTWORK_HOME DUCTWORK_FLOWS_FOLDER=examples .venv/bin/ductwork standalone
  then open http://127.0.0.1:8080/ and log in as admin with the password it prints on its
  first start (it also schedules the examples' flows and runs their tasks; Ctrl-C stops it).

Look around on the command line (with DUCTWORK_FLOWS_FOLDER=examples):
  .venv/bin/ductwork runs list
  .venv/bin/ductwork flows list
  .venv/bin/ductwork flows show four_step_pipeline
  .venv/bin/ductwork flows graph four_step_pipeline --format svg -o pipeline.svg
  .venv/bin/ductwork run branching --param min_rows=5000
MSG
