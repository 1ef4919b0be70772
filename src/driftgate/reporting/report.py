"""Readable summaries (Markdown) of the pipeline's JSON outputs, and the CI report that CML posts."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

from driftgate.reporting.render import DRIFT_HEADERS, GATE_HEADERS, drift_headline, drift_rows, gate_headline, gate_rows
from driftgate.results import DriftResult, GateVerdicts, Metrics

# --------------------------------------------------------------------------- the CI report

# The most one comment's body may hold on each forge, in characters:
# - GitHub refuses a longer issue or pull-request comment with 422 "Body is too long (maximum is
#   65536 characters)" (REST API, "Create an issue comment"; as reported in danger/danger#424 and
#   telia-oss/github-pr-resource#259). A local run is held to the smaller limit.
# - GitLab's Notes API: a note's body is "Limited to 1,000,000 characters"; longer is 400 "Note
#   {:note=>["is too long (maximum is 1000000 characters)"]}" (NARKOZ/gitlab#610); CML itself
#   refuses a GitLab comment of 1,000,000 characters or more (iterative/cml#1350).
COMMENT_LIMITS = {"github": 65_536, "gitlab": 1_000_000}
FORGE_NAMES = {"github": "GitHub", "gitlab": "GitLab"}
# CML appends its watermark and swaps each local image path for its upload's URL: room for both.
CML_HEADROOM = 2_000


@dataclass(frozen=True)
class CiContext:
    """Where a run happens (GitLab, GitHub or a local shell): names and links for the report
    and the alert, read from the CI system's own environment variables."""

    project: str
    ref: str = ""
    event: str = "local"  # merge_request, schedule, push or local
    pipeline_url: str = ""
    artifacts_url: str = ""  # where the report, plots and the Evidently HTML can be opened
    evidently_url: str = ""
    forge: str = "local"  # gitlab, github or local: which comment limit applies
    job_url: str = ""  # GitLab's job page: one artifact file opens at JOB/artifacts/file/PATH

    @property
    def comment_limit(self) -> int:
        """The most characters the forge takes in one comment (GitHub's, for a local run)."""
        return COMMENT_LIMITS.get(self.forge, COMMENT_LIMITS["github"])

    def artifact_link(self, path: Path, report_path: Path) -> str:
        """Where one output file can be opened: the file in GitLab's job artifacts, the run's
        artifacts on GitHub, else the path relative to the report."""
        if self.job_url and not path.is_absolute():
            return f"{self.job_url}/artifacts/file/{path.as_posix()}"
        return self.artifacts_url or Path(os.path.relpath(path, report_path.parent)).as_posix()

    @property
    def scheduled(self) -> bool:
        return self.event == "schedule"

    def links(self) -> list[tuple[str, str]]:
        links = [("pipeline", self.pipeline_url), ("report and artifacts", self.artifacts_url),
                 ("Evidently report", self.evidently_url)]
        return [(label, url) for label, url in links if url]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CiContext:
        env = os.environ if env is None else env
        source = env.get("CI_PIPELINE_SOURCE") or env.get("GITHUB_EVENT_NAME") or ""
        event = ("merge_request" if source in ("merge_request_event", "pull_request", "pull_request_target")
                 else "schedule" if source == "schedule" else "push" if source else "local")
        if env.get("CI_PIPELINE_SOURCE"):  # GitLab
            job = env.get("CI_JOB_URL", "")
            return cls(project=env.get("CI_PROJECT_PATH", Path.cwd().name), ref=env.get("CI_COMMIT_REF_NAME", ""),
                       event=event, pipeline_url=env.get("CI_PIPELINE_URL", ""),
                       artifacts_url=f"{job}/artifacts/browse/reports" if job else "",
                       evidently_url=f"{job}/artifacts/file/reports/drift/evidently.html" if job else "",
                       forge="gitlab", job_url=job)
        if env.get("GITHUB_EVENT_NAME"):  # GitHub: artifacts are listed on the run's page
            repo, run = env.get("GITHUB_REPOSITORY", Path.cwd().name), env.get("GITHUB_RUN_ID", "")
            url = f"{env.get('GITHUB_SERVER_URL', 'https://github.com')}/{repo}/actions/runs/{run}" if run else ""
            return cls(project=repo, ref=env.get("GITHUB_HEAD_REF") or env.get("GITHUB_REF_NAME", ""), event=event,
                       pipeline_url=url, artifacts_url=f"{url}#artifacts" if url else "",
                       evidently_url=f"{url}#artifacts" if url else "", forge="github")
        return cls(project=Path.cwd().name)


def _change(old, new) -> str:
    if not isinstance(old, (int, float)) or not isinstance(new, (int, float)):
        return ""
    diff = new - old
    return "0" if diff == 0 else f"{diff:+.4f}"


def _fmt(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "-" if value is None else str(value)
    return f"{value:.4f}" if isinstance(value, float) else f"{value:,}"


def metrics_rows(metrics: Metrics, baseline: dict | None) -> list[list[str]]:
    """metric | this run | main | change, for each split's headline metrics."""
    rows = []
    for split in ("holdout", "current"):
        new = getattr(metrics, split).to_json()
        old = (baseline or {}).get(split) or {}
        for name in ("f1", "precision", "recall", "roc_auc", "pr_auc", "rows"):
            if new.get(name) is not None or name in old:
                rows.append([f"{split} {name}", _fmt(new.get(name)), _fmt(old.get(name)) if baseline else "-",
                             _change(old.get(name), new.get(name)) if baseline else ""])
    return rows


def ci_report(gate: GateVerdicts | None, metrics: Metrics | None, drift: DriftResult | None, report_path: Path, ci: CiContext,
              workflow: str = "", baseline: dict | None = None, baseline_label: str = "main",
              params_changed: dict | None = None, plots: list[Path] = (), evidently: Path | None = None,
              notes: list[str] = (), title: str = "driftgate", drift_rows_shown: int = 12,
              drift_markdown: Path | None = None, limit: int | None = None, images: bool = True) -> str:
    """The report for a merge request or a scheduled run, as GitHub/GitLab-flavoured Markdown.
    Image links are relative to `report_path`, so CML uploads each of them with the comment;
    `images=False` names the plots instead (GitHub's job summary cannot show local files).

    The drift table shows every drifted column (at least `drift_rows_shown` rows). The whole
    report stays within `limit` characters (default: the forge's comment limit less CML's
    headroom): past it, the drift table is cut to the rows that fit, with a notice and a link
    to the full table in drift.md (`drift_markdown`)."""
    from driftgate import __version__

    budget = (ci.comment_limit - CML_HEADROOM) if limit is None else limit
    head: list[str] = []
    gates = gate.gates if gate else []
    if not gates:
        head += [f"## :x: {title}: the gate verdicts are missing", "",
                 "The gate job did not write them, so this run counts as failed. Read the gate job's log.", ""]
    else:
        mark = ":white_check_mark:" if gate.passed else ":x:"
        headline = gate_headline(gate).rstrip(".")
        head += [f"## {mark} {title}: {headline[:1].lower()}{headline[1:]}", ""]
        head += [tabulate(gate_rows(gate, markup=True), headers=GATE_HEADERS, tablefmt="github", disable_numparse=True), ""]

    if metrics:
        against = f" against `{baseline_label}`" if baseline else ""
        head += [f"### Model metrics{against}", ""]
        windows = [f"{split}: {getattr(metrics, split).window}" for split in ("holdout", "current") if getattr(metrics, split).window]
        head += [tabulate(metrics_rows(metrics, baseline), headers=["metric", "this run", baseline_label, "change"],
                          tablefmt="github", disable_numparse=True), "", *([f"Windows: {'; '.join(windows)}.", ""] if windows else [])]
        if baseline is None:
            head += [f"_No metrics from `{baseline_label}` to compare with._", ""]
    if params_changed is not None:
        if params_changed:
            rows = [[f"`{key}`", _fmt(change.get("old")), _fmt(change.get("new"))] for key, change in sorted(params_changed.items())]
            head += [f"### Params changed against `{baseline_label}`", "",
                     tabulate(rows, headers=["param", baseline_label, "this run"], tablefmt="github", disable_numparse=True), ""]
        else:
            head += [f"No params changed against `{baseline_label}`.", ""]

    tail: list[str] = []
    shown_images = [Path(p) for p in plots if Path(p).is_file()]
    if shown_images and images:
        tail += ["### Plots", ""]
        for image in shown_images:
            relative = Path(os.path.relpath(image, report_path.parent)).as_posix()
            tail += [f"![{_caption(image)}]({relative})", ""]
    elif shown_images:
        where = f"[the run's artifacts]({ci.artifacts_url})" if ci.artifacts_url else "the run's reports folder"
        tail += [f"Plots ({', '.join(_caption(image).lower() for image in shown_images)}) are in {where}.", ""]
    if evidently is not None and Path(evidently).is_file():
        target = ci.evidently_url or Path(os.path.relpath(evidently, report_path.parent)).as_posix()
        tail += [f"Evidently's drift report, on a bounded sample of both frames: [evidently.html]({target})", ""]
    tail += [*notes, *([""] if notes else [])]
    footer = [f"driftgate {__version__}"] + ([workflow] if workflow else []) + ([ci.ref] if ci.ref else [])
    if ci.pipeline_url:
        footer.append(f"[pipeline]({ci.pipeline_url})")
    tail += [f"<sub>{' · '.join(footer)}</sub>", ""]

    def assemble(drift_lines: list[str]) -> str:
        return "\n".join([*head, *drift_lines, *tail])

    if drift is None:
        return _hard_cut(assemble([]), budget, ci, report_path)
    link = ci.artifact_link(drift_markdown, report_path) if drift_markdown is not None else ""
    wanted = min(len(drift.columns), max(drift_rows_shown, drift.n_drifted))
    text = assemble(_drift_section(drift, wanted, None, link, ci))
    if len(text) <= budget:
        return text
    fits, low, high = None, 0, wanted - 1  # the most rows that fit, with the notice
    while low <= high:
        middle = (low + high) // 2
        candidate = assemble(_drift_section(drift, middle, budget, link, ci))
        if len(candidate) <= budget:
            fits, low = candidate, middle + 1
        else:
            high = middle - 1
    return fits if fits is not None else _hard_cut(assemble(_drift_section(drift, 0, budget, link, ci)), budget, ci, report_path)


def _forge_limit(ci: CiContext, budget: int) -> str:
    forge = FORGE_NAMES.get(ci.forge, "GitHub")
    return f"{forge}'s comment limit ({ci.comment_limit:,} characters)" if budget >= ci.comment_limit - CML_HEADROOM \
        else f"{budget:,} characters"


def _drift_section(drift: DriftResult, shown: int, cut_for: int | None, link: str, ci: CiContext) -> list[str]:
    """The drift heading, headline, notes and table of the `shown` most drifted columns; with
    `cut_for` (the budget the report was cut to) a notice says so and links the full table."""
    lines = [f"### Drift: {drift.reference_window} vs {drift.current_window}", "", drift_headline(drift), ""]
    lines += [f"> Note: {warning}." for warning in drift.warnings] + ([""] if drift.warnings else [])
    full = f"[drift.md]({link})" if link else "drift.md"
    if cut_for is not None:
        lines += [f"> :scissors: **Cut:** the drift table shows the {shown} most drifted of {len(drift.columns):,} columns "
                  f"({drift.n_drifted:,} drifted) to keep this report within {_forge_limit(ci, cut_for)}. "
                  f"Every column is in {full}.", ""]
    rows = drift_rows(drift, shown) if shown else []
    if rows:
        lines += [tabulate(rows, headers=DRIFT_HEADERS, tablefmt="github", disable_numparse=True), ""]
    if cut_for is None and len(drift.columns) > len(rows):
        lines += [f"The {len(rows)} most drifted of {len(drift.columns)} columns; all of them are in {full}.", ""]
    return lines


def _hard_cut(text: str, budget: int, ci: CiContext, report_path: Path) -> str:
    """The last resort when even the report without a drift table is too long (a huge params
    diff): cut at a line break within the budget, and say where the rest is."""
    if len(text) <= budget:
        return text
    where = f"[the run's artifacts]({ci.artifacts_url})" if ci.artifacts_url else \
        f"[{report_path.name}]({report_path.name})"
    notice = (f"\n\n> :scissors: **Cut:** this report is longer than {_forge_limit(ci, budget)}; "
              f"the rest is in {where}.\n")
    room = max(0, budget - len(notice))
    cut = text.rfind("\n", 0, room)
    return text[:cut if cut > 0 else room] + notice


def _caption(image: Path) -> str:
    from driftgate.config import Paths

    run = Paths().run
    return {run.plots.confusion_png.name: "Confusion matrices", run.plots.roc_pr_png.name: "ROC and precision-recall curves",
            run.curves_against.name: "ROC and precision-recall: this run (solid) against the baseline (dashed)",
            run.drift.png.name: "Reference vs current, most drifted columns"}.get(image.name, image.stem.replace("_", " "))
