#!/usr/bin/env bash
# CI job "test": lint, then the fast test tiers (the slow ones reproduce the whole pipeline,
# which the next job does for real anyway).
set -euo pipefail
cd "$(dirname "$0")/../.." || exit 2
source pipelines/ci/lib.sh
DRIFTGATE_EXTRAS=dev ci_setup
if ! command -v shellcheck >/dev/null; then  # the CI-file checks lint the job scripts with it
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq shellcheck >/dev/null
  else
    echo "error: the tests need shellcheck: install it on the runner" >&2
    exit 2
  fi
fi
ruff check .
python -m pytest -m "not slow" -n 2 --dist loadfile
