#!/usr/bin/env bash
# Score one production batch against the trained model and apply the gates to it.
#   pipelines/check_batch.sh 2013-09              # a month of the dataset (or 2013-06..2013-08)
#   pipelines/check_batch.sh path/to/batch.csv    # a separate CSV/Parquet file
# Writes reports/batches/<name>/ and exits like the gate: 0 pass, 1 a gate failed, 2 bad input.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

batch=${1:?usage: pipelines/check_batch.sh MONTH|RANGE|FILE}
out=$(driftgate batch-folder "$batch") || exit 2

driftgate data || exit 2
dvc repro train || exit 2
driftgate evaluate --current "$batch" --out "$out" || exit 2
driftgate drift --current "$batch" --out "$out/drift" || exit 2
echo
driftgate gate --metrics "$out/metrics.json" --drift "$out/drift/drift.json" --out "$out/gate.json"
verdict=$?
echo
echo "Batch report: $out/gate.md, $out/drift/drift.md, $out/metrics.json, $out/plots/"
exit $verdict
