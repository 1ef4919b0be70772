"""Behavioural tests of the default model trained on the real data.

Directional: more rain, or less visibility, never lowers the delay probability (enforced by
monotonic constraints, so this holds row by row). Invariance: columns that are not features
(flight number, tail number) do not move the prediction. Minimum functionality: the model beats
the gate on its holdout and ranks stormy evening flights above clear mornings.
"""

import numpy as np
import pandas as pd
import pytest

from driftgate.data.dataset import features_frame, labels
from driftgate.model.evaluate import classification_metrics


@pytest.fixture(scope="module")
def sample(trained):
    _, schema, holdout = trained
    return features_frame(holdout.sample(2000, random_state=0), schema)


def proba(model, frame):
    return model.predict_proba(frame)[:, 1]


def test_heavier_precipitation_never_lowers_delay_probability(trained, sample):
    model = trained[0]
    base = proba(model, sample)
    for extra in (0.05, 0.3, 1.0):
        wetter = proba(model, sample.assign(precip=sample["precip"].fillna(0) + extra))
        assert np.all(wetter >= base - 1e-12)
    assert np.mean(proba(model, sample.assign(precip=1.0)) - proba(model, sample.assign(precip=0.0))) > 0.01


def test_lower_visibility_never_lowers_delay_probability(trained, sample):
    model = trained[0]
    clear = proba(model, sample.assign(visib=10.0))
    foggy = proba(model, sample.assign(visib=0.5))
    assert np.all(foggy >= clear - 1e-12)


def test_columns_that_are_not_features_do_not_change_predictions(trained):
    model, schema, holdout = trained
    rows = holdout.head(500).copy()
    rows["flight"] = 9999
    rows["tailnum"] = "N00000"
    assert np.array_equal(proba(model, features_frame(rows, schema)), proba(model, rows[schema.columns]))


def test_column_order_does_not_change_predictions(trained, sample):
    model = trained[0]
    assert np.allclose(proba(model, sample), proba(model, sample[sample.columns[::-1]]))


def test_unknown_categories_are_scored_exactly_as_missing_ones(trained, sample):
    """Invariance: a category the model never saw is what the encoder makes of it, a missing
    value; so an unseen airport scores like an unknown one, whatever its name."""
    model = trained[0]
    rows = sample.head(200)
    unseen = proba(model, rows.assign(dest="XXX", carrier="ZZ"))
    other_unseen = proba(model, rows.assign(dest="QQQ", carrier="YY"))
    nothing = pd.Series([None] * len(rows), index=rows.index, dtype=object)
    missing = proba(model, rows.assign(dest=nothing, carrier=nothing))
    assert np.array_equal(unseen, missing) and np.array_equal(unseen, other_unseen)
    assert not np.allclose(unseen, proba(model, rows))  # and the categories it knows do matter


def test_stormy_evening_flights_score_higher_than_clear_mornings(trained, sample):
    model = trained[0]
    morning = sample.assign(hour=7, precip=0.0, visib=10.0, wind_speed=5.0, humid=50.0)
    storm = sample.assign(hour=19, precip=0.5, visib=1.0, wind_speed=25.0, humid=95.0)
    assert np.mean(proba(model, storm) > proba(model, morning)) > 0.9


def test_holdout_f1_clears_the_gate(trained, params):
    model, schema, holdout = trained
    scores = proba(model, features_frame(holdout, schema))
    metrics = classification_metrics(labels(holdout), scores, params.model.threshold)
    assert metrics["f1"] >= params.gates.f1_min
    assert metrics["roc_auc"] > 0.65
