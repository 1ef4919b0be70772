#!/usr/bin/env bash
# CI job "scheduled-retrain" (schedules with DRIFTGATE_RETRAIN=true only): train a challenger on
# retraining.window, score it and the champion on retraining.evaluation, and let the promotion
# rule decide (`driftgate retrain`). The decision is reports/retrain.md and reports/retrain.json
# either way. On a promotion, params.yaml's windows move to the challenger's (`--move-window`),
# `dvc repro` brings dvc.lock and the outputs git keeps in line, and `cml pr create` opens a merge
# request with them, the report as its description: the promotion reaches the default branch only
# through the merge-request pipeline's gates. A rejection opens nothing, and the job passes.
#   DRIFTGATE_MONITOR_LOG   the served model's store: its champion is the one challenged, and the
#                           decision is recorded there. Unset: the job's own SQLite store, whose
#                           champion is the model this commit's pipeline trains.
#   DRIFTGATE_RETRAIN_MERGE merge | rebase | squash: merge the request by itself once its pipeline
#                           passes. Empty (the default): a person merges it.
#   REPO_TOKEN              pushes the branch and opens the request (as for comment.sh).
# Exit code 0 for a decision either way, 2 when the inputs or the pipeline are broken.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
source pipelines/ci/lib.sh

merge_option=()
case "${DRIFTGATE_RETRAIN_MERGE:-}" in
  "") ;;
  merge|rebase|squash) merge_option=("--$DRIFTGATE_RETRAIN_MERGE") ;;
  *) echo "error: DRIFTGATE_RETRAIN_MERGE is '$DRIFTGATE_RETRAIN_MERGE': set it to merge, rebase or squash, or leave it empty (a person merges the request)" >&2
     exit 2 ;;
esac
if ! git rev-parse -q --verify HEAD >/dev/null; then
  echo "error: not a git checkout: the job compares params.yaml with the commit and opens a merge request from it" >&2
  exit 2
fi
if ! git diff --quiet HEAD; then
  echo "error: tracked files differ from the commit (git diff HEAD): the merge request must carry the promotion's changes only; commit or drop them first" >&2
  exit 2
fi

ci_setup || exit 2
# The registry lives in the store (the serve extra; a PostgreSQL URL also needs its driver).
ci_store_drivers || exit 2

driftgate data || exit 2
dvc repro train || exit 2  # this commit's model: the champion when the store has none yet
mkdir -p reports
driftgate retrain --trigger schedule --out reports/retrain.json --report reports/retrain.md --move-window \
  ${DRIFTGATE_MONITOR_LOG:+--log "$DRIFTGATE_MONITOR_LOG"}
verdict=$?
[ -f reports/retrain.md ] && cat reports/retrain.md
[ "$verdict" -eq 0 ] || exit "$verdict"

if git diff --quiet HEAD -- params.yaml; then
  echo "not promoted: no merge request. The decision is in the job artifacts: reports/retrain.md"
  exit 0
fi

# What moved, in words: "windows.train 2013-01..2013-03 -> 2013-04..2013-06, windows.current 2013-04 -> 2013-07"
moved=$(git show HEAD:params.yaml | python3 -c '
import sys, yaml
before = (yaml.safe_load(sys.stdin) or {}).get("windows", {})
after = yaml.safe_load(open("params.yaml")).get("windows", {})
print(", ".join(f"windows.{k} {before.get(k)} -> {v}" for k, v in after.items() if before.get(k) != v))') || exit 2
train_window=$(python3 -c 'import yaml; print(yaml.safe_load(open("params.yaml"))["windows"]["train"])') || exit 2
reason=$(python3 -c 'import json; print(json.load(open("reports/retrain.json"))["reason"])') || exit 2
echo "promoted: $moved; reproducing the pipeline so that dvc.lock and the outputs git keeps follow"
dvc repro evaluate drift drift-report || {
  echo "error: the pipeline broke on the promoted windows ($moved): no merge request; read the stage's error above" >&2
  exit 2
}
dvc repro gate || echo "note: the gates fail on the promoted windows (above): the merge request's gate job will show it"
# What the request carries: params.yaml, dvc.lock and the outputs git keeps (cache: false) that the
# pipeline rewrote, as a person running `dvc repro` would commit them.
mapfile -d '' -t carried < <(git diff -z --name-only HEAD)

if [ -z "${REPO_TOKEN:-}" ]; then
  echo "error: REPO_TOKEN is not set: the promotion ($moved) cannot become a merge request; the report is in the job artifacts: reports/retrain.md" >&2
  exit 2
fi
if ! command -v cml >/dev/null; then  # the job runs on the Python image; CML comes from npm
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    { apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null && npm install -g --silent @dvcorg/cml@0; } || exit 2
  else
    echo "error: CML is not installed: install it (npm install -g @dvcorg/cml@0) on the runner" >&2
    exit 2
  fi
fi

title="driftgate retrain: $moved"
body=$(cat reports/retrain.md; printf x)  # the report as it is, trailing newline included
body=${body%x}
branch="driftgate-retrain/$(printf '%s' "$train_window" | sed -e 's/\.\./-to-/g' -e 's/[^A-Za-z0-9._-]/-/g')"
# --message keeps CML from adding [skip ci]: the request's pipeline must run the gates.
# The same move again finds this branch and its open request instead of opening another.
cml pr create ${merge_option[@]+"${merge_option[@]}"} --branch="$branch" --title="$title" \
  --message="$title"$'\n\n'"$reason" --body="$body" "${carried[@]}" || {
  echo "error: the merge request could not be opened (CML's message above); the report is in the job artifacts: reports/retrain.md" >&2
  exit 2
}
