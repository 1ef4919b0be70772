"""Train: a scikit-learn Pipeline (ColumnTransformer + HistGradientBoostingClassifier).

Categoricals are ordinal-encoded and handled natively by the booster; unknown categories at
prediction time are treated like missing values. Numeric NaN is handled natively too.
Class imbalance is handled with `class_weight: balanced`; `monotonic` constraints in
params.yaml keep the model's response in the direction domain knowledge says.
"""

from __future__ import annotations

import platform
from importlib.metadata import version
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

from driftgate import __version__
from driftgate.config import ModelConfig, Params
from driftgate.data.dataset import LABEL, TIME, FeatureSchema, features_frame, labels
from driftgate.errors import ConfigError, DataError, listed
from driftgate.io import atomic_path, read_json, sha256_file, write_json

LIBRARIES = ("scikit-learn", "pandas", "numpy", "scipy", "joblib")


def build_pipeline(config: ModelConfig, schema: FeatureSchema) -> Pipeline:
    unknown = sorted(set(config.monotonic) - set(schema.numeric))
    if unknown:
        raise ConfigError(
            f"params.yaml: model.monotonic: {unknown[0]}",
            "monotonic constraints apply to numeric features only, and this is not one",
            f"use one of: {', '.join(schema.numeric)}",
        )
    encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan, encoded_missing_value=np.nan)
    prep = ColumnTransformer(
        [("categorical", encoder, list(schema.categorical)), ("numeric", "passthrough", list(schema.numeric))],
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")
    booster = HistGradientBoostingClassifier(
        max_iter=config.max_iter,
        learning_rate=config.learning_rate,
        max_leaf_nodes=config.max_leaf_nodes,
        min_samples_leaf=config.min_samples_leaf,
        l2_regularization=config.l2_regularization,
        class_weight=config.class_weight,
        categorical_features=list(schema.categorical) or None,
        monotonic_cst=dict(config.monotonic) or None,
        early_stopping=False,
        random_state=config.seed,
    )
    return Pipeline([("prep", prep), ("model", booster)])


def fit(frame: pd.DataFrame, params: Params, schema: FeatureSchema) -> Pipeline:
    if frame[LABEL].nunique() < 2:
        raise DataError(f"windows.train ({params.windows.train.label})", "training rows hold only one class", "widen the training window")
    empty = [c for c in schema.columns if not frame[c].notna().any()]
    if empty:
        raise DataError(f"windows.train ({params.windows.train.label})", f"feature(s) {listed(empty, quote=True)} have no value "
                        "in the training rows, so the model cannot learn from them",
                        "widen the training window, or leave them out (data.features.exclude)")
    pipeline = build_pipeline(params.model, schema)
    pipeline.fit(features_frame(frame, schema), labels(frame))
    return pipeline


def feature_profile(frame: pd.DataFrame, schema: FeatureSchema) -> dict:
    """What the demo form and input checks need: ranges and typical values, categories."""
    profile: dict = {"numeric": {}, "categorical": {}}
    for name in schema.numeric:
        values = pd.to_numeric(frame[name], errors="coerce")
        profile["numeric"][name] = {
            "min": float(values.min()),
            "max": float(values.max()),
            "median": float(values.median()),
        }
    for name in schema.categorical:
        counts = frame[name].value_counts()
        profile["categorical"][name] = {"categories": sorted(map(str, counts.index)), "most_frequent": str(counts.index[0])}
    return profile


def data_hash(dataset_path: Path | str) -> dict:
    """What a model card records of the data it was fitted on: the dataset file and its sha256,
    and the md5 DVC tracks for the raw data."""
    from driftgate.data.fetch import tracked_hash

    return {"dataset": str(dataset_path), "dataset_sha256": sha256_file(dataset_path), "raw_data_dvc_md5": tracked_hash(Path("."))}


def model_card(params: Params, schema: FeatureSchema, fit_rows: pd.DataFrame, data_hash: dict) -> dict:
    """What the model is, as a pure function of data, params and code (no wall-clock time), so
    that re-running the pipeline on a clone leaves the tracked card unchanged."""
    return {
        "driftgate_version": __version__,
        "estimator": "HistGradientBoostingClassifier",
        "params": params.model.model_dump(),
        "threshold": params.model.threshold,
        "class_names": list(params.data.target.class_names),
        "project": params.project.model_dump(),
        "train_window": params.windows.train.label,
        "fit_rows": len(fit_rows),
        "fit_time_range": [str(fit_rows[TIME].min()), str(fit_rows[TIME].max())],
        "positive_share": float(fit_rows[LABEL].mean()),
        "features": schema.as_dict(),
        "feature_profile": feature_profile(fit_rows, schema),
        "data": data_hash,
        "libraries": {name: version(name) for name in LIBRARIES} | {"python": platform.python_version()},
    }


def save(pipeline: Pipeline, card: dict, model_path: Path, card_path: Path) -> None:
    """Write the model, then its card (with the model's sha256). Both atomically."""
    with atomic_path(model_path) as tmp:
        joblib.dump(pipeline, tmp)
    card["model_sha256"] = sha256_file(model_path)
    write_json(card_path, card)


def load(model_path: Path, card_path: Path) -> tuple[Pipeline, dict]:
    """Load a model after checking its sha256 against the card written beside it."""
    card = read_json(card_path, "model card")
    if not Path(model_path).is_file():
        raise DataError(model_path, "model file not found", "run `driftgate train` (or `dvc repro train`)")
    actual = sha256_file(model_path)
    if actual != card.get("model_sha256"):
        raise DataError(
            model_path,
            f"sha256 {actual[:12]}... does not match the model card ({str(card.get('model_sha256'))[:12]}...)",
            "the file was changed or replaced; retrain with `dvc repro train`",
        )
    return joblib.load(model_path), card
