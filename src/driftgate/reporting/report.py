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
                       evidently_url=f"{job}/artifacts/file/reports/drift/evidently.html" if job else "")
        if env.get("GITHUB_EVENT_NAME"):  # GitHub: artifacts are listed on the run's page
            repo, run = env.get("GITHUB_REPOSITORY", Path.cwd().name), env.get("GITHUB_RUN_ID", "")
            url = f"{env.get('GITHUB_SERVER_URL', 'https://github.com')}/{repo}/actions/runs/{run}" if run else ""
            return cls(project=repo, ref=env.get("GITHUB_HEAD_REF") or env.get("GITHUB_REF_NAME", ""), event=event,
                       pipeline_url=url, artifacts_url=f"{url}#artifacts" if url else "",
                       evidently_url=f"{url}#artifacts" if url else "")
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
              notes: list[str] = (), title: str = "driftgate", drift_rows_shown: int = 12) -> str:
    """The report for a merge request or a scheduled run, as GitHub/GitLab-flavoured Markdown.
    Image links are relative to `report_path`, so CML uploads each of them with the comment."""
    from driftgate import __version__

    lines = []
    gates = gate.gates if gate else []
    if not gates:
        lines += [f"## :x: {title}: the gate verdicts are missing", "",
                  "The gate job did not write them, so this run counts as failed. Read the gate job's log.", ""]
    else:
        mark = ":white_check_mark:" if gate.passed else ":x:"
        headline = gate_headline(gate).rstrip(".")
        lines += [f"## {mark} {title}: {headline[:1].lower()}{headline[1:]}", ""]
        lines += [tabulate(gate_rows(gate, markup=True), headers=GATE_HEADERS, tablefmt="github", disable_numparse=True), ""]

    if metrics:
        against = f" against `{baseline_label}`" if baseline else ""
        lines += [f"### Model metrics{against}", ""]
        windows = [f"{split}: {getattr(metrics, split).window}" for split in ("holdout", "current") if getattr(metrics, split).window]
        lines += [tabulate(metrics_rows(metrics, baseline), headers=["metric", "this run", baseline_label, "change"],
                           tablefmt="github", disable_numparse=True), "", *([f"Windows: {'; '.join(windows)}.", ""] if windows else [])]
        if baseline is None:
            lines += [f"_No metrics from `{baseline_label}` to compare with._", ""]
    if params_changed is not None:
        if params_changed:
            rows = [[f"`{key}`", _fmt(change.get("old")), _fmt(change.get("new"))] for key, change in sorted(params_changed.items())]
            lines += [f"### Params changed against `{baseline_label}`", "",
                      tabulate(rows, headers=["param", baseline_label, "this run"], tablefmt="github", disable_numparse=True), ""]
        else:
            lines += [f"No params changed against `{baseline_label}`.", ""]

    if drift:
        lines += [f"### Drift: {drift.reference_window} vs {drift.current_window}", "", drift_headline(drift), ""]
        lines += [f"> Note: {warning}." for warning in drift.warnings] + ([""] if drift.warnings else [])
        rows = drift_rows(drift, drift_rows_shown)
        lines += [tabulate(rows, headers=DRIFT_HEADERS, tablefmt="github", disable_numparse=True), ""]
        if len(drift.columns) > len(rows):
            lines += [f"The {len(rows)} most drifted of {len(drift.columns)} columns; all of them are in drift.md.", ""]

    images = [Path(p) for p in plots if Path(p).is_file()]
    if images:
        lines += ["### Plots", ""]
        for image in images:
            relative = Path(os.path.relpath(image, report_path.parent)).as_posix()
            lines += [f"![{_caption(image)}]({relative})", ""]
    if evidently is not None and Path(evidently).is_file():
        target = ci.evidently_url or Path(os.path.relpath(evidently, report_path.parent)).as_posix()
        lines += [f"Evidently's drift report, on a bounded sample of both frames: [evidently.html]({target})", ""]
    lines += [*notes, *([""] if notes else [])]
    footer = [f"driftgate {__version__}"] + ([workflow] if workflow else []) + ([ci.ref] if ci.ref else [])
    if ci.pipeline_url:
        footer.append(f"[pipeline]({ci.pipeline_url})")
    lines += [f"<sub>{' · '.join(footer)}</sub>", ""]
    return "\n".join(lines)


def _caption(image: Path) -> str:
    from driftgate.config import Paths

    run = Paths().run
    return {run.plots.confusion_png.name: "Confusion matrices", run.plots.roc_pr_png.name: "ROC and precision-recall curves",
            run.curves_against.name: "ROC and precision-recall: this run (solid) against the baseline (dashed)",
            run.drift.png.name: "Reference vs current, most drifted columns"}.get(image.name, image.stem.replace("_", " "))
