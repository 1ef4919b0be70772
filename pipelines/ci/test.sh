#!/usr/bin/env bash
# CI job "test": the fast test tiers (the slow ones reproduce the whole pipeline, which the
# next job does for real anyway).
set -euo pipefail
cd "$(dirname "$0")/../.." || exit 2
source pipelines/ci/lib.sh
DRIFTGATE_EXTRAS=dev ci_setup
python -m pytest -m "not slow" -n 2 --dist loadfile
