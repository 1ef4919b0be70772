# shellcheck shell=bash
# Shared by the CI job scripts (sourced, not run). Both .gitlab-ci.yml and the GitHub workflows
# call the scripts in this folder, so what a job does is written once, here.

# driftgate and dvc on PATH: reuse an environment that already has them (a prepared runner
# image, or a local run of the pipeline), else install this checkout into .venv.
# DRIFTGATE_EXTRAS=dev also installs the test dependencies.
ci_setup() {
  if [ -z "${DRIFTGATE_EXTRAS:-}" ] && command -v driftgate >/dev/null && command -v dvc >/dev/null \
     && python3 -c "import driftgate" 2>/dev/null; then
    echo "using the installed driftgate ($(command -v driftgate))"
  else
    python3 -m venv .venv
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -e ".${DRIFTGATE_EXTRAS:+[$DRIFTGATE_EXTRAS]}"
    export PATH="$PWD/.venv/bin:$PATH"
  fi
  dvc config --local core.analytics false 2>/dev/null || true
}

# Which kind of run this is, on either CI system: merge_request, schedule or push.
ci_event() {
  case "${CI_PIPELINE_SOURCE:-${GITHUB_EVENT_NAME:-push}}" in
    merge_request_event|pull_request|pull_request_target) echo merge_request ;;
    schedule) echo schedule ;;
    *) echo push ;;
  esac
}

# A git revision holding the default branch, for "against main" comparisons; empty if none.
# GitLab and GitHub check out shallow, detached clones: fetch the branch when it is missing.
ci_baseline_rev() {
  local branch=${DRIFTGATE_BASELINE_BRANCH:-${CI_DEFAULT_BRANCH:-main}} rev
  for rev in "origin/$branch" "$branch"; do
    if git rev-parse --verify -q "$rev^{commit}" >/dev/null; then echo "$rev"; return; fi
  done
  if git fetch -q --depth=50 origin "$branch:refs/remotes/origin/$branch" 2>/dev/null; then
    echo "origin/$branch"
  fi
}

# The default branch's committed metrics.json, for the F1-drop gate; prints the file's path.
ci_baseline_metrics() {
  local rev=$1 out=${2:-reports/baseline-metrics.json}
  [ -n "$rev" ] || return 1
  mkdir -p "$(dirname "$out")"
  git show "$rev:reports/metrics.json" >"$out" 2>/dev/null && echo "$out"
}

# What reading the prediction log's store needs: SQLAlchemy and orjson (the serve extra), and
# psycopg when DRIFTGATE_MONITOR_LOG is a PostgreSQL URL; installed when missing.
ci_store_drivers() {
  local missing
  if ! missing=$(python3 -c "import sqlalchemy, orjson" 2>&1); then
    echo "installing the serve extra (${missing##*$'\n'})"
    python3 -m pip install -q -e ".[serve]" || return 2
  fi
  case "${DRIFTGATE_MONITOR_LOG:-}" in
    postgresql*) python3 -c "import psycopg" 2>/dev/null || python3 -m pip install -q "psycopg[binary]" || return 2 ;;
  esac
}
