"""Mergeable sketches: merging equals one pass, exact where they hold every value, and the
Wasserstein score stays within its documented error bound of the exact engine's."""

import numpy as np
import pandas as pd
import pytest

from driftgate.config import DriftConfig
from driftgate.drift import detect
from driftgate.drift.scan import load, save
from driftgate.drift.sketch import CategoricalSketch, NumericSketch, compare_sketches

RNG = np.random.default_rng(11)


def column_drift(name, ref, cur, kind):
    """The exact engine's verdict for one column, as production computes it."""
    frames = pd.DataFrame({name: pd.Series(ref)}), pd.DataFrame({name: pd.Series(cur)})
    return detect(*frames, DriftConfig(), kinds={name: kind}).columns[name]


def sketch_of(values, kind, chunks=1, width=None):
    sketch = NumericSketch(width=width) if kind == "numeric" else CategoricalSketch()
    parts = [NumericSketch(width=sketch.width) if kind == "numeric" else CategoricalSketch() for _ in range(chunks)]
    for part, piece in zip(parts, np.array_split(np.asarray(values, dtype=object if kind == "categorical" else float), chunks)):
        part.update(piece)
        sketch.merge(part)
    return sketch


def test_numeric_merge_of_chunks_equals_one_pass():
    values = RNG.normal(10, 3, 50_000)
    values[::97] = np.nan
    one = sketch_of(values, "numeric", width=2.0**-8)
    many = sketch_of(values, "numeric", chunks=7, width=2.0**-8)
    assert (one.n, one.missing, one.offset) == (many.n, many.missing, many.offset)
    assert np.array_equal(one.counts, many.counts)
    assert one.mean == pytest.approx(np.nanmean(values), rel=1e-12)
    assert one.std == pytest.approx(np.nanstd(values), rel=1e-9)


def test_categorical_counts_are_exact_and_missing_is_counted():
    values = np.array(["a", "b", None, "a", "c", None, "a"], dtype=object)
    sketch = sketch_of(values, "categorical", chunks=3)
    assert sketch.counts == {"a": 3, "b": 1, "c": 1} and sketch.missing == 2


def test_coarsening_doubles_width_and_keeps_every_value():
    sketch = NumericSketch(width=1.0)
    sketch.update(np.array([-3.5, -0.5, 0.2, 1.7, 5.0]))
    sketch.coarsen()
    assert sketch.width == 2.0 and sketch.counts.sum() == 5
    edges_low = sketch.offset * sketch.width
    assert edges_low <= -3.5 < edges_low + sketch.width


@pytest.mark.parametrize("shift", [0.0, 0.05, 0.3])
def test_wasserstein_from_sketches_is_within_the_bound_of_the_exact_score(shift):
    ref, cur = RNG.gamma(2.0, 3.0, 40_000), RNG.gamma(2.0, 3.0, 30_000) + shift * 6
    approx = compare_sketches("x", sketch_of(ref, "numeric", 4), sketch_of(cur, "numeric", 3), "numeric")
    exact = column_drift("x", ref, cur, "numeric")
    assert approx.test == exact.test == "wasserstein"
    assert 0 < approx.score_error_bound < 0.002
    assert abs(approx.score - exact.score) <= approx.score_error_bound
    if abs(exact.score - exact.threshold) > approx.score_error_bound:
        assert approx.drift == exact.drift


@pytest.mark.parametrize(
    ("ref", "cur", "kind"),
    [
        (RNG.choice(list("abcdefg"), 5000), RNG.choice(list("abcdefgh"), 4000), "categorical"),
        (RNG.choice(list("xy"), 700), RNG.choice(list("xy"), 300), "categorical"),
        (RNG.integers(0, 4, 8000).astype(float), RNG.integers(0, 5, 6000).astype(float), "numeric"),
        (RNG.integers(0, 12, 8000).astype(float), RNG.integers(1, 13, 6000).astype(float), "numeric"),
        (RNG.normal(0, 1, 600), RNG.normal(0.2, 1, 500), "numeric"),
    ],
    ids=["categorical JS", "categorical Z", "few-valued JS", "12-valued Wasserstein", "small KS"],
)
def test_sketches_that_hold_every_value_give_the_exact_result(ref, cur, kind):
    approx = compare_sketches("x", sketch_of(ref, kind, 3), sketch_of(cur, kind, 2), kind)
    exact = column_drift("x", pd.Series(ref), pd.Series(cur), kind)
    assert (approx.test, approx.drift) == (exact.test, exact.drift)
    assert approx.score == pytest.approx(exact.score, abs=1e-12)
    assert approx.score_error_bound == 0.0


def test_small_reference_against_a_large_current_uses_ks(tmp_path):
    ref, cur = RNG.normal(0, 1, 800), RNG.normal(0, 1, 200_000)
    approx = compare_sketches("x", sketch_of(ref, "numeric"), sketch_of(cur, "numeric", 5), "numeric")
    exact = column_drift("x", ref, cur, "numeric")
    assert approx.test == exact.test == "ks"
    assert approx.score == pytest.approx(exact.score, abs=0.02)


def test_saved_summary_loads_to_the_same_sketches(tmp_path):
    sketches = {"num": sketch_of(RNG.normal(0, 1, 5000), "numeric", 2),
                "few": sketch_of(RNG.integers(0, 3, 5000).astype(float), "numeric"),
                "cat": sketch_of(RNG.choice(list("pqr"), 5000), "categorical")}
    path = save(sketches, tmp_path / "reference.summary.npz", "reference.parquet")
    loaded, source = load(path)
    assert source == "reference.parquet"
    for name, sketch in sketches.items():
        assert loaded[name].to_dict().keys() == sketch.to_dict().keys()
        other = sketch_of(RNG.normal(0.1, 1, 3000) if name == "num" else RNG.integers(0, 3, 3000).astype(float)
                          if name == "few" else RNG.choice(list("pqr"), 3000), "categorical" if name == "cat" else "numeric")
        kind = "categorical" if name == "cat" else "numeric"
        assert compare_sketches(name, loaded[name], other, kind).score == compare_sketches(name, sketch, other, kind).score
