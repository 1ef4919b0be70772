"""The request schema: one input record as a pydantic model built from the model's features and
the hard limits in params.yaml, its validation, the warnings of values the model never saw in
training, the label key a record may carry (monitoring.label_key), and the model's input frame
from validated records."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from typing import Annotated, Any, Optional

import numpy as np
import pandas as pd
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError, create_model
from pydantic_core import PydanticCustomError

from driftgate.config import ValidationConfig
from driftgate.data.dataset import FeatureSchema

SHOWN_CATEGORIES = 12  # an error lists at most this many allowed values


# --------------------------------------------------------------------------- one field


def _shown(value: Any) -> str:
    """A value as the client wrote it (JSON's words for None and booleans), cut short."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "text"
    return {"list": "a list", "dict": "an object"}.get(type(value).__name__, type(value).__name__)


def _number(value: Any) -> float | None:
    """A JSON number (or null: missing) as a float. Booleans, text and NaN/infinity are refused:
    JSON's `true` is not 1 and "3.5" is not 3.5."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PydanticCustomError("not_a_number", "expected a number (or null for a missing value), got {kind} {value}",
                                  {"kind": _kind(value), "value": _shown(value)})
    try:
        number = float(value)
    except OverflowError:
        raise PydanticCustomError("too_large", "{value} is too large to be a number here", {"value": _shown(value)}) from None
    if not math.isfinite(number):
        raise PydanticCustomError("finite_number", "NaN and infinity are not allowed: send null for a missing value")
    return number


def _within(low: float, high: float) -> Callable[[float | None], float | None]:
    def check(value: float | None) -> float | None:
        if value is not None and not low <= value <= high:
            raise PydanticCustomError("out_of_range", "{value} is outside the allowed range [{low}, {high}] "
                                      "(validation.ranges in params.yaml)", {"value": f"{value:g}", "low": f"{low:g}",
                                                                              "high": f"{high:g}"})
        return value
    return check


def _listed(values: list[str]) -> str:
    shown = ", ".join(values[:SHOWN_CATEGORIES])
    return shown + (f" ... ({len(values)} in all)" if len(values) > SHOWN_CATEGORIES else "")


def _category(name: str, known: tuple[str, ...], allowed: tuple[str, ...] | None) -> Callable[[Any], str]:
    """A category name: one of `allowed` (validation.allowed) when params.yaml lists them, else one
    the model saw in training (an allowed one it never saw is scored as missing, with a warning)."""
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise PydanticCustomError("not_a_category", "expected a category name (text), got {kind} {value}",
                                      {"kind": _kind(value), "value": _shown(value)})
        if allowed is not None and value not in allowed:
            raise PydanticCustomError("not_allowed", "{value} is not allowed: use one of {allowed} "
                                      "(validation.allowed in params.yaml)", {"value": _shown(value), "allowed": _listed(list(allowed))})
        if allowed is None and known and value not in known:
            raise PydanticCustomError("unknown_category", "unknown category {value}: the model knows {count} values for "
                                      "{name} (listed in /openapi.json, schema Record)",
                                      {"value": _shown(value), "count": str(len(known)), "name": name})
        return value
    return check


# --------------------------------------------------------------------------- the record


def record_model(schema: FeatureSchema, profile: dict, limits: ValidationConfig = ValidationConfig()) -> type[BaseModel]:
    """A pydantic model of one input record: every feature required (null allowed for numbers,
    which the model treats as missing), no extra fields, numbers only in number fields (no
    booleans, text, NaN or infinity), numbers inside validation.ranges, and categories inside
    validation.allowed, or else among those the model was trained on."""
    numeric = profile.get("numeric", {})
    categorical = profile.get("categorical", {})
    fields: dict[str, Any] = {}
    for name in schema.numeric:
        info = numeric.get(name, {})
        checks: list[Any] = [BeforeValidator(_number)]
        extra: dict[str, Any] = {}
        if name in limits.ranges:
            low, high = limits.ranges[name]
            checks.append(AfterValidator(_within(low, high)))
            extra = {"minimum": low, "maximum": high}
        description = f"seen in training: {info.get('min')} to {info.get('max')}" if info else None
        fields[name] = (Annotated[Optional[float], *checks],
                        Field(..., description=description, examples=[info.get("median")], json_schema_extra=extra or None))
    for name in schema.categorical:
        info = categorical.get(name, {})
        known = tuple(info.get("categories", ()))
        allowed = tuple(limits.allowed[name]) if name in limits.allowed else None
        choices = list(allowed if allowed is not None else known)
        fields[name] = (Annotated[str, BeforeValidator(_category(name, known, allowed))],
                        Field(..., examples=[info.get("most_frequent")], json_schema_extra={"enum": choices} if choices else None))
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


_MESSAGES = {  # pydantic's own wording, where it does not say what to do
    "missing": "required: every feature is (send null for a missing number)",
    "extra_forbidden": "not a feature of the model (its fields are in /openapi.json, schema Record)",
    "model_type": "expected one record (a JSON object) or a list of them, got {kind}",
    "too_short": "an empty list: send at least one record",
}


def readable_error(error: dict, messages: dict[str, str] | None = None) -> dict:
    """A validation error as {field, message, type}: the field's path (with the record's index
    in a list) and a message that says what to send instead. `messages` replace the wording of
    /predict's records for another body (by error type; "empty_body" for no body at all)."""
    wording = {**_MESSAGES, **(messages or {})}
    kind = error.get("type", "invalid")
    if kind == "json_invalid":  # FastAPI's: loc is ("body", character offset)
        where = error.get("loc", ())[-1]
        return {"field": "body", "type": kind, "message": f"the body is not valid JSON: {error.get('ctx', {}).get('error', '?')}"
                                                          f" (at character {where})"}
    path = [str(p) for p in error.get("loc", ()) if p != "body"]
    field = ".".join(path) or "body"
    message = wording.get(kind, error.get("msg", "invalid")).replace("{kind}", _kind(error.get("input")))
    if kind == "missing" and field == "body":
        message = wording.get("empty_body", "the body is empty: send one record (a JSON object) or a list of them")
    return {"field": field, "message": message, "type": kind}


# --------------------------------------------------------------------------- the label key


KEY_LENGTH = 200  # the prediction log's key column holds at most this many characters


def label_key_value(value: Any) -> tuple[str | None, str]:
    """A record's label key as stored (text; a whole number as its digits; null as no key) and
    the problem with it, or "" when there is none."""
    if value is None:
        return None, ""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value), ""
    if not isinstance(value, str):
        return None, f"expected text or a whole number, got {_kind(value)} {_shown(value)}"
    if not value.strip():
        return None, "an empty key: send the key as text, or leave the field out"
    if len(value) > KEY_LENGTH:
        return None, f"a key of {len(value):,} characters: at most {KEY_LENGTH}"
    return value, ""


# --------------------------------------------------------------------------- after validation


def unseen_values(records: list[dict], schema: FeatureSchema, profile: dict, numbered: bool) -> list[dict]:
    """Valid values the model never saw in training, one warning each as {field, message, type}:
    numbers outside the training range, and allowed categories it never saw (scored as missing).
    `numbered`: the request was a list, so fields carry the record's index ("3.distance")."""
    numeric, categorical = profile.get("numeric", {}), profile.get("categorical", {})
    warnings = []
    for index, record in enumerate(records):
        prefix = f"{index}." if numbered else ""
        for name in schema.numeric:
            info, value = numeric.get(name, {}), record.get(name)
            low, high = info.get("min"), info.get("max")
            if value is not None and low is not None and high is not None and not low <= value <= high:
                warnings.append({"field": prefix + name, "type": "outside_training_range",
                                 "message": f"{value:g} is outside the training range {low:g} to {high:g}: "
                                            "the model never saw such a value, so treat this score with care"})
        for name in schema.categorical:
            known, value = categorical.get(name, {}).get("categories"), record.get(name)
            if known and value is not None and value not in known:
                warnings.append({"field": prefix + name, "type": "unseen_category",
                                 "message": f"{value!r} never appeared in training: scored as a missing value"})
    return warnings


def records_frame(records: list[dict], schema: FeatureSchema) -> pd.DataFrame:
    """Validated records as the model's input frame: numbers as float64 (None as NaN)."""
    columns = {name: [r[name] for r in records] for name in schema.columns}
    for name in schema.numeric:
        columns[name] = np.array([np.nan if v is None else v for v in columns[name]], dtype=float)
    return pd.DataFrame(columns, columns=schema.columns)
