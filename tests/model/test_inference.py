"""The fast scorer the server uses must give the pipeline's own probabilities, on the real model."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from driftgate.data.dataset import LABEL
from driftgate.model import scorer as inference
from driftgate.model.scorer import FastScorer
from driftgate.model.train import feature_profile


@pytest.fixture(scope="module")
def model(trained):
    pipeline, schema, holdout = trained
    scorer, reason = FastScorer.from_pipeline(pipeline)
    assert scorer is not None, reason
    return pipeline, schema, holdout[list(schema.columns)], scorer


def test_holdout_scores_equal_the_pipelines(model):
    pipeline, _, holdout, scorer = model
    expected = pipeline.predict_proba(holdout)[:, 1]
    assert len(holdout) > 10_000
    assert np.max(np.abs(scorer.score_frame(holdout) - expected)) <= inference.TOLERANCE


def test_records_with_unknown_categories_and_missing_values_score_like_the_pipeline(model):
    pipeline, schema, holdout, scorer = model
    rows = holdout.iloc[:6].copy()
    rows.iloc[0, rows.columns.get_loc("carrier")] = "ZZ"  # never seen in training
    rows.iloc[1, rows.columns.get_loc("dest")] = None
    rows.iloc[2, rows.columns.get_loc("temp")] = np.nan
    rows.iloc[3, rows.columns.get_loc("precip")] = 1e6  # far beyond the training range
    expected = pipeline.predict_proba(rows)[:, 1]
    records = [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()} for r in rows.to_dict("records")]
    assert np.max(np.abs(scorer.score_records(records) - expected)) <= inference.TOLERANCE


def test_probe_rows_cover_every_category_an_unknown_one_and_missing_values(model):
    pipeline, schema, holdout, scorer = model
    profile = feature_profile(holdout, schema)
    probe = inference.probe_frame(profile, list(schema.columns))
    for name in schema.categorical:
        assert set(profile["categorical"][name]["categories"]) <= set(probe[name].dropna())
        assert "(not seen in training)" in set(probe[name]) and probe[name].isna().any()
    for name in schema.numeric:
        assert probe[name].isna().any() and probe[name].min() == profile["numeric"][name]["min"]
    assert scorer.verify(pipeline, probe) <= inference.TOLERANCE


def test_a_scorer_that_disagrees_with_the_pipeline_is_caught_by_verify(model):
    pipeline, schema, holdout, scorer = model
    codes = dict(scorer.codes)
    carriers = dict(codes["carrier"])
    first, second = list(carriers)[:2]
    carriers[first], carriers[second] = carriers[second], carriers[first]  # two carriers' codes swapped
    wrong = dataclasses.replace(scorer, codes={**codes, "carrier": carriers})
    assert wrong.verify(pipeline, holdout.iloc[:2000]) > 1e-3


def test_pipelines_without_a_fast_equivalent_keep_the_sklearn_path(prepared, caplog):
    frame, schema = prepared
    rows = frame.dropna(subset=["carrier", "temp"]).iloc[:500]
    other = Pipeline([("prep", ColumnTransformer([("categorical", OneHotEncoder(handle_unknown="ignore"), ["carrier"]),
                                                  ("numeric", "passthrough", ["temp"])])),
                      ("model", LogisticRegression(max_iter=200))]).fit(rows[["carrier", "temp"]], rows[LABEL])
    scorer, reason = FastScorer.from_pipeline(other)
    assert scorer is None and reason == "the pipeline is not prep + HistGradientBoostingClassifier"
    with caplog.at_level(logging.WARNING, logger="driftgate.model.scorer"):
        scorer, reason = inference.build(other, {}, ["carrier", "temp"])
    assert scorer is None and "scikit-learn's predict_proba" in caplog.text and reason in caplog.text


def test_a_profile_that_misses_a_column_keeps_the_sklearn_path(model):
    pipeline, schema, holdout, _ = model
    profile = feature_profile(holdout, schema)
    del profile["numeric"]["temp"]
    scorer, reason = inference.build(pipeline, profile, list(schema.columns))
    assert scorer is None and reason == "the model card's feature profile does not cover the model's columns"
    assert inference.build(pipeline, feature_profile(holdout, schema), list(schema.columns))[0] is not None


def test_rows_read_from_a_frame_with_pandas_missing_markers(model):
    pipeline, schema, holdout, scorer = model
    rows = holdout.iloc[:5].astype({"carrier": "string"})
    rows.iloc[0, rows.columns.get_loc("carrier")] = pd.NA
    expected = pipeline.predict_proba(rows.astype({"carrier": object}).replace({pd.NA: None}))[:, 1]
    assert np.max(np.abs(scorer.score_frame(rows) - expected)) <= inference.TOLERANCE
