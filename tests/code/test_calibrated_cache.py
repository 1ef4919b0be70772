"""Calibrated mode's resampled nulls: a cached null is exactly a fresh one, the counts-based draws
score samples exactly as the row-by-row tests do, and the verdicts do not depend on the cache,
on the columns tested beside a column, or on how the samples are drawn."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from driftgate.config import DriftConfig
from driftgate.drift import calibrated, detect
from driftgate.drift.calibrated import (
    RESAMPLE_CAP,
    _counts_null,
    _distinct_counts,
    _sampled_null,
    cached_null,
    clear_null_cache,
    column_rng,
    null_scores,
    scores_from_counts,
)
from driftgate.drift.stattests import CategoricalSummary, NumericSummary, run_test, summarise


def _numeric(rows, seed, distinct=None):
    rng = np.random.default_rng(seed)
    values = rng.normal(10, 3, rows)
    if distinct:
        values = np.round(values * distinct / 20) / (distinct / 20)  # few distinct values
    return summarise(pd.Series(values), "numeric")


def _categorical(rows, seed):
    rng = np.random.default_rng(seed)
    names = [f"c{i:02d}" for i in range(30)]
    weights = 1 / np.arange(1, 31)
    return summarise(pd.Series(rng.choice(names, rows, p=weights / weights.sum())), "categorical")


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_null_cache()
    yield
    clear_null_cache()


@pytest.mark.parametrize(("summary", "test", "kind"), [
    (_numeric(30_000, 1), "wasserstein", "numeric"),  # many distinct values: rows picked at random
    (_numeric(30_000, 2, distinct=40), "wasserstein", "numeric"),  # few: multinomial counts
    (_categorical(30_000, 3), "jensenshannon", "categorical"),
    (_numeric(800, 4), "ks", "numeric"),  # a small reference: p-value test, drawn row by row
    (_categorical(800, 5), "chisquare", "categorical"),
])
def test_a_cached_null_is_exactly_the_null_drawn_fresh_with_the_columns_stream(summary, test, kind):
    for current_rows in (600, 50_000):
        fresh = null_scores(summary, test, kind, current_rows, 60, column_rng(7, "x"))
        first = cached_null(summary, test, kind, current_rows, 60, 7, "x")
        again = cached_null(summary, test, kind, current_rows, 60, 7, "x")
        assert np.array_equal(fresh, first, equal_nan=True) and np.array_equal(fresh, again, equal_nan=True)
    other_column = cached_null(summary, test, kind, 600, 60, 7, "y")
    assert not np.array_equal(other_column, cached_null(summary, test, kind, 600, 60, 7, "x"))  # its own stream


def test_above_the_cap_every_window_shares_one_null_rescaled_to_its_size():
    summary = _numeric(40_000, 6)
    cached_null(summary, "wasserstein", "numeric", 30_000, 50, 0, "x")
    assert len(calibrated._NULLS) == 1
    small, large = (cached_null(summary, "wasserstein", "numeric", rows, 50, 0, "x") for rows in (50_000, 5_000_000))
    assert len(calibrated._NULLS) == 1  # both sizes capped: one null drawn
    scale = np.sqrt((1 / 40_000 + 1 / 5_000_000) / (1 / 40_000 + 1 / 50_000))
    assert np.allclose(large, small * scale, rtol=1e-12)
    cached_null(summary, "wasserstein", "numeric", RESAMPLE_CAP - 1, 50, 0, "x")  # below the cap: its own size
    assert len(calibrated._NULLS) == 2


def test_a_changed_reference_gets_its_own_null():
    before = cached_null(_numeric(30_000, 8), "wasserstein", "numeric", 1_000, 50, 0, "x")
    after = cached_null(_numeric(30_000, 9), "wasserstein", "numeric", 1_000, 50, 0, "x")
    assert len(calibrated._NULLS) == 2 and not np.array_equal(before, after)


def _expanded(values, counts):
    return NumericSummary(np.repeat(values, counts.astype(int)), 0)


@pytest.mark.parametrize(("n", "m"), [(2_000, 2_000), (2_000, 300), (150, 900)])
def test_counts_scores_equal_the_tests_on_the_same_samples(n, m):
    rng = np.random.default_rng(10)
    numeric = _numeric(5_000, 11)
    values, counts = _distinct_counts(numeric)
    first = rng.multinomial(n, counts / counts.sum(), size=8).astype(float)
    second = rng.multinomial(m, counts / counts.sum(), size=8).astype(float)
    ours = scores_from_counts("wasserstein", values, first, second)
    theirs = [run_test("wasserstein", _expanded(values, a), _expanded(values, b), "numeric") for a, b in zip(first, second)]
    assert np.allclose(ours, theirs, rtol=1e-9, atol=1e-15)

    few = _numeric(5_000, 12, distinct=5)
    values, counts = _distinct_counts(few)
    first = rng.multinomial(n, counts / counts.sum(), size=8).astype(float)
    second = rng.multinomial(m, counts / counts.sum(), size=8).astype(float)
    ours = scores_from_counts("jensenshannon", values, first, second)
    theirs = [run_test("jensenshannon", _expanded(values, a), _expanded(values, b), "numeric") for a, b in zip(first, second)]
    assert np.allclose(ours, theirs, rtol=1e-9, atol=1e-15)

    categories = _categorical(5_000, 13)
    _, counts = _distinct_counts(categories)
    first = rng.multinomial(n, counts / counts.sum(), size=8).astype(float)
    second = rng.multinomial(m, counts / counts.sum(), size=8).astype(float)
    ours = scores_from_counts("jensenshannon", None, first, second)
    index = categories.counts.index
    theirs = [run_test("jensenshannon", CategoricalSummary(pd.Series(a, index=index), 0),
                       CategoricalSummary(pd.Series(b, index=index), 0), "categorical") for a, b in zip(first, second)]
    assert np.allclose(ours, theirs, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize(("summary", "test", "kind"), [
    (_numeric(30_000, 14), "wasserstein", "numeric"),
    (_numeric(30_000, 15, distinct=40), "wasserstein", "numeric"),
    (_categorical(30_000, 16), "jensenshannon", "categorical"),
])
def test_counts_draws_give_the_null_of_row_by_row_draws(summary, test, kind):
    """The same resampling scheme: the two nulls are draws of one distribution."""
    values, counts = _distinct_counts(summary)
    by_counts = _counts_null(values, counts, test, 3_000, 1_000, 300, np.random.default_rng(1))
    by_rows = _sampled_null(summary, test, kind, 3_000, 1_000, 300, np.random.default_rng(2))
    assert stats.ks_2samp(by_counts, by_rows).pvalue > 0.001
    assert np.mean(by_counts) == pytest.approx(np.mean(by_rows), rel=0.05)


def _frames(rows, seed, shift=0.0):
    rng = np.random.default_rng(seed)
    cities = [f"city{i:03d}" for i in range(150)]
    weights = 1 / np.arange(1, 151)
    return pd.DataFrame({"x": rng.normal(shift, 1, rows), "z": rng.integers(0, 7, rows).astype(float),
                         "city": rng.choice(cities, rows, p=weights / weights.sum())})


def test_verdicts_are_the_same_with_the_cache_warm_cold_and_whatever_columns_sit_beside():
    kinds = {"x": "numeric", "z": "numeric", "city": "categorical"}
    reference, current = _frames(30_000, 1), _frames(25_000, 2, shift=0.02)
    settings = DriftConfig(mode="calibrated", draws=100)
    cold = detect(reference, current, settings, kinds=kinds)
    warm = detect(reference, current, settings, kinds=kinds)
    clear_null_cache()
    alone = detect(reference, current, settings, kinds={"x": "numeric"})
    for name in kinds:
        assert (cold.columns[name].p_value, cold.columns[name].drift) == (warm.columns[name].p_value, warm.columns[name].drift)
    assert alone.columns["x"].p_value == cold.columns["x"].p_value
    assert cold.columns["x"].drift is True and cold.columns["city"].drift is False


def test_the_log_window_reads_mixed_and_missing_fields_as_the_records_hold_them(tmp_path):
    from driftgate.store.predictions import PredictionLog

    log = PredictionLog(tmp_path / "log.sqlite")
    prediction = {"probability": 0.2, "decision": "no"}
    log.append([{"a": 1.5, "b": "x"}, {"a": None, "b": "y", "c": 3}], [prediction] * 2, "r1", "rest", "v1")
    window = log.window(model_version="v1")
    assert window.inputs["a"].tolist()[0] == 1.5 and np.isnan(window.inputs["a"].tolist()[1])
    assert window.inputs["b"].tolist() == ["x", "y"] and window.inputs["c"].tolist()[1] == 3
    assert str(window.timestamps.dt.tz) == "UTC" and list(window.ids) == [1, 2]
    log.append([{"a": "text", "b": 7}], [prediction], "r2", "rest", "v1")  # a field changes type: read as given
    mixed = log.window(after_id=0, limit=2)
    assert mixed.inputs["a"].tolist()[1] == "text" and mixed.inputs["b"].tolist() == ["y", 7]
    assert list(mixed.ids) == [2, 3]


def test_the_estimates_faster_paths_give_the_same_numbers():
    """Platt refits applied to log-odds taken once equal scikit-learn's predict_proba, and the
    label draws do not depend on the order of the rows."""
    from driftgate.estimation.calibration import fit_calibration
    from driftgate.estimation.estimator import _refit_probabilities
    from driftgate.estimation.f1 import simulate_f1

    rng = np.random.default_rng(3)
    scores = rng.beta(2, 3, 4_000)
    labels = (rng.random(4_000) < scores).astype(int)
    calibration = fit_calibration(scores, labels, "platt", refits=6, seed=1)
    window = rng.beta(2, 3, 3_000)
    ours, theirs = _refit_probabilities(calibration, window), calibration.refit_probabilities(window)
    assert len(ours) == len(theirs) == 6 and all(np.array_equal(a, b) for a, b in zip(ours, theirs))
    isotonic = fit_calibration(scores, labels, "isotonic", refits=3, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(_refit_probabilities(isotonic, window), isotonic.refit_probabilities(window)))
    ordered = np.sort(window)
    shuffled = simulate_f1(theirs, window >= 0.5, 200, np.random.default_rng(0))
    in_order = simulate_f1(_refit_probabilities(calibration, ordered), ordered >= 0.5, 200, np.random.default_rng(0))
    assert np.array_equal(shuffled, in_order)
