"""Fast scoring of a few rows at a time, for serving.

scikit-learn's HistGradientBoostingClassifier walks its trees one Python call per tree, and the
ColumnTransformer in front of it validates a DataFrame on every call: about 12-20 ms for one
row of the pipeline's 300-tree model, whatever the row count up to a few hundred. A served
request scores one row, so that fixed cost is the request's latency.

`FastScorer` takes the fitted pipeline apart instead: the booster is imported into Treelite and
predicted with its C++ tree interpreter (GTIL, no compiler needed), and the ordinal encoding of
the categorical columns is a dictionary lookup per value. One row costs about 0.1 ms.

It is used only where it gives the same answer: `FastScorer.from_pipeline` accepts the pipeline
`driftgate train` builds (ordinal-encoded and passed-through columns in a ColumnTransformer, then
a binary HistGradientBoostingClassifier), and `verify` compares it with the pipeline's own
predict_proba on probe rows covering every category, unknown categories, missing values and each
feature's range. Anything else keeps the scikit-learn path (`reason` says why).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

TOLERANCE = 1e-9  # largest probability difference from the pipeline accepted by `verify`
FAST_ROWS = 256  # up to this many rows per call; beyond it, scikit-learn's batch path is faster


@dataclass(frozen=True)
class FastScorer:
    """Probabilities of the positive class, equal to `pipeline.predict_proba(frame)[:, 1]`."""

    inputs: tuple[str, ...]  # the model's input columns, in the order the booster sees them
    codes: Mapping[str, Mapping[Any, float]]  # categorical column -> category -> ordinal code
    unknown: Mapping[str, float]  # categorical column -> code of a category not seen in training
    booster: Any  # treelite.Model

    @classmethod
    def from_pipeline(cls, pipeline: Any) -> tuple[FastScorer | None, str]:
        """The scorer, or None and the reason the pipeline's own path must be used."""
        try:
            import treelite
        except ImportError:
            return None, "treelite is not installed"
        steps = getattr(pipeline, "named_steps", {})
        prep, booster = steps.get("prep"), steps.get("model")
        if prep is None or booster is None or type(booster).__name__ != "HistGradientBoostingClassifier":
            return None, "the pipeline is not prep + HistGradientBoostingClassifier"
        if len(getattr(booster, "classes_", ())) != 2:
            return None, "the booster is not a binary classifier"
        inputs: list[str] = []
        codes: dict[str, dict[Any, float]] = {}
        unknown: dict[str, float] = {}
        for name, transformer, columns in prep.transformers_:
            if isinstance(transformer, str) and transformer == "drop":
                continue
            kind = type(transformer).__name__
            if (isinstance(transformer, str) and transformer == "passthrough") or (kind == "FunctionTransformer" and transformer.func is None):
                inputs.extend(columns)
            elif kind == "OrdinalEncoder" and transformer.handle_unknown == "use_encoded_value":
                if not (isinstance(transformer.encoded_missing_value, float) and math.isnan(transformer.encoded_missing_value)):
                    return None, "the ordinal encoder gives missing values a code (the booster expects NaN)"
                for column, categories in zip(columns, transformer.categories_):
                    codes[column] = {c: float(i) for i, c in enumerate(categories) if not _missing(c)}
                    unknown[column] = float(transformer.unknown_value)
                    inputs.append(column)
            else:
                return None, f"transformer {name!r} ({kind}) has no fast equivalent"
        if list(inputs) != list(getattr(booster, "feature_names_in_", inputs)):
            return None, "the booster's inputs are not the transformer's outputs"
        try:
            model = treelite.sklearn.import_model(booster)
        except Exception as exc:  # an estimator version Treelite does not read
            return None, f"treelite cannot import the booster: {exc}"
        return cls(tuple(inputs), codes, unknown, model), ""

    def matrix(self, columns: Mapping[str, Iterable]) -> np.ndarray:
        """The booster's input matrix from column -> values (records' values or a frame's columns)."""
        out = []
        for name in self.inputs:
            values = columns[name]
            if name in self.codes:
                codes, unknown = self.codes[name], self.unknown[name]
                out.append([math.nan if _missing(v) else codes.get(v, unknown) for v in values])
            else:
                out.append(np.asarray(values, dtype=np.float64))
        return np.ascontiguousarray(np.column_stack(out), dtype=np.float64) if out else np.empty((0, 0))

    def score_matrix(self, matrix: np.ndarray) -> np.ndarray:
        import treelite.gtil

        if not len(matrix):
            return np.empty(0)
        return treelite.gtil.predict(self.booster, matrix, nthread=1).reshape(len(matrix), -1)[:, -1]

    def score_records(self, records: list[Mapping[str, Any]]) -> np.ndarray:
        return self.score_matrix(self.matrix({name: [r[name] for r in records] for name in self.inputs}))

    def score_frame(self, frame: pd.DataFrame) -> np.ndarray:
        return self.score_matrix(self.matrix({name: frame[name].tolist() if name in self.codes else frame[name]
                                              for name in self.inputs}))

    def verify(self, pipeline: Any, probe: pd.DataFrame) -> float:
        """The largest difference from the pipeline's own probabilities on `probe`."""
        expected = pipeline.predict_proba(probe)[:, 1]
        return float(np.max(np.abs(self.score_frame(probe) - expected))) if len(probe) else 0.0


def probe_frame(profile: Mapping[str, dict], columns: list[str], rows: int = 256, seed: int = 0) -> pd.DataFrame:
    """Rows that exercise every category, an unknown category, missing values, and each numeric
    feature's minimum, maximum, median and values in between (from the model card's profile)."""
    rng = np.random.default_rng(seed)
    numeric, categorical = profile.get("numeric", {}), profile.get("categorical", {})
    longest = max([len(info.get("categories", [])) + 2 for info in categorical.values()] + [rows])
    data: dict[str, list] = {}
    for name, info in categorical.items():
        cycle = list(info.get("categories", [])) + ["(not seen in training)", None]
        data[name] = [cycle[i % len(cycle)] for i in rng.permutation(longest)]
    for name, info in numeric.items():
        low, high = float(info.get("min", 0.0)), float(info.get("max", 1.0))
        values = rng.uniform(low, high, longest)
        values[:4] = [low, high, float(info.get("median", low)), math.nan]
        data[name] = list(rng.permutation(values))
    return pd.DataFrame(data)[columns]


def build(pipeline: Any, profile: Mapping[str, dict], columns: list[str]) -> tuple[FastScorer | None, str]:
    """A verified FastScorer for `pipeline`, or None and why not (logged)."""
    scorer, reason = FastScorer.from_pipeline(pipeline)
    if scorer is not None:
        if set(profile.get("numeric", {})) | set(profile.get("categorical", {})) != set(columns):
            scorer, reason = None, "the model card's feature profile does not cover the model's columns"
        else:
            difference = scorer.verify(pipeline, probe_frame(profile, columns))
            if not difference <= TOLERANCE:
                scorer, reason = None, f"fast scores differ from the pipeline's by {difference:.2e}"
    if scorer is None:
        log.warning("serving with scikit-learn's predict_proba (about 15 ms a call): %s", reason)
    return scorer, reason


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA
