"""The promotion rule: promote a challenger only when it is better than the champion by more than
noise, measured on the same rows.

Both models are scored on the same evaluation rows. The challenger is promoted only if

1. its F1 minus the champion's F1 on those rows is at least the required margin (absolute: the
   margin itself; relative: margin x the champion's F1), and
2. the one-sided paired bootstrap lower bound of that difference at `confidence` is above 0, and
3. it passes every gate.

The bootstrap is paired: each resample takes the same row indices for both models, so the noise
both share (which rows happen to be hard) cancels and only the models' disagreement is left.
It is vectorised without drawing indices. F1 depends on a resample only through how many rows of
each of the eight kinds (label x champion's decision x challenger's decision) it holds, and for
n rows drawn with replacement those eight counts are exactly multinomial(n, shares of the kinds).
So each draw is one multinomial vector of 8 counts, the same distribution as resampling indices,
at a cost that does not grow with the rows (2000 draws take about a millisecond).

The rows are not the only noise. Two fits of one recipe (pipeline, settings, training window) on
two samples of the same process differ by chance too, and on the bundled data a fit's lead on one
window does not carry over to the next (the F1s of 201 such fits on the January-March holdout and on
April are uncorrelated): what a swap can be expected to gain is the difference between the recipes,
not between two fits. So, given `refits`, the rule compares recipes: the champion's recipe (its
card's settings and training window) and the challenger's are each fitted `retraining.replicas`
more times on resampled rows, every fit is scored on the same evaluation rows, and the difference
is the one of the mean F1s (each model with its refits). Its bound adds to each paired bootstrap
draw of the rows' noise a draw of the means' noise, se x t(df), se = sqrt(sd_a^2 / n_a + sd_b^2 / n_b)
(Welch); a side with a single fit borrows the other's sd. benchmarks/promotion_rule.py measures it.
"""

from __future__ import annotations

import numpy as np

from driftgate.config import RetrainingConfig
from driftgate.errors import DataError
from driftgate.results import PromotionDecision

WHERE = "promotion rule"
# Comparisons of the difference with the margin forgive float rounding this small, so that a
# challenger exactly `margin` better is not rejected for a last-digit error.
TOLERANCE = 1e-12


def _labels(y) -> np.ndarray:
    values = np.asarray(y)
    if values.ndim != 1 or values.size == 0:
        raise DataError(f"{WHERE}: labels", f"expected a non-empty 1-D array, got shape {values.shape}",
                        "pass one 0/1 label per evaluation row")
    if values.dtype == bool:
        return values.astype(np.int8)
    if not np.issubdtype(values.dtype, np.number):
        raise DataError(f"{WHERE}: labels", f"labels must be 0 or 1, got values of type {values.dtype}",
                        "encode the positive class as 1 and the other as 0")
    bad = ~np.isin(values, (0, 1))
    if bad.any():
        shown = ", ".join(map(str, np.unique(values[bad])[:5]))
        raise DataError(f"{WHERE}: labels", f"{int(bad.sum()):,} label(s) are not 0 or 1 (e.g. {shown})",
                        "drop unlabelled rows and encode the positive class as 1")
    return values.astype(np.int8)


def _same_length(what: str, values: np.ndarray, rows: int) -> None:
    if values.ndim != 1 or len(values) != rows:
        raise DataError(f"{WHERE}: {what}", f"shape {values.shape} does not match the {rows:,} labels",
                        "score both models on exactly the same evaluation rows, in the same order")


def _scores(what: str, scores, rows: int) -> np.ndarray:
    values = np.asarray(scores)
    _same_length(what, values, rows)
    if not np.issubdtype(values.dtype, np.number) or values.dtype == bool:
        raise DataError(f"{WHERE}: {what}", f"scores must be numbers, got values of type {values.dtype}",
                        "pass the positive-class probabilities (predict_proba(...)[:, 1])")
    values = values.astype(float)
    bad = ~np.isfinite(values)
    if bad.any():
        raise DataError(f"{WHERE}: {what}", f"{int(bad.sum()):,} score(s) are NaN or infinite (first at row {int(np.argmax(bad))})",
                        "check the model's input for the rows named")
    return values


def _decisions(what: str, pred, rows: int) -> np.ndarray:
    values = np.asarray(pred)
    _same_length(what, values, rows)
    if values.dtype != bool:
        if not np.issubdtype(values.dtype, np.number) or not np.isin(values, (0, 1)).all():
            raise DataError(f"{WHERE}: {what}", "decisions must be booleans (or 0/1)",
                            "pass scores >= threshold")
        values = values.astype(bool)
    return values


def _threshold(what: str, threshold) -> float:
    value = float(threshold)
    if not np.isfinite(value):
        raise DataError(f"{WHERE}: {what}", f"threshold {threshold!r} is not a finite number", "use the model's decision threshold")
    return value


def _f1(tp, fp, fn):
    """F1 = 2 TP / (2 TP + FP + FN), 0 when there is nothing to score (as scikit-learn's zero_division=0)."""
    tp, fp, fn = (np.asarray(v, dtype=float) for v in (tp, fp, fn))
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros_like(denominator), where=denominator > 0)


def f1_at(y: np.ndarray, scores: np.ndarray, threshold: float) -> float:
    """F1 of the decisions `scores >= threshold` against the 0/1 labels `y`."""
    labels = _labels(y)
    predicted = _scores("scores", scores, len(labels)) >= _threshold("scores", threshold)
    positive = labels == 1
    return float(_f1(np.sum(positive & predicted), np.sum(~positive & predicted), np.sum(positive & ~predicted)))


def _kind_counts(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Champion's and challenger's F1 from counts of the 8 kinds, kind = 4 label + 2 champion + challenger."""
    c = counts
    champion = _f1(c[..., 6] + c[..., 7], c[..., 2] + c[..., 3], c[..., 4] + c[..., 5])
    challenger = _f1(c[..., 5] + c[..., 7], c[..., 1] + c[..., 3], c[..., 4] + c[..., 6])
    return champion, challenger


def _bootstrap(labels: np.ndarray, champion: np.ndarray, challenger: np.ndarray, draws: int, confidence: float,
               rng: np.random.Generator) -> tuple[float, np.ndarray]:
    """(observed F1 difference, `draws` paired bootstrap differences) of two decision vectors."""
    rows = len(labels)
    if int(draws) < 1:
        raise DataError(f"{WHERE}: draws", f"{draws} resamples cannot give a bound", "use retraining.draws (default 2000)")
    if not 0.0 < float(confidence) < 1.0:
        raise DataError(f"{WHERE}: confidence", f"{confidence} is not between 0 and 1", "use retraining.confidence (default 0.95)")
    kinds = 4 * labels.astype(np.int64) + 2 * champion + challenger
    observed = np.bincount(kinds, minlength=8)
    champion_f1, challenger_f1 = _kind_counts(observed)
    resampled = rng.multinomial(rows, observed / rows, size=int(draws))
    champion_b, challenger_b = _kind_counts(resampled)
    return float(challenger_f1 - champion_f1), challenger_b - champion_b


def paired_difference(y, champion_pred: np.ndarray, challenger_pred: np.ndarray, draws: int, confidence: float,
                      seed: int) -> tuple[float, float]:
    """(challenger F1 - champion F1 on all rows, one-sided paired bootstrap lower bound at `confidence`).

    Each of `draws` resamples takes n rows with replacement, the same rows for both models; the
    lower bound is the (1 - confidence) quantile of the resampled differences.
    """
    labels = _labels(y)
    rows = len(labels)
    champion = _decisions("champion decisions", champion_pred, rows)
    challenger = _decisions("challenger decisions", challenger_pred, rows)
    difference, resampled = _bootstrap(labels, champion, challenger, draws, confidence, np.random.default_rng(seed))
    return difference, float(np.quantile(resampled, 1.0 - float(confidence)))


def _fits(what: str, values, empty: bool = False) -> np.ndarray:
    found = np.asarray([] if values is None else values, dtype=float)
    if found.ndim != 1 or found.size < (0 if empty else 1) or not np.isfinite(found).all():
        raise DataError(f"{WHERE}: {what}", f"expected one finite F1 per fit, got {values!r}",
                        "pass the F1 of the model and of each refit on the evaluation rows")
    return found


def recipe_spread(champion_fits, challenger_fits) -> tuple[float, int, float, float]:
    """(se of the difference of the mean F1s, Welch's degrees of freedom, sd champion, sd challenger).
    A side with one fit borrows the other side's sd; with one fit on both there is no spread."""
    a, b = _fits("champion fits", champion_fits), _fits("challenger fits", challenger_fits)
    if a.size < 2 and b.size < 2:
        raise DataError(f"{WHERE}: fits", "one fit per side has no spread to measure",
                        "refit at least one side twice or more (retraining.replicas), or pass no fits")
    sd_a = float(np.std(a, ddof=1)) if a.size >= 2 else float(np.std(b, ddof=1))
    sd_b = float(np.std(b, ddof=1)) if b.size >= 2 else sd_a
    va, vb = sd_a**2 / a.size, sd_b**2 / b.size
    se = float(np.sqrt(va + vb))
    measured = [(v, n) for v, n in ((va, a.size), (vb, b.size)) if n >= 2]
    denominator = sum(v**2 / (n - 1) for v, n in measured)
    df = (va + vb) ** 2 / denominator if denominator > 0 else float(sum(n - 1 for _, n in measured))
    return se, max(1, int(df)), sd_a, sd_b


def _percent(share: float) -> str:
    return f"{share * 100:.4g}%"


def _signed(value: float) -> str:
    return f"{value:+.3f}"


def decide(y: np.ndarray, champion_scores: np.ndarray, challenger_scores: np.ndarray, champion_threshold: float,
           challenger_threshold: float, settings: RetrainingConfig, gates_passed: bool = True, gate_reason: str = "",
           champion_refits=None, challenger_refits=None) -> PromotionDecision:
    """The rule's verdict on two models scored on the same rows, with the reason in words.

    Without refits: the two models' F1s and the rows' noise. With `champion_refits` and
    `challenger_refits` (the F1 on these rows of each recipe refitted on resampled rows, either may
    be empty): the recipes' mean F1s (each model with its refits), and the bound also carries the
    means' noise (see the module's docstring)."""
    labels = _labels(y)
    rows = len(labels)
    champion = _scores("champion scores", champion_scores, rows) >= _threshold("champion scores", champion_threshold)
    challenger = _scores("challenger scores", challenger_scores, rows) >= _threshold("challenger scores", challenger_threshold)
    positive = labels == 1
    champion_model = float(_f1(np.sum(positive & champion), np.sum(~positive & champion), np.sum(positive & ~champion)))
    challenger_model = float(_f1(np.sum(positive & challenger), np.sum(~positive & challenger), np.sum(positive & ~challenger)))
    rng = np.random.default_rng(settings.seed)
    pair, resampled = _bootstrap(labels, champion, challenger, settings.draws, settings.confidence, rng)
    recipes = champion_refits is not None or challenger_refits is not None
    sd_a = sd_b = None
    if recipes:
        a = np.concatenate([[champion_model], _fits("champion refits", champion_refits, empty=True)])
        b = np.concatenate([[challenger_model], _fits("challenger refits", challenger_refits, empty=True)])
        se, df, sd_a, sd_b = recipe_spread(a, b)
        champion_f1, challenger_f1 = float(a.mean()), float(b.mean())
        difference = challenger_f1 - champion_f1
        # the rows' noise of the pair, centred, plus the noise of the two means
        draws = difference + (resampled - pair) + se * rng.standard_t(df, size=int(settings.draws))
        fits_words = (f"{a.size} fits each" if a.size == b.size else f"{a.size} and {b.size} fits")
        fits = f"over {fits_words}: each model and its recipe refitted on resampled rows"
        noise = f"the rows' and the refits' noise (F1 sd {sd_a:.4f} and {sd_b:.4f})"
        fits_a, fits_b = int(a.size), int(b.size)
    else:
        champion_f1, challenger_f1, difference, draws = champion_model, challenger_model, pair, resampled
        fits, noise, fits_a, fits_b = "", "the rows' noise only", 1, 1
    lower = float(np.quantile(draws, 1.0 - float(settings.confidence)))
    relative = settings.margin_kind == "relative"
    required = settings.margin * champion_f1 if relative else settings.margin
    margin_words = (f"the required {required:.3f} ({_percent(settings.margin)} of the champion's F1)" if relative
                    else f"the margin {required:.3f}")
    level = _percent(settings.confidence)
    enough = difference >= required - TOLERANCE
    above_zero = lower > 0.0
    promote = bool(gates_passed and enough and above_zero)
    change = (f"mean F1 {champion_f1:.3f} -> {challenger_f1:.3f} {fits}" if recipes
              else f"F1 {champion_f1:.3f} -> {challenger_f1:.3f}")
    if not gates_passed:
        reason = "rejected: the challenger fails the gates" + (f" ({gate_reason})" if gate_reason else "")
    elif not enough:
        reason = f"rejected: {_signed(difference)} is under {margin_words} ({change}, {level} lower bound {_signed(lower)})"
    elif not above_zero:
        reason = (f"rejected: {_signed(difference)} reaches {margin_words}, but the {level} lower bound "
                  f"{_signed(lower)} with {noise} is not above 0, so the gain may be noise ({change})")
    else:
        short = f"required {required:.3f}" if relative else f"margin {required:.3f}"
        reason = f"promoted: {change} ({_signed(difference)} >= {short}), {level} lower bound {_signed(lower)} > 0 with {noise}"
    return PromotionDecision(
        promote=promote, rows=rows, champion_f1=champion_f1, challenger_f1=challenger_f1, difference=difference,
        lower=lower, confidence=settings.confidence, margin=settings.margin, margin_kind=settings.margin_kind,
        required=float(required), gates_passed=bool(gates_passed), reason=reason, champion_model_f1=champion_model,
        challenger_model_f1=challenger_model, champion_fits=fits_a, challenger_fits=fits_b, champion_sd=sd_a, challenger_sd=sd_b,
    )
