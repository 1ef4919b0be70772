"""Calibrated mode: pooling, resampled p-values, the corrections, and its false-alarm behaviour."""

import numpy as np
import pandas as pd
import pytest

from driftgate.config import DriftConfig
from driftgate.drift import detect
from driftgate.drift.calibrated import OTHER, adjust, pool_rare, resampled_p_value
from driftgate.drift.stattests import CategoricalSummary


def calibrated_drift(reference, current, kinds, seed=0, **settings):
    return detect(reference, current, DriftConfig(mode="calibrated", **settings), kinds=kinds, seed=seed)


def parity_drift(reference, current, kinds):
    return detect(reference, current, DriftConfig(), kinds=kinds)


def test_benjamini_hochberg_is_step_up_and_bonferroni_divides_alpha():
    assert adjust([0.01, 0.04, 0.03, 0.20], 0.05, "bh") == [True, False, False, False]
    assert adjust([0.01, 0.02, 0.03, 0.04], 0.05, "bh") == [True, True, True, True]
    assert adjust([0.01, 0.02, 0.03, 0.04], 0.05, "bonferroni") == [True, False, False, False]
    assert adjust([float("nan"), 0.001], 0.05, "bh") == [False, True]
    assert adjust([], 0.05, "bh") == []


def test_rare_and_new_categories_are_pooled_and_counts_kept():
    reference = CategoricalSummary(pd.Series({"a": 600.0, "b": 398.0, "rare": 2.0}), 0)
    current = CategoricalSummary(pd.Series({"a": 50.0, "b": 40.0, "new": 10.0}), 0)
    ref, cur = pool_rare(reference, current, pool_below=0.01)
    assert ref.counts.to_dict() == {"a": 600.0, "b": 398.0, OTHER: 2.0}
    assert cur.counts.to_dict() == {"a": 50.0, "b": 40.0, OTHER: 10.0}


def test_resampled_p_value_is_empirical_inside_the_null_and_a_fitted_tail_beyond_it():
    null = np.arange(1, 100) / 100  # 0.01 .. 0.99
    assert resampled_p_value("wasserstein", 0.505, null) == pytest.approx((1 + 49) / 100)
    beyond = resampled_p_value("wasserstein", 5.0, null)
    assert 0 < beyond < 1 / 100
    assert resampled_p_value("chisquare", 0.01, null) == pytest.approx(2 / 100)  # p-value tests: small is extreme


def _frames(rows, seed, shift=0.0):
    rng = np.random.default_rng(seed)
    cities = [f"city{i:03d}" for i in range(150)]
    weights = 1 / np.arange(1, 151)
    return pd.DataFrame({
        "x": rng.normal(shift, 1, rows),
        "city": rng.choice(cities, rows, p=weights / weights.sum()),
    })


def test_no_drift_raises_alarms_in_parity_mode_but_rarely_in_calibrated_mode():
    kinds = {"x": "numeric", "city": "categorical"}
    parity_alarms = calibrated_alarms = 0
    for seed in range(10):
        reference, current = _frames(400, seed), _frames(400, 100 + seed)
        parity_alarms += bool(parity_drift(reference, current, kinds).drifted_columns)
        calibrated_alarms += bool(calibrated_drift(reference, current, kinds, draws=100, seed=seed).drifted_columns)
    assert parity_alarms >= 8  # chi-square: p = 0 whenever a city is new in the current sample
    assert calibrated_alarms <= 2


def test_calibrated_mode_detects_a_real_shift_and_reports_p_values():
    kinds = {"x": "numeric", "city": "categorical"}
    result = calibrated_drift(_frames(3000, 1), _frames(3000, 2, shift=0.3), kinds, draws=100)
    assert result.columns["x"].drift is True and result.columns["x"].p_value < 0.001
    assert result.columns["city"].drift is False
    assert result.mode == "calibrated" and result.correction == "bh"


def test_calibrated_mode_keeps_a_columns_own_threshold_and_calibrates_its_own_test():
    kinds = {"x": "numeric", "y": "numeric", "city": "categorical"}
    reference, current = _frames(3000, 1).assign(y=lambda f: f.x), _frames(3000, 2, shift=0.3).assign(y=lambda f: f.x)
    result = calibrated_drift(reference, current, kinds, draws=100,
                              tests={"x": {"threshold": 5.0}, "y": {"test": "psi"}})
    x, y = result.columns["x"], result.columns["y"]
    assert x.p_value is None and x.threshold == 5.0 and x.drift is False  # its own fixed rule: wasserstein >= 5
    assert y.test == "psi" and y.p_value is not None and y.p_value < 0.01 and y.drift is True


def test_calibrated_mode_from_sketches_matches_the_exact_one():
    """The chunked engine's histograms stand in for the raw values: same tests, same verdicts,
    and resampled p-values of the same size."""
    from driftgate.drift.calibrated import calibrate
    from driftgate.drift.sketch import as_summaries, compare_sketches, new_sketch

    kinds = {"x": "numeric", "city": "categorical"}
    reference, current = _frames(20_000, 1), _frames(20_000, 2, shift=0.05)
    exact = calibrated_drift(reference, current, kinds, draws=100)
    sketches = {}
    for name, kind in kinds.items():
        ref, cur = new_sketch(kind), new_sketch(kind)
        for lo in range(0, len(reference), 7000):  # in batches, as the chunked engine reads
            ref.update(reference[name].to_numpy()[lo:lo + 7000])
            cur.update(current[name].to_numpy()[lo:lo + 7000])
        sketches[name] = (ref, cur)
    raw = [compare_sketches(name, *sketches[name], kind) for name, kind in kinds.items()]
    summaries = {name: (kind, *as_summaries(*sketches[name])) for name, kind in kinds.items()}
    binned = {col.column: col for col in calibrate(raw, summaries, draws=100)}
    for name in kinds:
        ours, theirs = binned[name], exact.columns[name]
        assert (ours.test, ours.drift) == (theirs.test, theirs.drift), name
        assert ours.score == pytest.approx(theirs.score, abs=ours.score_error_bound + 1e-12)
    assert binned["x"].drift is True  # a 0.05 sd shift at 20k rows is real
    assert binned["city"].drift is False
