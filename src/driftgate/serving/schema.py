"""The request schema: one input record as a pydantic model built from the model's features,
its validation, and the model's input frame from validated records."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any, Literal, Optional

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model

from driftgate.data.dataset import FeatureSchema


def record_model(schema: FeatureSchema, profile: dict) -> type[BaseModel]:
    """A pydantic model of one input record: every feature required (null allowed for numbers,
    which the model treats as missing), no extra fields, no NaN or infinity, and categories
    limited to those the model was trained on."""
    numeric = profile.get("numeric", {})
    categorical = profile.get("categorical", {})
    fields: dict[str, Any] = {}
    for name in schema.numeric:
        info = numeric.get(name, {})
        description = f"seen in training: {info.get('min')} to {info.get('max')}" if info else None
        fields[name] = (Optional[Annotated[float, Field(allow_inf_nan=False)]], Field(..., description=description,
                                                                                        examples=[info.get("median")]))
    for name in schema.categorical:
        categories = tuple(categorical.get(name, {}).get("categories", ()))
        kind = Literal[categories] if categories else str  # type: ignore[valid-type]
        fields[name] = (kind, Field(..., examples=[categorical.get(name, {}).get("most_frequent")]))
    return create_model("Record", __config__=ConfigDict(extra="forbid"), **fields)


@lru_cache(maxsize=8)
def _list_of(model: type[BaseModel]) -> TypeAdapter:
    return TypeAdapter(list[model])  # building one costs milliseconds; validating with it, microseconds


def parse_records(model: type[BaseModel], payload: Any) -> list[dict]:
    """One record or a list of them, validated, as dicts (numbers missing as None). Raises
    pydantic's ValidationError, whose errors name the field."""
    if isinstance(payload, list):
        if not payload:
            raise ValidationError.from_exception_data("Records", [{"type": "too_short", "loc": ("body",), "input": payload,
                                                                    "ctx": {"field_type": "List", "min_length": 1, "actual_length": 0}}])
        return [r.model_dump() for r in _list_of(model).validate_python(payload)]
    return [model.model_validate(payload).model_dump()]


def readable_error(error: dict) -> dict:
    """A validation error as {field, message, type}: the field's path (with the record's index
    in a list) and, for an unknown category, a short message instead of every known value."""
    path = [str(p) for p in error.get("loc", ()) if p != "body"]
    field = ".".join(path) or "body"
    message = error.get("msg", "invalid")
    if error.get("type") == "literal_error":
        known = str(error.get("ctx", {}).get("expected", "")).count("'") // 2
        message = (f"unknown category {error.get('input')!r}: the model knows {known} values for {path[-1]} "
                   f"(listed in /openapi.json, schema Record)")
    return {"field": field, "message": message, "type": error.get("type", "invalid")}


def records_frame(records: list[dict], schema: FeatureSchema) -> pd.DataFrame:
    """Validated records as the model's input frame: numbers as float64 (None as NaN)."""
    columns = {name: [r[name] for r in records] for name in schema.columns}
    for name in schema.numeric:
        columns[name] = np.array([np.nan if v is None else v for v in columns[name]], dtype=float)
    return pd.DataFrame(columns, columns=schema.columns)
