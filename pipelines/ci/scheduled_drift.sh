#!/usr/bin/env bash
# CI job "scheduled-drift": score the newest production batch against the stored model and
# reference, apply the drift gate (and the F1 gate: the bundled batches carry labels), write
# the report and send the alert. DRIFTGATE_BATCH picks the batch: a month of the bundled data
# (2013-09), a range (2013-06..2013-08) or a CSV/Parquet file; empty means windows.current.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
source pipelines/ci/lib.sh
ci_setup || exit 2

batch=${DRIFTGATE_BATCH:-$(python3 -c 'import yaml; print(yaml.safe_load(open("params.yaml"))["windows"]["current"])')}
pipelines/check_batch.sh "$batch"
verdict=$?
[ "$verdict" -le 1 ] || exit "$verdict"

out=$(driftgate batch-folder "$batch") || exit 2
# The widgets' files at the paths .gitlab-ci.yml reports: this batch's, never main's committed ones.
rm -f reports/gate-junit.xml reports/gate-metrics.txt
cp "$out/gate-junit.xml" "$out/gate-metrics.txt" reports/ 2>/dev/null \
  || echo "warning: the batch's gate wrote no JUnit/metrics files: the test widget stays empty" >&2
driftgate report --gate "$out/gate.json" --metrics "$out/metrics.json" --drift "$out/drift/drift.json" \
  --out reports/report.md --workflow schedule ${GITHUB_STEP_SUMMARY:+--summary "$GITHUB_STEP_SUMMARY"} \
  || echo "warning: the report could not be written" >&2
driftgate alert --gate "$out/gate.json" --attach "$out/drift/drift.png" \
  || echo "warning: the alert could not be sent (see above); the gate's verdict stands" >&2
exit $verdict
