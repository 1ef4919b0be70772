#!/usr/bin/env bash
# Reproduce the pipeline (validate -> train -> evaluate -> drift -> gate) and print the gate verdicts.
# Called by `make run` and by the CI jobs. Exit code: 0 all gates pass, 1 a gate failed,
# 2 the pipeline stopped before the gates (bad data, bad params.yaml, a crashed stage).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

driftgate data || exit 2

marker=$(mktemp)
trap 'rm -f "$marker"' EXIT
verdict=0
if ! dvc repro; then
  # A failing gate stops `dvc repro` too. Only then is every stage but `gate` up to date.
  stale=$(dvc status --json | python -c 'import json, sys; print(" ".join(sorted(json.load(sys.stdin))))')
  if [ "$stale" != "gate" ]; then
    echo "error: the pipeline stopped before the gates; stages not up to date: ${stale:-?}" >&2
    echo "  -> read the error above, fix the data or params.yaml, then run it again" >&2
    exit 2
  fi
  verdict=1
elif [ ! reports/gate.json -nt "$marker" ]; then
  # Nothing changed, so the gate stage was skipped: show its verdicts again.
  echo
  driftgate gate
  verdict=$?
fi
# The report CI posts on merge requests, here against the last commit.
baseline=$(git rev-parse -q --verify HEAD >/dev/null 2>&1 && echo HEAD)
driftgate report ${baseline:+--baseline-rev "$baseline"} --workflow local >/dev/null || echo "warning: reports/report.md could not be written" >&2
cat <<OUT

Outputs:
  reports/report.md             the report CI posts on a merge request (gates, metrics against HEAD, drift, plots)
  reports/gate.md               gate verdicts (also reports/gate.json)
  reports/metrics.json          F1, precision, recall, ROC-AUC, PR-AUC (holdout and current batch)
  reports/plots/*.png           ROC / precision-recall and confusion matrices
  reports/drift/drift.md        drift per column, most drifted first (also drift.json)
  reports/validation.json       data validation report
  artifacts/model.joblib        the model, with its card in artifacts/model.json
OUT
exit $verdict
