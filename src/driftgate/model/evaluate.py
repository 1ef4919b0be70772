"""Evaluate: classification metrics and curves on the time-ordered holdout and the current batch
(their plots are drawn by driftgate.reporting.plots)."""

from __future__ import annotations

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
