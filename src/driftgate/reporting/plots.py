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
