#!/usr/bin/env bash
# CI job "reproduce": get the data (dvc pull, or rebuild it and check its hash against data.dvc),
# then `dvc repro` every stage up to the gates. Exit 2 when the pipeline breaks before them.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
source pipelines/ci/lib.sh
ci_setup || exit 2
driftgate data || exit 2
dvc repro evaluate drift drift-report || {
  echo "error: the pipeline stopped before the gates: read the stage's error above" >&2
  exit 2
}
