"""Validation: schema and quality checks on the modelling frame, before anything is trained.

The schema (types, ranges, allowed categories, null shares, finiteness) is a pandera
DataFrameSchema built from params.yaml, so teams can read and extend it with pandera's own
checks. Row count and the label set are checked beside it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from driftgate.config import Params
from driftgate.data.dataset import LABEL, TIME, FeatureSchema
from driftgate.errors import ConfigError, listed

MAX_EXAMPLES = 5


@dataclass
class Finding:
    column: str
    check: str
    failures: int
    examples: list[str] = field(default_factory=list)
    hint: str = ""
    more_values: int = 0  # distinct failing values beyond the examples

    def line(self) -> str:
        more = f" and {self.more_values} more value(s)" if self.more_values else ""
        shown = f", e.g. {', '.join(self.examples)}{more}" if self.examples else ""
        text = f"column '{self.column}': check `{self.check}` failed for {self.failures} row(s){shown}"
        return f"{text} -> {self.hint}" if self.hint else text


def check_rules(params: Params, schema: FeatureSchema) -> None:
    """validation.ranges, .allowed and .null_share name features of the right kind: a rule for a
    column that is not a feature (a typo, or a column left out) would otherwise check nothing."""
    rules = params.validation
    for key, names, kind in (("ranges", rules.ranges, "numeric"), ("allowed", rules.allowed, "categorical"),
                             ("null_share", rules.null_share, None)):
        for column in names:
            if column not in schema.columns:
                raise ConfigError(f"params.yaml: validation.{key}.{column}", "is not a feature, so the rule would check nothing",
                                  f"fix the column name, or remove the rule; features: {listed(schema.columns, limit=20)}")
            if kind == "numeric" and column not in schema.numeric:
                raise ConfigError(f"params.yaml: validation.ranges.{column}", "is a range for a categorical feature",
                                  "list allowed values under validation.allowed instead, or list the column under data.features.numeric")
            if kind == "categorical" and column not in schema.categorical:
                raise ConfigError(f"params.yaml: validation.allowed.{column}", "lists values for a numeric feature",
                                  "give a [low, high] range under validation.ranges instead, or list the column under data.features.categorical")


def build_schema(params: Params, schema: FeatureSchema) -> pa.DataFrameSchema:
    """The pandera schema for the modelling frame, from params.yaml: validation."""
    rules = params.validation
    columns: dict[str, pa.Column] = {}
    for name in schema.numeric:
        checks = [pa.Check(lambda s: pd.Series(np.isfinite(s.to_numpy(dtype=float)), index=s.index), name="finite")]
        if name in rules.ranges:
            low, high = rules.ranges[name]
            checks.append(pa.Check.in_range(low, high))
        columns[name] = pa.Column(float, coerce=True, nullable=True, checks=checks)
    for name in schema.categorical:
        checks = []
        if name in rules.allowed:
            checks.append(pa.Check.isin(rules.allowed[name]))
        columns[name] = pa.Column(object, nullable=True, checks=checks)
    return pa.DataFrameSchema(columns, strict=False, name="features")


def _findings_from(errors: SchemaErrors) -> list[Finding]:
    cases = errors.failure_cases
    findings: list[Finding] = []
    bad_type = set(cases.loc[cases["check"].astype(str).str.startswith("coerce_dtype"), "column"])
    for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=False):
        check = str(check)
        if column in bad_type and not check.startswith("coerce_dtype"):
            continue  # follow-on errors of a column that is not numeric at all
        if check.startswith("dtype("):
            continue  # reported once, as coerce_dtype
        values = [str(v) for v in group["failure_case"].tolist() if v is not None and not isinstance(v, bool)]
        index = group["index"].dropna()
        count = len(index) if len(index) else 1
        if check == "column_in_dataframe":
            findings.append(Finding(str(values[0]) if values else "?", "column present", 1, hint="add the column or remove it from params.yaml"))
            continue
        if check.startswith("coerce_dtype"):
            check = "numeric type"
        hint = {"finite": "replace +-inf with a number or leave the cell empty",
                "numeric type": "this column is listed as numeric: fix the values or list it under categorical"}.get(check, "")
        if check.startswith("in_range"):
            hint = f"fix the values, or widen validation.ranges.{column} in params.yaml"
        elif check.startswith("isin"):
            hint = f"fix the values, or add them to validation.allowed.{column} in params.yaml"
        unique = list(dict.fromkeys(values))
        findings.append(Finding(str(column), check, count, unique[:MAX_EXAMPLES], hint, max(len(unique) - MAX_EXAMPLES, 0)))
    return findings


def _null_findings(frame: pd.DataFrame, params: Params, schema: FeatureSchema) -> list[Finding]:
    rules = params.validation
    findings = []
    for name in schema.columns:
        share = float(frame[name].isna().mean()) if len(frame) else 0.0
        limit = rules.null_share.get(name, rules.max_null_share)
        if share > limit:
            key = f"validation.null_share.{name}" if name in rules.null_share else "validation.max_null_share"
            findings.append(Finding(name, f"missing share <= {limit:.0%}", int(frame[name].isna().sum()),
                                    [f"{share:.1%} missing"], f"fill the gaps, or raise {key} in params.yaml"))
    return findings


def _label_findings(frame: pd.DataFrame, params: Params) -> list[Finding]:
    if LABEL not in frame:
        return []
    target = params.data.target.column
    counts = frame[LABEL].value_counts()
    positives, total = int(counts.get(1, 0)), int(counts.sum())
    if total == 0:
        return [Finding(target, "label present", len(frame), hint="no row has a label")]
    share = positives / total
    if positives == 0 or positives == total:
        only = "positive" if positives else "negative"
        return [Finding(target, "both classes present", total, [f"all {total} labels are {only}"], hint="check data.target in params.yaml")]
    if share < params.validation.min_positive_share:
        return [Finding(target, f"positive share >= {params.validation.min_positive_share:g}", positives, [f"positive share {share:.4f}"])]
    return []


def validate_frame(frame: pd.DataFrame, params: Params, schema: FeatureSchema) -> tuple[pd.DataFrame, list[Finding]]:
    """Check the modelling frame. Returns the frame with numeric columns as float, and findings."""
    check_rules(params, schema)
    findings: list[Finding] = []
    if len(frame) < params.validation.min_rows:
        findings.append(Finding("(rows)", f"row count >= {params.validation.min_rows}", len(frame), [f"{len(frame)} rows"]))
    for name in schema.numeric:  # pandera would coerce true/false to 1.0/0.0 without a word
        if name in frame and pd.api.types.is_bool_dtype(frame[name]):
            findings.append(Finding(name, "numeric type", int(frame[name].notna().sum()), ["true/false"],
                                    "write 0/1, or list the column under data.features.categorical"))
    checked = frame
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            checked = build_schema(params, schema).validate(frame, lazy=True)
    except SchemaErrors as errors:
        findings.extend(_findings_from(errors))
    findings.extend(_null_findings(frame, params, schema))
    findings.extend(_label_findings(frame, params))
    return checked, findings


def summarise(frame: pd.DataFrame, schema: FeatureSchema, findings: list[Finding], source: str) -> dict:
    """The validation report written to reports/validation.json."""
    columns = {}
    for name in schema.columns:
        values = frame[name]
        entry: dict = {"type": "numeric" if name in schema.numeric else "categorical", "null_share": float(values.isna().mean())}
        if name in schema.numeric:
            numeric = pd.to_numeric(values, errors="coerce")
            entry.update(min=float(numeric.min()), max=float(numeric.max()), mean=float(numeric.mean()))
        else:
            entry["n_categories"] = int(values.nunique())
        columns[name] = entry
    label = frame[LABEL] if LABEL in frame else pd.Series(dtype=float)
    return {
        "source": source,
        "passed": not findings,
        "rows": len(frame),
        "time_range": [str(frame[TIME].min()), str(frame[TIME].max())] if len(frame) else None,
        "positive_share": float(label.mean()) if len(label) else None,
        "findings": [f.__dict__ for f in findings],
        "columns": columns,
    }
