"""Drift statistics against scipy and against Evidently's own stattest implementations.

Every check goes through the functions production calls: `drift.detect()` for verdicts, and
`run_test` on `summarise`d columns (what `detect` runs per column) for the statistics."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from driftgate.config import DriftConfig
from driftgate.drift import detect
from driftgate.drift.stattests import is_drift, run_test, summarise

RNG = np.random.default_rng(42)


def detect_frames(ref: pd.DataFrame, cur: pd.DataFrame, kinds: dict, **settings):
    return detect(ref, cur, DriftConfig(**settings), "pandas", kinds=kinds)


def column_drift(name, ref, cur, kind, **settings):
    """One column's verdict, through detect() as production computes it."""
    return detect_frames(pd.DataFrame({name: pd.Series(ref)}), pd.DataFrame({name: pd.Series(cur)}), {name: kind},
                         **settings).columns[name]


def statistic(test, ref, cur, kind):
    return run_test(test, summarise(pd.Series(ref), kind), summarise(pd.Series(cur), kind), kind)


def test_ks_is_scipys_two_sample_ks():
    a, b = RNG.normal(0, 1, 300), RNG.normal(0.3, 1, 200)
    assert statistic("ks", a, b, "numeric") == pytest.approx(stats.ks_2samp(a, b).pvalue, abs=1e-15)


def test_wasserstein_is_normed_by_reference_std_with_a_floor():
    a, b = RNG.normal(5, 2, 1000), RNG.normal(6, 2, 800)
    assert statistic("wasserstein", a, b, "numeric") == pytest.approx(stats.wasserstein_distance(a, b) / np.std(a))
    constant = np.full(100, 3.0)
    assert statistic("wasserstein", constant, constant + 1, "numeric") == pytest.approx(1 / 0.001)


def test_chisquare_uses_reference_shares_scaled_to_current_size():
    ref = pd.Series(["a"] * 50 + ["b"] * 30 + ["c"] * 20)
    cur = pd.Series(["a"] * 20 + ["b"] * 20 + ["c"] * 10)
    expected = np.array([50, 30, 20]) * 0.5
    assert statistic("chisquare", ref, cur, "categorical") == pytest.approx(stats.chisquare([20, 20, 10], expected).pvalue)


def test_jensenshannon_on_categories_is_scipys_natural_log_distance():
    ref = pd.Series(["x"] * 70 + ["y"] * 30)
    cur = pd.Series(["x"] * 40 + ["y"] * 40 + ["z"] * 20)
    got = statistic("jensenshannon", ref, cur, "categorical")
    assert got == pytest.approx(distance.jensenshannon([0.7, 0.3, 0.0], [0.4, 0.4, 0.2]))


def test_nan_and_infinities_are_dropped_before_testing():
    values = pd.Series([1.0, np.nan, np.inf, -np.inf, 2.0])
    assert summarise(values, "numeric").values.tolist() == [1.0, 2.0]
    result = column_drift("x", values, pd.Series([1.0, 2.0, np.nan]), "numeric")
    assert result.reference_rows == 2 and result.current_missing_share == pytest.approx(1 / 3)


def test_empty_column_after_cleaning_gives_nan_score_and_no_drift_verdict():
    result = column_drift("x", pd.Series([np.nan, np.nan]), pd.Series([1.0]), "numeric")
    assert result.test == "none" and np.isnan(result.score) and result.drift is False


@pytest.mark.parametrize(
    ("ref_n", "kind", "n_unique", "expected"),
    [
        (500, "numeric", 50, "ks"),
        (500, "numeric", 5, "chisquare"),
        (500, "numeric", 2, "z"),
        (500, "categorical", 4, "chisquare"),
        (500, "categorical", 2, "z"),
        (5000, "numeric", 50, "wasserstein"),
        (5000, "numeric", 4, "jensenshannon"),
        (5000, "categorical", 40, "jensenshannon"),
        (1000, "numeric", 50, "ks"),
        (1001, "numeric", 50, "wasserstein"),
    ],
)
def test_default_test_selection_follows_evidentlys_rule(ref_n, kind, n_unique, expected):
    values = np.arange(ref_n) % n_unique
    ref = pd.Series(values if kind == "numeric" else [f"c{v}" for v in values])
    assert column_drift("x", ref, ref.iloc[:200], kind).test == expected


def test_p_value_tests_drift_below_threshold_and_distances_at_or_above():
    assert is_drift("ks", 0.05, 0.05) and not is_drift("chisquare", 0.05, 0.05)
    assert is_drift("wasserstein", 0.1, 0.1) and not is_drift("jensenshannon", 0.099, 0.1)
    assert not is_drift("ks", float("nan"), 0.05)


def test_dataset_share_and_verdict():
    ref = pd.DataFrame({"a": RNG.normal(0, 1, 2000), "b": RNG.normal(0, 1, 2000), "c": RNG.choice(list("xyz"), 2000)})
    cur = pd.DataFrame({"a": RNG.normal(3, 1, 800), "b": RNG.normal(0, 1, 800), "c": RNG.choice(list("xyz"), 800)})
    result = detect_frames(ref, cur, {"a": "numeric", "b": "numeric", "c": "categorical"}, share_threshold=0.3)
    assert result.drifted_columns == ["a"]
    assert result.drift_share == pytest.approx(1 / 3) and result.dataset_drift is True
    assert result.ranked()[0].column == "a"


def test_ignored_columns_are_reported_but_left_out_of_the_share():
    ref = pd.DataFrame({"a": RNG.normal(0, 1, 2000), "b": RNG.normal(0, 1, 2000), "month": RNG.integers(1, 4, 2000)})
    cur = pd.DataFrame({"a": RNG.normal(3, 1, 800), "b": RNG.normal(0, 1, 800), "month": RNG.integers(4, 7, 800)})
    kinds = {"a": "numeric", "b": "numeric", "month": "numeric"}
    counted = detect_frames(ref, cur, kinds)
    ignored = detect_frames(ref, cur, kinds, ignore=["month"])
    assert counted.drift_share == pytest.approx(2 / 3) and counted.dataset_drift
    assert ignored.drift_share == pytest.approx(1 / 2) and ignored.n_columns == 2 and ignored.dataset_drift
    assert ignored.columns["month"].drift and ignored.columns["month"].ignored and ignored.ignored_columns == ["month"]
    assert "month" not in ignored.drifted_columns


def test_a_small_window_in_parity_mode_warns_that_its_verdicts_are_noisy():
    ref = pd.DataFrame({"a": RNG.normal(0, 1, 5000)})
    small = detect_frames(ref, ref.iloc[:300], {"a": "numeric"})
    large = detect_frames(ref, ref.iloc[:2000], {"a": "numeric"})
    calibrated = detect_frames(ref, ref.iloc[:300], {"a": "numeric"}, mode="calibrated", draws=50)
    assert len(small.warnings) == 1 and "300 rows" in small.warnings[0] and "calibrated" in small.warnings[0]
    assert large.warnings == [] and calibrated.warnings == []


def test_new_categories_are_reported():
    result = column_drift("dest", pd.Series(["BOS", "LAX"] * 10), pd.Series(["BOS", "ZZZ"] * 5), "categorical")
    assert result.new_categories == ["ZZZ"]


# --------------------------------------------------------------------------- parity with Evidently

from evidently.legacy.calculations.stattests import registry as evidently_registry  # noqa: E402
from evidently.legacy.core import ColumnType  # noqa: E402


def _cases():
    rng = np.random.default_rng(7)
    yield "numeric small many-unique", rng.normal(0, 1, 800), rng.normal(0.2, 1, 300), "numeric"
    yield "numeric large many-unique", rng.gamma(2, 2, 5000), rng.gamma(2.3, 2, 2000), "numeric"
    yield "numeric large few-unique", rng.integers(0, 4, 3000).astype(float), rng.integers(0, 5, 1500).astype(float), "numeric"
    yield "numeric small few-unique", rng.integers(0, 4, 600).astype(float), rng.integers(0, 4, 200).astype(float), "numeric"
    yield "binary small", rng.integers(0, 2, 900).astype(float), (rng.uniform(size=400) < 0.6).astype(float), "numeric"
    yield "categorical small", rng.choice(list("abcd"), 700), rng.choice(list("abcde"), 300), "categorical"
    yield "categorical large", rng.choice(list("abcdefghij"), 4000), rng.choice(list("abcdefgh"), 3000), "categorical"
    yield "binary categorical small", rng.choice(["yes", "no"], 500), rng.choice(["yes", "no"], 500, p=[0.3, 0.7]), "categorical"
    yield "numeric large 15-unique", rng.integers(0, 15, 3000).astype(float), rng.integers(0, 15, 3000).astype(float), "numeric"
    yield "constant", np.ones(2000), np.ones(500), "numeric"


@pytest.mark.parametrize(("name", "ref", "cur", "kind"), list(_cases()), ids=[c[0] for c in _cases()])
def test_scores_and_verdicts_match_evidently(name, ref, cur, kind):
    ref_s, cur_s = pd.Series(ref), pd.Series(cur)
    column_type = ColumnType.Numerical if kind == "numeric" else ColumnType.Categorical
    theirs = evidently_registry.get_stattest(ref_s, cur_s, column_type, None)
    their_result = theirs(ref_s, cur_s, column_type, None)
    ours = column_drift("x", ref_s, cur_s, kind)
    assert ours.test == theirs.name
    assert ours.drift == bool(their_result.drifted)
    if np.isnan(their_result.drift_score):
        assert np.isnan(ours.score)
    else:
        assert ours.score == pytest.approx(float(their_result.drift_score), abs=1e-9)


def test_share_of_current_values_outside_the_reference_range_is_reported():
    result = column_drift("x", pd.Series(np.arange(100.0)), pd.Series([-5.0, 0.0, 50.0, 99.0, 150.0]), "numeric")
    assert result.out_of_range_share == pytest.approx(2 / 5)
    inside = column_drift("x", pd.Series(np.arange(100.0)), pd.Series([1.0, 2.0]), "numeric")
    assert inside.out_of_range_share == 0.0


def test_z_test_is_the_two_proportion_test_on_the_share_of_non_first_values():
    ref = pd.Series(["a"] * 70 + ["b"] * 30)
    cur = pd.Series(["a"] * 50 + ["b"] * 50)
    z = (0.3 - 0.5) / np.sqrt(0.4 * 0.6 * (1 / 100 + 1 / 100))
    assert statistic("z", ref, cur, "categorical") == pytest.approx(2 * stats.norm.sf(abs(z)))
    assert statistic("z", pd.Series(["a"] * 5), pd.Series(["a"] * 9), "categorical") == 1.0


NUMERIC_PAIR = (np.random.default_rng(3).normal(0, 1, 3000), np.random.default_rng(4).normal(0.15, 1.1, 2000), "numeric")
CATEGORICAL_PAIR = (np.random.default_rng(5).choice(list("abcdef"), 3000), np.random.default_rng(6).choice(list("abcdefg"), 2000), "categorical")


@pytest.mark.parametrize(
    ("test", "ref", "cur", "kind"),
    [(t, *NUMERIC_PAIR) for t in ("psi", "hellinger", "ks", "jensenshannon")]
    + [(t, *CATEGORICAL_PAIR) for t in ("psi", "hellinger", "jensenshannon", "chisquare")],
    ids=[f"{t} numeric" for t in ("psi", "hellinger", "ks", "jensenshannon")]
    + [f"{t} categorical" for t in ("psi", "hellinger", "jensenshannon", "chisquare")],
)
def test_overridden_tests_match_evidentlys_implementations(test, ref, cur, kind):
    column_type = ColumnType.Numerical if kind == "numeric" else ColumnType.Categorical
    theirs = evidently_registry.get_stattest(pd.Series(ref), pd.Series(cur), column_type, test)
    their_result = theirs(pd.Series(ref).copy(), pd.Series(cur).copy(), column_type, None)
    ours = column_drift("x", ref, cur, kind, tests={"x": {"test": test}})
    assert ours.test == test and ours.threshold == their_result.actual_threshold
    assert ours.score == pytest.approx(float(their_result.drift_score), abs=1e-9)
    assert ours.drift == bool(their_result.drifted)


def test_override_threshold_changes_only_that_columns_verdict():
    rng = np.random.default_rng(8)
    ref = pd.DataFrame({"a": rng.normal(0, 1, 3000), "b": rng.normal(0, 1, 3000)})
    cur = pd.DataFrame({"a": rng.normal(0.05, 1, 2000), "b": rng.normal(0.05, 1, 2000)})
    default = detect_frames(ref, cur, {"a": "numeric", "b": "numeric"})
    strict = detect_frames(ref, cur, {"a": "numeric", "b": "numeric"}, tests={"a": {"threshold": 0.01}})
    assert not default.columns["a"].drift and strict.columns["a"].drift
    assert strict.columns["a"].threshold == 0.01 and strict.columns["b"] == default.columns["b"]


def _evidently_report(reference: pd.DataFrame, current: pd.DataFrame, kinds: dict[str, str]) -> dict[str, tuple[float, bool]]:
    """Score and verdict per column from Evidently's own DataDriftPreset report."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=[c for c, k in kinds.items() if k == "numeric"],
                                categorical_columns=[c for c, k in kinds.items() if k == "categorical"])
    snapshot = Report([DataDriftPreset()]).run(Dataset.from_pandas(current, data_definition=definition),
                                               Dataset.from_pandas(reference, data_definition=definition))
    out = {}
    for metric in snapshot.dict()["metrics"]:
        name = metric.get("metric_name", "")
        if name.startswith("ValueDrift(column="):
            column = name.split("column=", 1)[1].split(",", 1)[0]
            threshold = float(name.rsplit("threshold=", 1)[1].rstrip(")"))
            score = float(metric["value"])
            p_value = any(t in name for t in ("p_value", "K-S", "chi-square", "Z-test"))
            out[column] = (score, score < threshold if p_value else score >= threshold)
    return out


@pytest.mark.parametrize("rows", [(900, 400), (4000, 1500)], ids=["small reference", "large reference"])
def test_nan_heavy_columns_and_new_categories_match_evidentlys_full_report(rows):
    """End to end through Evidently's Report, which does its own NaN handling: columns that are
    mostly NaN (and +-inf), categories that only the current frame has, and a constant column."""
    rng = np.random.default_rng(11)

    def frame(n: int, shift: float, new: bool) -> pd.DataFrame:
        mostly_nan = rng.normal(shift, 1, n)
        mostly_nan[rng.uniform(size=n) < 0.7] = np.nan
        with_inf = rng.gamma(2, 2, n) + shift
        with_inf[rng.uniform(size=n) < 0.05] = np.inf
        with_inf[rng.uniform(size=n) < 0.05] = -np.inf
        levels = list("abcdef") + (["new1", "new2"] if new else [])
        city = pd.Series(rng.choice(levels, n)).where(rng.uniform(size=n) > 0.4)  # 40% missing
        return pd.DataFrame({"mostly_nan": mostly_nan, "with_inf": with_inf, "city": city,
                             "few": rng.integers(0, 3, n).astype(float), "constant": np.full(n, 2.0)})

    reference, current = frame(rows[0], 0.0, False), frame(rows[1], 0.3, True)
    kinds = {"mostly_nan": "numeric", "with_inf": "numeric", "city": "categorical", "few": "numeric", "constant": "numeric"}
    theirs = _evidently_report(reference, current, kinds)
    ours = detect_frames(reference, current, kinds).columns
    assert set(theirs) == set(kinds)
    for column, (score, drifted) in theirs.items():
        assert ours[column].score == pytest.approx(score, abs=1e-9, nan_ok=True), column
        assert ours[column].drift == drifted, column
    assert ours["city"].new_categories == ["new1", "new2"]


def test_many_new_categories_are_counted_and_listed_with_and_n_more():
    from driftgate.reporting.render import drift_notes

    reference = pd.Series(["a", "b"] * 50)
    current = pd.Series(["a"] * 10 + [f"new{i:02d}" for i in range(30)])
    col = column_drift("city", reference, current, "categorical")
    assert col.new_category_count == 30 and len(col.new_categories) == 20
    assert "new: new00, new01, new02, new03, new04 and 25 more" in drift_notes(col)
