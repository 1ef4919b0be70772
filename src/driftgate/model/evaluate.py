"""Evaluate: classification metrics on the time-ordered holdout and the current batch, plus plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

MAX_CURVE_POINTS = 200


def classification_metrics(y_true: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """F1, precision, recall, ROC-AUC, PR-AUC and the confusion matrix at `threshold`.

    Metrics that are undefined (e.g. ROC-AUC with one class present) are NaN, and NaN fails
    every gate that reads it.
    """
    y_pred = (scores >= threshold).astype(int)
    both_classes = len(np.unique(y_true)) == 2
    tn, fp, fn, tp = confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    return {
        "f1": float(f1_score(y_true, y_pred, zero_division=0)),
        "precision": float(precision_score(y_true, y_pred, zero_division=0)),
        "recall": float(recall_score(y_true, y_pred, zero_division=0)),
        "roc_auc": float(roc_auc_score(y_true, scores)) if both_classes else float("nan"),
        "pr_auc": float(average_precision_score(y_true, scores)) if both_classes else float("nan"),
        "positive_share": float(np.mean(y_true)) if len(y_true) else float("nan"),
        "rows": int(len(y_true)),
        "threshold": float(threshold),
        "confusion_matrix": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
    }


def _thin(frame: pd.DataFrame) -> pd.DataFrame:
    if len(frame) <= MAX_CURVE_POINTS:
        return frame
    keep = np.unique(np.linspace(0, len(frame) - 1, MAX_CURVE_POINTS).round().astype(int))
    return frame.iloc[keep]


def curves(y_true: np.ndarray, scores: np.ndarray, split: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """ROC and precision-recall points (thinned to at most 200 each) for DVC plots."""
    fpr, tpr, _ = roc_curve(y_true, scores)
    precision, recall, _ = precision_recall_curve(y_true, scores)
    roc = _thin(pd.DataFrame({"fpr": fpr, "tpr": tpr})).assign(split=split)
    prc = _thin(pd.DataFrame({"recall": recall[::-1], "precision": precision[::-1]})).assign(split=split)
    return roc, prc


def plot_pngs(results: dict[str, tuple[np.ndarray, np.ndarray, dict]], out_dir: Path,
              class_names: tuple[str, str] = ("negative", "positive")) -> list[Path]:
    """ROC, precision-recall and confusion-matrix PNGs for every split in `results`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    fig, (ax_roc, ax_pr) = plt.subplots(1, 2, figsize=(10, 4.2))
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
    written.append(_save(fig, out_dir / "roc_pr.png"))

    splits = list(results)
    fig, axes = plt.subplots(1, len(splits), figsize=(4.2 * len(splits), 3.8), squeeze=False)
    for ax, split in zip(axes[0], splits):
        cm = results[split][2]["confusion_matrix"]
        grid = np.array([[cm["tn"], cm["fp"]], [cm["fn"], cm["tp"]]])
        ax.imshow(grid, cmap="Blues")
        for (i, j), value in np.ndenumerate(grid):
            ax.text(j, i, f"{value:,}", ha="center", va="center", color="white" if value > grid.max() / 2 else "black")
        ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=list(class_names), yticklabels=list(class_names),
               xlabel="predicted", ylabel="actual", title=f"{split} (F1 {results[split][2]['f1']:.3f})")
    written.append(_save(fig, out_dir / "confusion_matrix.png"))
    return written


def _save(fig, target: Path) -> Path:
    import matplotlib.pyplot as plt

    from driftgate.io import atomic_path

    fig.tight_layout()
    with atomic_path(target) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return target
