"""Is the window inside the reference's support? A domain classifier answers.

A small, deliberately shallow gradient-boosted classifier learns to tell reference rows (0)
from window rows (1) on the model's features; its cross-validated ROC-AUC says how separable
they are: about 0.5 when the window looks like the reference, near 1 when almost every window
row is unlike any reference row. There the calibration was never checked, so an estimate
would be a guess: the estimator abstains above `max_domain_auc`.

The classifier is shallow (4 leaves a tree, leaves of at least 2% of the rows) on purpose: a
deep one separates any two periods of time-stamped data by memorising exact values that repeat
within a period (e.g. the hour's weather shared by every row of that hour), which says the rows
differ, not that they lie outside the range the model and its calibration were checked on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

from driftgate.errors import DataError
from driftgate.estimation.settings import EstimationSettings

MAX_CATEGORIES = 250  # categorical columns with more categories are given to the classifier as codes
TREES = 30
LEAVES = 4
LEAF_SHARE = 0.02  # smallest leaf, as a share of the rows a fold is trained on


def encode(reference: pd.DataFrame, window: pd.DataFrame, kinds: dict[str, str]) -> tuple[np.ndarray, np.ndarray, list[bool]]:
    """Both frames as float matrices with the same category codes (missing stays NaN)."""
    missing = [c for c in kinds if c not in reference.columns or c not in window.columns]
    if missing:
        raise DataError("support check", f"column(s) {', '.join(missing)} missing from the reference or the window",
                        "give both frames the model's feature columns")
    left, right, categorical = [], [], []
    for column, kind in kinds.items():
        if kind == "categorical":
            both = pd.concat([reference[column], window[column]], ignore_index=True).astype("string")
            codes = pd.Categorical(both).codes.astype(float)
            codes[codes < 0] = np.nan
            left.append(codes[: len(reference)])
            right.append(codes[len(reference):])
            categorical.append(int(np.nanmax(codes, initial=0)) + 1 <= MAX_CATEGORIES)
        else:
            left.append(pd.to_numeric(reference[column], errors="coerce").to_numpy(dtype=float))
            right.append(pd.to_numeric(window[column], errors="coerce").to_numpy(dtype=float))
            categorical.append(False)
    return np.column_stack(left), np.column_stack(right), categorical


def domain_auc(reference: pd.DataFrame, window: pd.DataFrame, kinds: dict[str, str], settings: EstimationSettings) -> float:
    """Out-of-fold ROC-AUC of a classifier telling window rows from reference rows.

    Each side is sampled down to the same number of rows (at most `settings.domain_rows`). The
    classifier runs on one thread: it is so small that OpenMP's threads cost more than they
    save, and far more on a busy machine (12 s instead of 0.3 s in the tests).
    """
    ref, win, categorical = encode(reference, window, kinds)
    rng = np.random.default_rng(settings.seed)
    size = min(len(ref), len(win), settings.domain_rows)
    x = np.vstack([ref[rng.choice(len(ref), size, replace=False)], win[rng.choice(len(win), size, replace=False)]])
    y = np.r_[np.zeros(size), np.ones(size)]
    folds = StratifiedKFold(settings.domain_folds, shuffle=True, random_state=settings.seed)
    scores = np.empty(len(y))
    with threadpool_limits(limits=1, user_api="openmp"):
        for train, test in folds.split(x, y):
            classifier = HistGradientBoostingClassifier(
                max_iter=TREES, learning_rate=0.1, max_leaf_nodes=LEAVES, min_samples_leaf=max(20, int(LEAF_SHARE * len(train))),
                categorical_features=categorical if any(categorical) else None, early_stopping=False, random_state=settings.seed,
            )
            scores[test] = classifier.fit(x[train], y[train]).predict_proba(x[test])[:, 1]
    return float(roc_auc_score(y, scores))


def abstention(rows: int, auc: float | None, settings: EstimationSettings, what: str = "rows") -> str:
    """Why the estimator must abstain, in words, or "" when it need not."""
    if rows < settings.min_rows:
        return f"{rows:,} {what}, fewer than the {settings.min_rows:,} an estimate needs (estimation min_rows)"
    if auc is not None and auc > settings.max_domain_auc:
        return (f"the window lies outside the reference's support: a domain classifier tells its {what} from the "
                f"reference's with AUC {auc:.3f} > {settings.max_domain_auc:.2f} (estimation max_domain_auc), "
                f"so the calibration was never checked on data like it")
    return ""
