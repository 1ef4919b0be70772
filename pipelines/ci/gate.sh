#!/usr/bin/env bash
# CI job "gate": apply the gates in params.yaml to the reproduced outputs (F1 against its
# minimum and against the default branch, drift share, drifted columns), then write the report
# and send the alert whatever the verdict, and exit with the gate's own code: 0 passed,
# 1 a gate failed, 2 the inputs could not be read. The gate also writes the JUnit and OpenMetrics
# files GitLab's merge-request widgets read; on GitHub the report also goes to the job summary.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
source pipelines/ci/lib.sh
ci_setup || exit 2

rev=$(ci_baseline_rev)
baseline=$(ci_baseline_metrics "$rev") || baseline=""
if [ -n "$baseline" ]; then
  echo "metrics against $rev:"
  dvc metrics diff "$rev" --md --targets reports/metrics.json || true
else
  echo "note: no metrics from the default branch to compare with; the F1-drop gate is left out"
fi

# The committed verdicts and widget files are main's: never let a gate that stopped early hand them on.
rm -f reports/gate.json reports/gate.md reports/gate-junit.xml reports/gate-metrics.txt
driftgate gate ${baseline:+--baseline "$baseline"}
verdict=$?

driftgate report ${rev:+--baseline-rev "$rev"} --workflow "$(ci_event)" ${GITHUB_STEP_SUMMARY:+--summary "$GITHUB_STEP_SUMMARY"} \
  || echo "warning: the report could not be written" >&2
driftgate alert || echo "warning: the alert could not be sent (see above); the gate's verdict stands" >&2
exit $verdict
