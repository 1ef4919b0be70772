"""Every plot driftgate draws, and the one way they are saved (`save_png`): the drift
distributions, the evaluation's ROC / precision-recall / confusion matrices, and the curves
against the main branch."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from driftgate.config import PlotFiles
from driftgate.reporting.render import score
from driftgate.results import DriftResult


def new_figure(**kwargs):
    """A matplotlib Figure drawn by the Agg backend, without pyplot: no global figure state to
    close, and pyplot's import (a large share of a small drift run) is skipped."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def save_png(fig, target: Path, dpi: int = 100) -> Path:
    """The one way plots are saved: a PNG written atomically."""
    from driftgate.io import atomic_path

    with atomic_path(target) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return target


def drift_plot(drift: DriftResult, reference, current, target: Path, top: int = 6) -> Path | None:
    """Reference vs current distributions of the `top` most drifted columns, as one PNG."""
    import numpy as np
    import pandas as pd

    columns = [col.column for col in drift.ranked(top)]
    if not columns:
        return None
    ncols = min(3, len(columns))
    nrows = -(-len(columns) // ncols)
    fig = new_figure(figsize=(4.6 * ncols, 3.2 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax, name in zip(axes.flat, columns):
        col = drift.columns[name]
        ref, cur = reference[name], current[name]
        if col.type == "numeric":
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
        mark = "DRIFT" if col.drift else "no drift"
        ax.set_title(f"{name}: {col.test} {score(col.score)} ({mark})", fontsize=9,
                     color="firebrick" if col.drift else "black")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(columns):]:
        ax.axis("off")
    fig.tight_layout()
    return save_png(fig, target)


CURVES = {"roc.csv": ("fpr", "tpr", "ROC", "false positive rate", "true positive rate"),
          "prc.csv": ("recall", "precision", "Precision-recall", "recall", "precision")}


def curves_against_plot(data: dict[str, list[dict]], baseline_label: str, target: Path) -> Path | None:
    """ROC and precision-recall curves of this run (solid) and the baseline revision (dashed),
    per split, from the data `dvc plots diff REV --json` returns."""
    panels = [(Path(name).name, rows) for name, rows in data.items() if Path(name).name in CURVES and rows]
    if not panels:
        return None
    fig = new_figure(figsize=(5.2 * len(panels), 4.2))
    axes = fig.subplots(1, len(panels), squeeze=False)
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
    return save_png(fig, target)


def evaluation_pngs(results: dict[str, tuple[np.ndarray, np.ndarray, dict]], files: PlotFiles,
                    class_names: tuple[str, str] = ("negative", "positive")) -> list[Path]:
    """ROC, precision-recall and confusion-matrix PNGs for every split in `results`."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    if not results:
        return []
    written = []
    fig = new_figure(figsize=(10, 4.2))
    ax_roc, ax_pr = fig.subplots(1, 2)
    for split, (y_true, scores, metrics) in results.items():
        fpr, tpr, _ = roc_curve(y_true, scores)
        precision, recall, _ = precision_recall_curve(y_true, scores)
        ax_roc.plot(fpr, tpr, label=f"{split} (AUC {metrics['roc_auc']:.3f})")
        ax_pr.plot(recall, precision, label=f"{split} (AP {metrics['pr_auc']:.3f})")
    ax_roc.plot([0, 1], [0, 1], ls=":", c="grey")
    ax_roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    ax_pr.set(xlabel="recall", ylabel="precision", title="Precision-recall")
    for ax in (ax_roc, ax_pr):
        ax.legend(loc="best", fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    written.append(save_png(fig, files.roc_pr_png, dpi=110))

    splits = list(results)
    fig = new_figure(figsize=(4.2 * len(splits), 3.8))
    axes = fig.subplots(1, len(splits), squeeze=False)
    for ax, split in zip(axes[0], splits):
        cm = results[split][2]["confusion_matrix"]
        grid = np.array([[cm["tn"], cm["fp"]], [cm["fn"], cm["tp"]]])
        ax.imshow(grid, cmap="Blues")
        for (i, j), value in np.ndenumerate(grid):
            ax.text(j, i, f"{value:,}", ha="center", va="center", color="white" if value > grid.max() / 2 else "black")
        ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=list(class_names), yticklabels=list(class_names),
               xlabel="predicted", ylabel="actual", title=f"{split} (F1 {results[split][2]['f1']:.3f})")
    fig.tight_layout()
    written.append(save_png(fig, files.confusion_png, dpi=110))
    return written


LEVEL_COLOURS = {"ok": "#2e7d32", "warning": "#ef6c00", "critical": "#c62828"}  # and skipped passes: grey


def _series(passes: list[dict], name: str) -> np.ndarray:
    return np.array([np.nan if p.get(name) is None else float(p[name]) for p in passes], dtype=float)


def _limits(ax, levels, text: str, style: str) -> None:
    """A metric's warning and critical limits as horizontal lines, in the levels' colours."""
    for level in ("warning", "critical"):
        limit = getattr(levels, level)
        if limit is not None:
            ax.axhline(limit, color=LEVEL_COLOURS[level], linestyle=style, linewidth=1, alpha=0.8,
                       label=f"{text} {level} {limit:g}")


def _drift_panel(ax, done: list[dict], when: np.ndarray, colours: list[str]) -> None:
    share = _series(done, "drift_share")
    ax.plot(when, share, color="#607d8b", linewidth=1, zorder=2)
    ax.scatter(when, share, c=colours, s=36, zorder=3, edgecolors="black", linewidths=0.4)


def _f1_panel(ax, done: list[dict], when: np.ndarray, colours: list[str], rows: str, min_labels: int) -> None:
    """Estimated F1 (dashed, diamonds) with its interval (a band, and a bar per pass), passes whose
    estimate abstained (x on the time axis), and realized F1 (solid, dots; hollow on few labels)."""
    estimated, lower, upper = _series(done, "estimated_f1"), _series(done, "estimated_lower"), _series(done, "estimated_upper")
    bounded = np.isfinite(lower) & np.isfinite(upper)
    ax.fill_between(when, lower, upper, where=bounded, color="#7e57c2", alpha=0.15, linewidth=0)  # between passes
    ax.vlines(when[bounded], lower[bounded], upper[bounded], color="#7e57c2", alpha=0.35, linewidth=7,
              label="estimated F1 interval")  # each pass's own interval, also where no neighbour has one
    ax.plot(when, estimated, color="#7e57c2", linestyle="--", linewidth=1.2, zorder=2, label="estimated F1 (no labels)")
    ax.scatter(when, estimated, c=colours, marker="D", s=30, zorder=3, edgecolors="#4a148c", linewidths=0.6)
    abstained = ~np.isfinite(estimated)
    if abstained.any():
        ax.scatter(when[abstained], [0.03] * int(abstained.sum()), transform=ax.get_xaxis_transform(), marker="x", s=22,
                   color="#7e57c2", zorder=3, label="estimate abstained")
    realized, labelled = _series(done, "realized_f1"), _series(done, "labelled_rows")
    ax.plot(when, realized, color="#1565c0", linewidth=1.4, zorder=2, label="realized F1 (labels in)")
    enough = np.isfinite(realized) & (np.nan_to_num(labelled) >= min_labels)
    few = np.isfinite(realized) & ~enough
    ax.scatter(when[enough], realized[enough], c=[c for c, e in zip(colours, enough) if e], s=40, zorder=4,
               edgecolors="#0d47a1", linewidths=0.8)
    if few.any():
        ax.scatter(when[few], realized[few], facecolors="none", s=40, zorder=4, linewidths=1.2,
                   edgecolors=[c for c, f in zip(colours, few) if f], label=f"realized F1 on < {min_labels:,} labelled {rows}")


def monitoring_plot(passes: list[dict], rules, rows: str = "rows", min_labels: int = 1, target: Path | None = None):
    """The monitoring history over time (x: when each pass finished), as one Figure in two panels:
    drift share against monitoring.alerts.drift_share, and F1, realized (labels in) and estimated
    without labels with its interval as a band, against alerts.realized_f1 and alerts.estimated_f1.
    Judged passes are coloured by their level; skipped passes are small grey marks on the time
    axis; realized F1 on fewer than `min_labels` labelled rows is drawn hollow. `passes` are the
    store's pass rows (MonitoringStore.passes_list), in any order; `rules` is AlertRules; `rows`
    is what many rows are called (params.project.rows). Saved to `target` when given."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.lines import Line2D

    passes = sorted(passes, key=lambda p: (p["finished_at"], p.get("id") or 0))
    done = [p for p in passes if p["status"] == "done"]
    skipped = [p for p in passes if p["status"] != "done"]
    fig = new_figure(figsize=(11.5, 6.6))
    drift_ax, f1_ax = fig.subplots(2, 1, sharex=True)
    if done:
        when = np.array([p["finished_at"] for p in done], dtype=object)
        colours = [LEVEL_COLOURS.get(p["level"], "grey") for p in done]
        _drift_panel(drift_ax, done, when, colours)
        _f1_panel(f1_ax, done, when, colours, rows, min_labels)
    _limits(drift_ax, rules.drift_share, "drift share", "--")
    drift_ax.set(ylim=(0, 1.02), ylabel="drift share", title=f"Drift share: share of the tested columns that drift, per pass "
                                                              f"({len(done):,} judged, {len(skipped):,} skipped)")
    _limits(f1_ax, rules.realized_f1, "realized F1", "-")
    _limits(f1_ax, rules.estimated_f1, "estimated F1", ":")
    f1_ax.set(ylim=(0, 1.02), ylabel="F1", xlabel="pass finished (UTC)",
              title="F1: realized once labels arrive; estimated without labels, with its interval")

    for ax in (drift_ax, f1_ax):
        if skipped:
            ax.scatter([p["finished_at"] for p in skipped], [0.015] * len(skipped), transform=ax.get_xaxis_transform(),
                       marker="|", s=40, color="grey", zorder=3,
                       label=f"skipped pass (too few {rows})" if ax is drift_ax else None)
        ax.grid(alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        if ax is drift_ax:
            handles += [Line2D([], [], marker="o", linestyle="", color=colour, markeredgecolor="black", markeredgewidth=0.4)
                        for colour in LEVEL_COLOURS.values()]
            labels += [f"pass {level}" for level in LEVEL_COLOURS]
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    if passes:
        locator = AutoDateLocator()
        f1_ax.xaxis.set_major_locator(locator)
        f1_ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    else:
        for ax in (drift_ax, f1_ax):
            ax.text(0.5, 0.5, "no monitoring pass yet", transform=ax.transAxes, ha="center", va="center", color="grey")
    fig.tight_layout()
    if target is not None:
        save_png(fig, target)
    return fig
