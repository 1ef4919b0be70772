#!/usr/bin/env bash
# CI job "scheduled-monitor": one monitoring pass over the served model's prediction log, for a
# team without a long-running monitor. DRIFTGATE_MONITOR_LOG (a masked CI variable) is the log's
# database URL, e.g. postgresql+psycopg://monitor:PASSWORD@db.internal/predictions. The pass,
# its metrics and alerts are rows in that database, as if `driftgate serve --monitor-every` had
# run it; alerts go out by email (DRIFTGATE_SMTP_*) and webhook (DRIFTGATE_WEBHOOK_URL). The job
# fails when the pass is critical (MONITOR_FAIL_ON: never | warning | critical).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
source pipelines/ci/lib.sh
ci_setup || exit 2
# The store is read through SQLAlchemy (the serve extra; a PostgreSQL URL also needs its driver).
ci_store_drivers || exit 2

if [ -z "${DRIFTGATE_MONITOR_LOG:-}" ]; then
  echo "error: DRIFTGATE_MONITOR_LOG is not set: set it to the prediction log's database URL (a masked CI variable)" >&2
  exit 2
fi
driftgate data || exit 2
dvc repro train || exit 2  # the served model's card (and, the first time, its reference window)
mkdir -p reports
driftgate monitor --once --report reports/monitor.md --fail-on "${MONITOR_FAIL_ON:-critical}"
verdict=$?
[ -f reports/monitor.md ] && cat reports/monitor.md
exit $verdict
