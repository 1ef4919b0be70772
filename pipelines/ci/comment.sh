#!/usr/bin/env bash
# CI job "report": post reports/report.md with CML as one comment that each run updates in
# place (matched by its watermark). Merge requests and pull requests get it on the MR/PR; a
# scheduled run puts it on the commit it ran on, or with DRIFTGATE_REPORT_ISSUE=N on issue N. Without a token (a fork's pull request gets
# no secrets) the comment is skipped, and the job still passes: the report stays an artifact.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
source pipelines/ci/lib.sh

report=${1:-reports/report.md}
if [ ! -s "$report" ]; then
  echo "error: $report is missing: the gate job did not write it (read that job's log)" >&2
  exit 2
fi
if [ -z "${REPO_TOKEN:-}" ]; then
  echo "REPO_TOKEN is not set (a fork's pull request, or the variable is missing): not commenting."
  echo "The report is in the job artifacts: $report"
  exit 0
fi
case "$(ci_event)" in
  merge_request) target="pr"; title="driftgate merge request" ;;
  schedule) target="commit"; title="driftgate scheduled drift"
    # DRIFTGATE_REPORT_ISSUE=N: the schedule's report goes to issue N (pin it), one comment
    # updated in place, instead of a comment on each commit. CML 0.20 spells it issue/N.
    issue=${DRIFTGATE_REPORT_ISSUE:-}
    if [ -n "$issue" ]; then
      issue=${issue#\#}
      case "$issue" in
        ''|*[!0-9]*|0*) echo "error: DRIFTGATE_REPORT_ISSUE is '$DRIFTGATE_REPORT_ISSUE': set it to the number of the issue" \
                          "to post the scheduled report to (e.g. 12), or unset it to comment on the commit" >&2
                        exit 2 ;;
      esac
      target="issue/$issue"
    fi ;;
  *) target="commit"; title="driftgate ${CI_COMMIT_REF_NAME:-${GITHUB_REF_NAME:-push}}" ;;
esac
exec cml comment update --target="$target" --watermark-title="$title" "$report"
