"""Readable summaries (Markdown) of the pipeline's JSON outputs, and the CI report that CML posts."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

from driftgate.drift.stattests import P_VALUE_TESTS, ranked


def _score(value: float | None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.3g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


def drift_markdown(drift: dict, plot: str | None = None) -> str:
    """The drift summary: dataset verdict, then one row per column, most drifted first."""
    verdict = "**Dataset drift detected**" if drift["dataset_drift"] else "No dataset drift"
    lines = [
        f"# Drift: {drift.get('reference_window', 'reference')} vs {drift.get('current_window', 'current')}",
        "",
        f"{verdict}: {drift['n_drifted']} of {drift['n_columns']} columns drifted "
        f"(share {drift['drift_share']:.2f}, dataset drift at >= {drift['threshold']:g}).",
        f"Reference rows: {drift.get('reference_rows', '?'):,}; current rows: {drift.get('current_rows', '?'):,}.",
        "",
    ]
    if drift.get("mode") == "calibrated":
        lines[-1:-1] = [f"Calibrated mode: p-values from {drift['draws']} reference-vs-reference resamples, "
                        f"{drift['correction']} correction at alpha {drift['alpha']:g}, categories under "
                        f"{drift['pool_below']:.1%} of the reference pooled."]
    table = []
    for name, col in ranked(drift["columns"]):
        notes = []
        direction = "p <" if col["test"] in P_VALUE_TESTS else ">="
        if col.get("p_value") is not None:
            direction = f"{drift.get('correction', '')} p at"
            notes.append(f"p = {col['p_value']:.2g}")
        if col.get("new_categories"):
            notes.append("new: " + ", ".join(col["new_categories"][:5]))
        if col.get("out_of_range_share", 0) >= 0.001:
            notes.append(f"{col['out_of_range_share']:.1%} outside the reference range")
        if col.get("score_error_bound"):
            notes.append(f"score within +-{col['score_error_bound']:.1e} (chunked)")
        change = col["current_missing_share"] - col["reference_missing_share"]
        if abs(change) >= 0.01:
            notes.append(f"missing {col['reference_missing_share']:.1%} -> {col['current_missing_share']:.1%}")
        table.append([name, col["type"], col["test"], _score(col["score"]), f"{direction} {col['threshold']:g}",
                      "**yes**" if col["drift"] else "no", "; ".join(notes)])
    lines.append(tabulate(table, headers=["column", "type", "test", "score", "drift if", "drifted", "notes"], tablefmt="github"))
    lines.append("")
    if plot:
        lines += [f"![Reference vs current for the most drifted columns]({plot})", ""]
    return "\n".join(lines)


def drift_plot(drift: dict, reference, current, target: Path, top: int = 6) -> Path | None:
    """Reference vs current distributions of the `top` most drifted columns, as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    from driftgate.io import atomic_path

    columns = [name for name, _ in ranked(drift["columns"], top)]
    if not columns:
        return None
    ncols = min(3, len(columns))
    nrows = -(-len(columns) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.2 * nrows), squeeze=False)
    for ax, name in zip(axes.flat, columns):
        col = drift["columns"][name]
        ref, cur = reference[name], current[name]
        if col["type"] == "numeric":
            ref = pd.to_numeric(ref, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            cur = pd.to_numeric(cur, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
            both = np.concatenate([ref, cur])
            if both.size:
                low, high = np.percentile(both, [0.5, 99.5])
                edges = np.linspace(low, high if high > low else low + 1, 41)
                ax.hist(ref, edges, density=True, alpha=0.55, label="reference")
                ax.hist(cur, edges, density=True, alpha=0.55, label="current")
        else:
            shares = pd.DataFrame({"reference": ref.value_counts(normalize=True),
                                   "current": cur.value_counts(normalize=True)}).fillna(0)
            shares = shares.loc[shares.max(axis=1).sort_values(ascending=False).index[:12]]
            positions = np.arange(len(shares))
            ax.bar(positions - 0.2, shares["reference"], 0.4, label="reference")
            ax.bar(positions + 0.2, shares["current"], 0.4, label="current")
            ax.set_xticks(positions, [str(v)[:8] for v in shares.index], rotation=60, fontsize=7)
        mark = "DRIFT" if col["drift"] else "no drift"
        ax.set_title(f"{name}: {col['test']} {_score(col['score'])} ({mark})", fontsize=9,
                     color="firebrick" if col["drift"] else "black")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(columns):]:
        ax.axis("off")
    fig.tight_layout()
    with atomic_path(target) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return target


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


def metrics_rows(metrics: dict, baseline: dict | None) -> list[list[str]]:
    """metric | this run | main | change, for each split's headline metrics."""
    rows = []
    for split in ("holdout", "current"):
        new, old = metrics.get(split) or {}, (baseline or {}).get(split) or {}
        label = split
        for name in ("f1", "precision", "recall", "roc_auc", "pr_auc", "rows"):
            if name in new or name in old:
                rows.append([f"{label} {name}", _fmt(new.get(name)), _fmt(old.get(name)) if baseline else "-",
                             _change(old.get(name), new.get(name)) if baseline else ""])
    return rows


def ci_report(gate: dict | None, metrics: dict | None, drift: dict | None, report_path: Path, ci: CiContext,
              workflow: str = "", baseline: dict | None = None, baseline_label: str = "main",
              params_changed: dict | None = None, plots: list[Path] = (), evidently: Path | None = None,
              notes: list[str] = ()) -> str:
    """The report for a merge request or a scheduled run, as GitHub/GitLab-flavoured Markdown.
    Image links are relative to `report_path`, so CML uploads each of them with the comment."""
    from driftgate import __version__

    lines = []
    gates = (gate or {}).get("gates") or []
    failed = [g for g in gates if not g.get("passed")]
    if not gates:
        lines += ["## :x: driftgate: the gate verdicts are missing", "",
                  "The gate job did not write them, so this run counts as failed. Read the gate job's log.", ""]
    elif failed:
        lines += [f"## :x: driftgate: {len(failed)} of {len(gates)} gates failed: {', '.join(g['gate'] for g in failed)}", ""]
    else:
        lines += [f"## :white_check_mark: driftgate: all {len(gates)} gates passed", ""]
    if gates:
        rows = [[g["gate"], _gate_value(g.get("value")),
                 f"{g.get('op', '')} {_gate_value(g.get('threshold'))}" if g.get("threshold") is not None else g.get("op", ""),
                 "**FAIL**" if not g.get("passed") else "PASS", g.get("detail", "")] for g in gates]
        lines += [tabulate(rows, headers=["gate", "value", "threshold", "status", "what to look at"], tablefmt="github", disable_numparse=True), ""]

    if metrics:
        against = f" against `{baseline_label}`" if baseline else ""
        lines += [f"### Model metrics{against}", ""]
        windows = [f"{split}: {metrics[split]['window']}" for split in ("holdout", "current")
                   if isinstance(metrics.get(split), dict) and metrics[split].get("window")]
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
        verdict = "**dataset drift**" if drift.get("dataset_drift") else "no dataset drift"
        lines += [f"### Drift: {drift.get('reference_window', 'reference')} vs {drift.get('current_window', 'current')}", "",
                  f"{verdict}: {drift.get('n_drifted', '?')} of {drift.get('n_columns', '?')} columns drifted "
                  f"(share {_score(drift.get('drift_share'))}, dataset drift at >= {drift.get('threshold', '?')}).", ""]
        top = ranked(drift.get("columns", {}), 12)
        rows = [[name, col["type"], col["test"], _score(col["score"]),
                 f"{'p <' if col['test'] in P_VALUE_TESTS else '>='} {col['threshold']:g}", "**yes**" if col["drift"] else "no"]
                for name, col in top]
        lines += [tabulate(rows, headers=["column", "type", "test", "score", "drift if", "drifted"], tablefmt="github", disable_numparse=True), ""]
        if len(drift.get("columns", {})) > len(top):
            lines += [f"The {len(top)} most drifted of {len(drift['columns'])} columns; all of them are in drift.md.", ""]

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


CURVES = {"roc.csv": ("fpr", "tpr", "ROC", "false positive rate", "true positive rate"),
          "prc.csv": ("recall", "precision", "Precision-recall", "recall", "precision")}


def curves_against_plot(data: dict[str, list[dict]], baseline_label: str, target: Path) -> Path | None:
    """ROC and precision-recall curves of this run (solid) and the baseline revision (dashed),
    per split, from the data `dvc plots diff REV --json` returns."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from driftgate.io import atomic_path

    panels = [(Path(name).name, rows) for name, rows in data.items() if Path(name).name in CURVES and rows]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.2), squeeze=False)
    for ax, (name, rows) in zip(axes.flat, panels):
        x_key, y_key, title, x_label, y_label = CURVES[name]
        groups: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for row in rows:
            groups.setdefault((row.get("rev", "?"), row.get("split", "")), []).append((float(row[x_key]), float(row[y_key])))
        splits = sorted({split for _, split in groups})
        for (rev, split), points in sorted(groups.items(), key=lambda item: (item[0][1], item[0][0] != "workspace")):
            xs, ys = zip(*points)
            label = f"{split}, {'this run' if rev == 'workspace' else baseline_label}"
            ax.plot(xs, ys, linestyle="-" if rev == "workspace" else "--", linewidth=1.4, label=label,
                    color=f"C{splits.index(split)}", alpha=1.0 if rev == "workspace" else 0.8)
        ax.set(title=f"{title}: this run vs {baseline_label}", xlabel=x_label, ylabel=y_label)
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(target) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return target


def _gate_value(value) -> str:
    return "missing" if value is None else f"{value:.4g}"


def _caption(image: Path) -> str:
    return {"confusion_matrix.png": "Confusion matrices", "roc_pr.png": "ROC and precision-recall curves",
            "curves_against_main.png": "ROC and precision-recall: this run (solid) against the baseline (dashed)",
            "drift.png": "Reference vs current, most drifted columns"}.get(image.name, image.stem.replace("_", " "))
