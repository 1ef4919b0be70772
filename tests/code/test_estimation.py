"""Label-free F1 estimates on synthetic data: intervals that cover, abstentions that say why."""

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from driftgate.errors import DataError
from driftgate.estimation import EstimationSettings, estimate_f1, expected_f1, f1_interval, fit_calibration, fit_reference
from driftgate.estimation.f1 import realised_f1, simulate_f1

KINDS = {"x": "numeric", "z": "numeric", "group": "categorical"}
FAST = EstimationSettings(draws=500, refits=25, min_rows=200, domain_rows=1000)


def sample(rows, rng, shift=0.0, offsets=None, days=10):
    """Features, the model's probability of the positive class, labels and a timestamp per row.

    `shift` moves the features (a window from elsewhere); `offsets` adds a per-day log-odds
    offset to the labels' probability that the model does not see (the label rate moving from
    day to day in a way the features do not explain)."""
    x = rng.normal(shift, 1.0, rows)
    z = rng.normal(0.0, 1.0, rows)
    group = rng.choice(["a", "b", "c"], rows)
    day = np.sort(rng.integers(0, days, rows))
    logit = -1.0 + 1.5 * x + 0.5 * z
    p = 1 / (1 + np.exp(-logit))
    moved = p if offsets is None else 1 / (1 + np.exp(-logit - offsets[day]))
    y = (rng.uniform(size=rows) < moved).astype(int)
    times = pd.Timestamp("2024-01-01") + pd.to_timedelta(day, unit="D")
    return pd.DataFrame({"x": x, "z": z, "group": group}), p, y, times


def reference(seed=0, settings=FAST, offsets=None):
    rng = np.random.default_rng(seed)
    features, p, y, times = sample(5000, rng, offsets=offsets)
    return fit_reference(p, y, times, features, KINDS, 0.5, settings)


@pytest.fixture(scope="module")
def ref():
    """A holdout of 5,000 rows over 10 days whose model probabilities are the true ones."""
    return reference()


def test_expected_f1_is_the_f1_of_the_expected_confusion_matrix():
    p = np.array([0.9, 0.6, 0.2, 0.1])
    predicted = np.array([True, True, False, False])
    tp, fp, fn = 1.5, 0.5, 0.3
    assert expected_f1(p, predicted) == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert realised_f1(np.array([1, 0, 0, 0]), predicted) == pytest.approx(2 / 3)
    assert realised_f1(np.zeros(4, int), np.zeros(4, bool)) == 0.0  # undefined F1 reads 0, like sklearn's zero_division=0


def test_simulated_f1_centres_on_the_expected_f1():
    rng = np.random.default_rng(1)
    p = rng.beta(2, 3, 20_000)
    predicted = p >= 0.5
    draws = simulate_f1([p], predicted, 500, rng)
    assert len(draws) == 500
    assert np.mean(draws) == pytest.approx(expected_f1(p, predicted), abs=0.002)


def test_a_perfectly_calibrated_score_gives_intervals_that_cover_the_real_f1(ref):
    rng = np.random.default_rng(2)
    covered, sampling_only = 0, 0
    repeats = 60
    for _ in range(repeats):
        _, p, y, _ = sample(2000, rng)
        real = realised_f1(y, p >= 0.5)
        _, lower, upper, _ = f1_interval(ref, p)
        covered += lower <= real <= upper
        _, lower, upper, _ = f1_interval(ref, p, shift=False)
        sampling_only += lower <= real <= upper
    assert covered / repeats >= 0.8  # nominal 90%; 60 repeats put the share within about +-0.08 of it
    assert sampling_only / repeats >= 0.7  # with nothing shifting, label draws alone come close


def test_calibration_on_the_holdout_undoes_a_distorted_score():
    rng = np.random.default_rng(3)
    _, p, y, _ = sample(20_000, rng)
    real = realised_f1(y, p**2 >= 0.5)
    raw = expected_f1(p**2, p**2 >= 0.5)  # squared scores understate every probability
    for method in ("isotonic", "platt"):
        _, hp, hy, _ = sample(10_000, np.random.default_rng(4))
        calibration = fit_calibration(hp**2, hy, method, refits=5)
        assert len(calibration.refits) == 5
        assert abs(expected_f1(calibration.probabilities(p**2), p**2 >= 0.5) - real) < 0.02
    assert abs(raw - real) > 0.05


def test_a_window_from_a_clearly_different_distribution_abstains_naming_the_auc(ref):
    features, p, _, _ = sample(2000, np.random.default_rng(5), shift=3.0)
    result = estimate_f1(ref, p, features)
    assert result.abstained
    assert result.estimate is None and result.lower is None and result.upper is None
    assert result.domain_auc > FAST.max_domain_auc
    assert f"AUC {result.domain_auc:.3f}" in result.reason and "support" in result.reason
    assert not result.covers(0.5)


def test_a_window_like_the_reference_is_estimated_with_an_interval(ref):
    features, p, y, _ = sample(2000, np.random.default_rng(6))
    result = estimate_f1(ref, p, features)
    assert not result.abstained
    assert result.domain_auc < 0.65
    assert result.lower <= result.estimate <= result.upper
    assert result.rows == 2000 and result.coverage == FAST.coverage and result.threshold == 0.5
    assert result.covers(realised_f1(y, p >= 0.5))
    assert "AUC" in result.reason and "shift margin" in result.reason


def test_fewer_rows_than_the_minimum_abstains_without_a_support_check(ref):
    features, p, _, _ = sample(150, np.random.default_rng(7))
    result = estimate_f1(ref, p, features)
    assert result.abstained and result.domain_auc is None and result.estimate is None
    assert "150 rows" in result.reason and "200" in result.reason


def test_the_interval_narrows_as_rows_grow_down_to_the_shift_margin(ref):
    rng = np.random.default_rng(8)
    sampling, total = [], []
    for rows in (300, 3000, 30_000):
        _, p, _, _ = sample(rows, rng)
        _, lower, upper, _ = f1_interval(ref, p, shift=False)
        sampling.append(upper - lower)
        _, lower, upper, _ = f1_interval(ref, p)
        total.append(upper - lower)
    assert sampling[0] > sampling[1] > sampling[2]
    assert total[0] > total[1] >= total[2]
    assert total[2] >= 2 * 1.6 * ref.shift.sd * 0.9  # the shift term does not shrink with rows


def test_labels_that_move_from_day_to_day_widen_the_interval(ref):
    steady = ref
    moving = reference(offsets=np.random.default_rng(9).normal(0.0, 1.5, 10))  # odds x or / 4.5 on a typical day
    assert moving.shift.sd > steady.shift.sd + 0.02
    assert moving.shift.blocks == steady.shift.blocks == 10
    _, p, _, _ = sample(5000, np.random.default_rng(10))
    _, lo_steady, hi_steady, _ = f1_interval(steady, p)
    _, lo_moving, hi_moving, _ = f1_interval(moving, p)
    assert hi_moving - lo_moving > hi_steady - lo_steady


def test_a_holdout_with_too_few_blocks_is_refused_with_what_to_change():
    rng = np.random.default_rng(11)
    features, p, y, times = sample(3000, rng, days=3)
    with pytest.raises(DataError, match="3 block"):
        fit_reference(p, y, times, features, KINDS, 0.5, FAST)


def test_settings_have_documented_defaults_and_refuse_bad_values():
    settings = EstimationSettings()
    assert (settings.coverage, settings.max_domain_auc, settings.min_rows) == (0.9, 0.9, 500)
    with pytest.raises(ValidationError):
        EstimationSettings(coverage=1.5)
    with pytest.raises(ValidationError):
        EstimationSettings(max_domain_auc=0.4)
    with pytest.raises(ValidationError):
        EstimationSettings(min_row=10)  # a misspelt key is an error, not ignored
    with pytest.raises(ValidationError):
        settings.coverage = 0.8  # frozen
