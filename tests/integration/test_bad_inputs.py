"""A corpus of bad inputs, each given to the real CLI: params.yaml, data files, batches and the
SMTP settings in the environment.

Every case must end with exit code 2 and one message naming the file, the column, the key or the
variable; no Python traceback; and no output written half (outputs are renamed into place only
when complete, io.atomic_path).

The CLI runs in subprocesses: all cases of a group share one Python process (importing driftgate
costs about a second, far more than a case), which calls the same Typer app the `driftgate`
script calls, case after case, each in its own folder and environment. A sample of cases also
runs through the installed `driftgate` script, one process each, and must give the same result.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from filelock import FileLock

from tests.conftest import BIN, ROOT, make_tiny_frame, set_dotted

ROWS = 600  # hourly rows from 2024-01-01: 25 days
BASE_PARAMS: dict[str, Any] = {
    "data": {"path": "data.csv", "time_column": "when", "target": {"column": "churned"},
             "features": {"exclude": ["customer_id"]}},
    "validation": {"min_rows": 100, "ranges": {"x2": [0, 10]}, "allowed": {"plan": ["basic", "pro", "team"]}},
    "windows": {"train": "2024-01-01..2024-01-19", "current": "2024-01-19..2024-02-01"},
    "model": {"max_iter": 20},
    "gates": {"f1_min": 0.3},
}
SMTP_OK = {"DRIFTGATE_SMTP_HOST": "127.0.0.1", "DRIFTGATE_SMTP_PORT": "2525", "DRIFTGATE_SMTP_SECURITY": "none",
           "DRIFTGATE_ALERT_FROM": "driftgate@example.org", "DRIFTGATE_ALERT_TO": "ml-team@example.org"}


# --------------------------------------------------------------------------- building cases


def frame() -> pd.DataFrame:
    return make_tiny_frame(rows=ROWS)


def csv(table: pd.DataFrame) -> bytes:
    return table.to_csv(index=False).encode()


def parquet(table: pd.DataFrame | pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table if isinstance(table, pa.Table) else pa.Table.from_pandas(table, preserve_index=False), sink)
    return sink.getvalue().to_pybytes()


def changed(table: pd.DataFrame, **columns) -> pd.DataFrame:
    out = table.copy()
    for name, change in columns.items():
        out[name] = change(out[name].astype(object)) if callable(change) else change
    return out


def at(rows: list[int], value) -> Callable[[pd.Series], pd.Series]:
    def set_rows(values: pd.Series) -> pd.Series:
        values = values.copy()
        values.iloc[rows] = value
        return values

    return set_rows


def params_with(**edits) -> dict:
    """BASE_PARAMS with dotted keys set (`...` removes a key)."""
    return set_dotted(copy.deepcopy(BASE_PARAMS), **edits)


def base_yaml() -> str:
    return yaml.safe_dump(BASE_PARAMS, sort_keys=False)


@dataclass
class Case:
    id: str
    expect: tuple[str, ...]  # all in the output
    args: tuple[str, ...] = ("validate",)
    params: dict | bytes | None = None  # None: BASE_PARAMS; bytes: the file as written
    files: dict[str, bytes] = field(default_factory=dict)  # besides data.csv (the good table)
    env: dict[str, str] = field(default_factory=dict)
    group: str = "params"

    def command(self, base: Path) -> list[str]:
        """The arguments; {base} is the trained project that batches and alerts are checked against."""
        args = [a.replace("{base}", str(base)) for a in self.args]
        command = args[0]
        defaults = {
            "validate": ["--out", "artifacts/dataset.parquet", "--report", "reports/validation.json"],
            "train": ["--dataset", f"{base}/artifacts/dataset.parquet", "--model", "artifacts/model.joblib",
                      "--card", "artifacts/model.json"],
            "evaluate": ["--dataset", f"{base}/artifacts/dataset.parquet", "--model", f"{base}/artifacts/model.joblib",
                         "--out", "reports"],
            "drift": ["--dataset", f"{base}/artifacts/dataset.parquet", "--model", f"{base}/artifacts/model.joblib",
                      "--out", "reports/drift"],
            "alert": ["--gate", "reports/gate.json", "--dry-run"],
        }
        extra = [] if "--params" in args else ["--params", "params.yaml"]
        return [*args, *extra, *defaults.get(command, [])]

    def write(self, folder: Path) -> None:
        folder.mkdir(parents=True)
        (folder / "data.csv").write_bytes(csv(frame()))
        params = BASE_PARAMS if self.params is None else self.params
        (folder / "params.yaml").write_bytes(params if isinstance(params, bytes) else yaml.safe_dump(params, sort_keys=False).encode())
        for name, content in self.files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(content)


def _params_cases() -> list[Case]:
    text = base_yaml()
    assert "  target:\n    column: churned\n" in text and "gates:\n  f1_min: 0.3\n" in text
    return [
        # the file itself
        Case("params-duplicate-top-level-key", ("params.yaml: gates", "given twice", "lines"),
             params=(text + "gates:\n  f1_min: 0.5\n").encode()),
        Case("params-duplicate-nested-key", ("params.yaml: data.target.column", "given twice"),
             params=text.replace("    column: churned\n", "    column: churned\n    column: plan\n").encode()),
        Case("params-duplicate-key-deep", ("params.yaml: drift.tests.x1.test", "given twice"),
             params=(text + "drift:\n  tests:\n    x1:\n      test: ks\n      test: psi\n").encode()),
        Case("params-duplicate-flow-mapping-key", ("params.yaml: validation.allowed.plan", "given twice"),
             params=text.replace("  allowed:\n", "  allowed: {plan: [basic], plan: [pro]}\n  allowed_was:\n").encode()),
        Case("params-utf16", ("params.yaml", "UTF-16"), params=text.encode("utf-16")),
        Case("params-utf8-bom", ("params.yaml", "byte-order mark"), params=b"\xef\xbb\xbf" + text.encode()),
        Case("params-latin1", ("params.yaml", "not UTF-8", "line 2"),
             params=("project:\n  title: caf\u00e9 d\u00e9lais\n" + text).encode("latin-1")),
        Case("params-binary-garbage", ("params.yaml", "binary data"), params=bytes(range(256)) * 4),
        Case("params-garbage-without-nul", ("params.yaml", "not UTF-8"), params=bytes(range(128, 256)) * 4),
        Case("params-invalid-yaml", ("params.yaml", "not valid YAML", "line"), params=b"data: [unclosed\n"),
        Case("params-tab-indent", ("params.yaml", "not valid YAML"), params=b"data:\n\tpath: data.csv\n"),
        Case("params-nested-too-deep", ("params.yaml",), params=b"data: " + b"[" * 5000 + b"]" * 5000 + b"\n"),
        Case("params-duplicate-through-an-alias", ("params.yaml: validation.allowed.plan", "given twice"),
             params=text.replace("  allowed:\n", "  allowed: &rules {plan: [basic], plan: [pro]}\n  allowed_was:\n").encode()
             + b"x-copy: *rules\n"),
        Case("params-empty-file", ("params.yaml", "must be a mapping"), params=b""),
        Case("params-a-list", ("params.yaml", "must be a mapping"), params=b"- data\n- windows\n"),
        Case("params-missing-file", ("nope.yaml", "params file not found"), args=("validate", "--params", "nope.yaml")),
        Case("params-is-a-folder", ("data", "params file not found"), args=("validate", "--params", "data"),
             files={"data/x.csv": b"a\n1\n"}),
        # keys and types
        Case("params-unknown-section", ("params.yaml: dataa", "unknown key"), params={**BASE_PARAMS, "dataa": {}}),
        Case("params-unknown-nested-key", ("params.yaml: data.target.colum", "unknown key"),
             params=params_with(**{"data.target.colum": "churned"})),
        Case("params-key-not-a-name", ("params.yaml: 1", "Keys should be strings"), params=(text + "1: one\n").encode()),
        Case("params-missing-data-path", ("params.yaml: data.path", "missing"), params=params_with(**{"data.path": ...})),
        Case("params-null-data-path", ("params.yaml: data.path",), params=params_with(**{"data.path": None})),
        Case("params-missing-windows", ("params.yaml: windows", "missing"), params=params_with(windows=...)),
        Case("params-section-not-a-mapping", ("params.yaml: model",), params=params_with(model=5)),
        Case("params-f1-min-text", ("params.yaml: gates.f1_min", "'high'"), params=params_with(**{"gates.f1_min": "high"})),
        Case("params-f1-min-above-1", ("params.yaml: gates.f1_min", "less than or equal to 1"),
             params=params_with(**{"gates.f1_min": 1.5})),
        Case("params-holdout-fraction-1", ("params.yaml: windows.holdout_fraction",),
             params=params_with(**{"windows.holdout_fraction": 1.0})),
        Case("params-max-iter-zero", ("params.yaml: model.max_iter", "greater than or equal to 1"),
             params=params_with(**{"model.max_iter": 0})),
        Case("params-max-iter-text", ("params.yaml: model.max_iter", "'many'"), params=params_with(**{"model.max_iter": "many"})),
        Case("params-learning-rate-negative", ("params.yaml: model.learning_rate",), params=params_with(**{"model.learning_rate": -1})),
        Case("params-class-weight-unknown", ("params.yaml: model.class_weight", "'heavy'"),
             params=params_with(**{"model.class_weight": "heavy"})),
        Case("params-monotonic-two", ("params.yaml: model.monotonic.x1",), params=params_with(**{"model.monotonic": {"x1": 2}})),
        Case("params-range-reversed", ("params.yaml: validation.ranges", "low 10.0 > high 0.0"),
             params=params_with(**{"validation.ranges": {"x2": [10, 0]}})),
        Case("params-range-one-number", ("params.yaml: validation.ranges.x2",), params=params_with(**{"validation.ranges": {"x2": [0]}})),
        Case("params-null-share-above-1", ("params.yaml: validation.max_null_share",),
             params=params_with(**{"validation.max_null_share": 2})),
        Case("params-min-rows-negative", ("params.yaml: validation.min_rows",), params=params_with(**{"validation.min_rows": -5})),
        Case("params-feature-numeric-and-categorical", ("params.yaml: data.features", "both numeric and categorical"),
             params=params_with(**{"data.features.numeric": ["x1", "x2"], "data.features.categorical": ["plan", "x1"]})),
        Case("params-three-class-names", ("params.yaml: data.target.class_names",),
             params=params_with(**{"data.target.class_names": ["a", "b", "c"]})),
        Case("params-send-on-unknown", ("params.yaml: alerts.send_on", "'sometimes'"), params=params_with(**{"alerts.send_on": "sometimes"})),
        Case("params-upload-cap-zero", ("params.yaml: serving.max_upload_mb",), params=params_with(**{"serving.max_upload_mb": 0})),
        Case("params-empty-title", ("params.yaml: project.title",), params=params_with(**{"project.title": ""})),
        Case("params-date-as-title", ("params.yaml: project.title",), params=(text + "project:\n  title: 2024-01-01\n").encode()),
        Case("params-drift-columns-not-a-list", ("params.yaml: gates.drift_columns",),
             params=params_with(**{"gates.drift_columns": 5})),
        # windows
        Case("window-not-a-window", ("params.yaml: windows.current", "'April'"), params=params_with(**{"windows.current": "April"})),
        Case("window-reversed-months", ("params.yaml: windows.train", "must be after start"),
             params=params_with(**{"windows.train": "2024-03..2024-01"})),
        Case("window-month-13", ("params.yaml: windows.train", "2024-13"), params=params_with(**{"windows.train": "2024-13"})),
        Case("window-rows-reversed", ("params.yaml: windows.train", "end row 2 must be after start row 5"),
             params=params_with(**{"windows.train": "rows 5..2"})),
        Case("window-rows-not-numbers", ("params.yaml: windows.train", "rows first"),
             params=params_with(**{"windows.train": "rows first..last"})),
        Case("window-share-above-1", ("params.yaml: windows.current", "0.0 to 1.0"), params=params_with(**{"windows.current": "0.5..1.5"})),
        Case("window-bare-integers", ("params.yaml: windows.train", "ambiguous", "rows 0..400"),
             params=params_with(**{"windows.train": "0..400"})),
        Case("window-a-number", ("params.yaml: windows.train", "a window is"), params=params_with(**{"windows.train": 5})),
        Case("window-mapping-without-end", ("params.yaml: windows.train.end", "missing"),
             params=params_with(**{"windows.train": {"start": "2024-01-01"}})),
        Case("window-mapping-unknown-key", ("params.yaml: windows.train", "'stop'"),
             params=params_with(**{"windows.train": {"start": "2024-01-01", "stop": "2024-01-10"}})),
        Case("window-in-time-without-a-time", ("params.yaml: windows.train", "is a time window", "no data.time_column"),
             params=params_with(**{"data.time_column": ...})),
        Case("window-outside-the-data", ("windows.train", "has no rows", "data covers 2024-01-01 to 2024-01-25"),
             args=("train",), params=params_with(**{"windows.train": "2030-01"})),
        Case("window-rows-outside-the-data", ("windows.train", "rows 5000..6000 has no rows"),
             args=("train",), params=params_with(**{"windows.train": "rows 5000..6000"})),
        Case("window-on-the-command-line", ("--current", "'summer'"), args=("evaluate", "--current", "summer")),
        # the time, and settings that do not fit together
        Case("time-parts-without-a-time", ("params.yaml: data.features.time_parts", "need a time"),
             params=params_with(**{"data.time_column": ..., "data.features.time_parts": ["hour"], "windows.train": "rows 0..400",
                                   "windows.current": "rows 400.."})),
        Case("time-unit-without-time-column", ("params.yaml: data.time_unit", "data.time_column"),
             params=params_with(**{"data.time_column": ..., "data.time_unit": "seconds", "windows.train": "0.0..0.7",
                                   "windows.current": "0.7..1.0"})),
        Case("time-unit-unknown", ("params.yaml: data.time_unit", "'fortnights'"), params=params_with(**{"data.time_unit": "fortnights"})),
        Case("time-unit-and-format", ("params.yaml: data.time_format", "data.time_unit"),
             params=params_with(**{"data.time_unit": "seconds", "data.time_format": "%Y"})),
        Case("time-origin-not-a-date", ("params.yaml: data.time_origin", "'someday'"),
             params=params_with(**{"data.time_unit": "days", "data.time_origin": "someday"})),
        Case("time-from-without-day", ("params.yaml: data.time_from", "month and day"),
             params=params_with(**{"data.time_column": ..., "data.time_from": {"year": "y", "month": "m"}})),
        Case("time-from-and-time-column", ("params.yaml: data.time_from", "data.time_column"),
             params=params_with(**{"data.time_from": {"year": 2024, "day_of_year": "d"}})),
        Case("time-from-part-a-list", ("params.yaml: data.time_from.year",),
             params=params_with(**{"data.time_column": ..., "data.time_from": {"year": ["y"], "day_of_year": "d"}})),
        Case("target-among-the-features", ("params.yaml: data.features.numeric", "'churned'", "target column"),
             params=params_with(**{"data.features.numeric": ["x1", "churned"]})),
        Case("time-column-numbers", ("data.csv", "time column 'customer_id'", "holds numbers", "data.time_unit"),
             params=params_with(**{"data.time_column": "customer_id", "data.features.exclude": []})),
        Case("time-column-not-in-file", ("data.csv", "'signup'", "data.time_column"), params=params_with(**{"data.time_column": "signup"})),
        Case("time-format-does-not-match", ("data.csv", "'when'", "data.time_format"),
             params=params_with(**{"data.time_format": "%d/%m/%Y"})),
        Case("time-unit-on-text", ("data.csv", "'when'", "holds text", "data.time_unit"),
             params=params_with(**{"data.time_unit": "seconds"})),
        Case("time-unit-overflow", ("data.csv", "'customer_id'", "run past"),
             params=params_with(**{"data.time_column": "customer_id", "data.time_unit": "days", "data.time_origin": "2262-01-01",
                                   "data.features.exclude": []})),
        Case("range-for-a-column-that-is-not-a-feature", ("validation.ranges.age", "not a feature"),
             params=params_with(**{"validation.ranges": {"age": [18, 120]}})),
        Case("allowed-values-for-a-numeric-feature", ("validation.allowed.x1", "numeric feature"),
             params=params_with(**{"validation.allowed": {"x1": ["a"]}})),
        Case("monotonic-for-a-categorical-feature", ("model.monotonic", "plan", "numeric features only"),
             args=("train",), params=params_with(**{"model.monotonic": {"plan": 1}})),
        Case("drift-test-for-an-unknown-column", ("drift.tests.nope", "not a column being tested"),
             args=("drift",), params=params_with(**{"drift.tests": {"nope": {"test": "ks"}}})),
        Case("data-file-missing", ("data/nope.csv", "file not found", "data.path"), params=params_with(**{"data.path": "data/nope.csv"})),
        Case("join-file-missing", ("weather.csv", "file not found"),
             params=params_with(**{"data.join": {"path": "weather.csv", "keys": ["when"]}})),
        Case("join-key-not-in-the-file", ("data.csv", "'hour'", "data.join.keys"),
             params=params_with(**{"data.join": {"path": "other.csv", "keys": ["hour"]}}), files={"other.csv": b"hour,temp\n1,2\n"}),
    ]


def _data_cases() -> list[Case]:
    good = frame()
    numeric = params_with(**{"data.features": {"numeric": ["x1", "x2"], "categorical": ["plan"]}})

    def data(name: str, content: bytes, *expect: str, params: dict | None = None, args=("validate",)) -> Case:
        path = f"data/{name}"
        return Case(f"data-{name.replace('.', '-')}", (path, *expect), args=args,
                    params=(params or BASE_PARAMS) | {"data": {**(params or BASE_PARAMS)["data"], "path": path}},
                    files={path: content}, group="data")

    semicolons = good.to_csv(index=False, sep=";").encode()
    weather = pd.DataFrame({"when": good["when"], "temp": np.linspace(0, 1, ROWS)})
    joined = params_with(**{"data.join": {"path": "data/weather.csv", "keys": ["when"]}})
    parts = params_with(**{"data.time_column": ..., "data.time_from": {"year": "y", "month": "m", "day": "d"}})
    doy = params_with(**{"data.time_column": ..., "data.time_from": {"year": 2024, "day_of_year": "doy"}})
    dates = dict(y=2024, m=1, d=np.arange(ROWS) % 28 + 1)
    dup_parquet = pa.table([pa.array([1.0, 2.0]), pa.array([3.0, 4.0]), pa.array(["a", "b"])], names=["x1", "x1", "plan"])

    def with_join(name: str, content: bytes, *expect: str, params=joined) -> Case:
        case = data("customers.csv", csv(good), *expect, params=params)
        case.id, case.expect, case.files["data/weather.csv"] = f"join-{name}", ("data/weather.csv", *expect), content
        return case

    return [
        data("inf.csv", csv(changed(good, x1=at([3, 9], np.inf))), "column 'x1'", "finite", "2 row(s)"),
        data("minus-inf.csv", csv(changed(good, x1=at([4], -np.inf))), "column 'x1'", "finite"),
        data("text-in-number.csv", csv(changed(good, x2=at([5], "ten"))), "column 'x2'", "numeric type", "ten"),
        data("decimal-comma.csv", csv(changed(good, x2=at([6, 7], "1,5"))), "column 'x2'", "1,5"),
        data("true-false-in-number.csv", csv(changed(good, x1=lambda v: v > 0)), "column 'x1'", "numeric type", "true/false",
             params=numeric),
        data("duplicate-columns.csv", b"when,x1,x2,x1,plan,churned\n" + b"2024-01-01,1,2,3,pro,1\n" * 200, "'x1'", "more than once"),
        data("empty-column.csv", csv(changed(good, x2=np.nan)), "column 'x2'", "entirely empty"),
        data("trailing-commas.csv", csv(good).replace(b"\n", b",\n"), "'Unnamed: 6'", "entirely empty"),
        data("empty.csv", b"", "file is empty"),
        data("only-newlines.csv", b"\n\n\n", "no columns"),
        data("header-only.csv", csv(good.head(0)), "header but no rows"),
        data("binary.csv", bytes(range(256)) * 64, "binary data"),
        data("gzip-named-csv.csv", b"\x1f\x8b\x08\x08" + bytes(range(128, 250)), "not UTF-8"),
        data("parquet-named-csv.csv", parquet(good), "is a Parquet file"),
        data("semicolons.csv", semicolons, "separated by semicolons"),
        data("tabs.csv", good.to_csv(index=False, sep="\t").encode(), "separated by tabs"),
        data("latin1.csv", csv(changed(good, plan=at([1], "caf\u00e9"))).decode().encode("latin-1"), "not UTF-8"),
        data("utf16.csv", csv(good).decode().encode("utf-16"), "UTF-16"),
        data("ragged.csv", csv(good.head(300)) + b"2024-02-01,1,2,pro,1,5,extra,more\n", "cannot be read as a table", "Expected 6 fields"),
        data("unclosed-quote.csv", csv(good.head(300)) + b'2024-02-01,1,2,"pro,1,5\n', "cannot be read as a table"),
        data("no-label.csv", csv(good.drop(columns=["churned"])), "'churned'", "data.target.column"),
        data("no-feature.csv", csv(good.drop(columns=["x2"])), "'x2'", "missing", "data.features", params=numeric),
        data("label-not-binary.csv", csv(changed(good, churned=lambda v: np.where(v == 1, "yes", "no"))), "'churned'", "expected 0/1"),
        data("label-one-class.csv", csv(changed(good, churned=0)), "churned", "labels are negative"),
        data("label-inf.csv", csv(changed(good, churned=at([2], np.inf))), "'churned'", "infinite",
             params=params_with(**{"data.target.positive_if_at_least": 0.5})),
        data("label-text-with-threshold.csv", csv(changed(good, churned=at([2], "maybe"))), "'churned'", "non-numeric",
             params=params_with(**{"data.target.positive_if_at_least": 0.5})),
        data("time-not-a-date.csv", csv(changed(good, when=at([2], "yesterday"))), "'when'", "yesterday"),
        data("time-empty-cells.csv", csv(changed(good, when=at([2, 3], np.nan))), "'when'", "2 empty time value(s)"),
        data("time-empty-column.csv", csv(changed(good, when=np.nan)), "'when'", "entirely empty"),
        data("too-few-rows.csv", csv(good.head(50)), "row count >= 100", "50 rows"),
        data("out-of-range.csv", csv(changed(good, x2=at([7], 42.0))), "column 'x2'", "validation.ranges.x2"),
        data("unknown-category.csv", csv(changed(good, plan=at([7], "enterprise"))), "column 'plan'", "validation.allowed.plan"),
        data("parts-not-a-date.csv", csv(good.assign(**dates).assign(d=28).assign(m=2).assign(d=lambda f: np.where(f.index == 4, 30, 28))),
             "no such date", "2024-02-30", params=parts),
        data("parts-text.csv", csv(good.assign(**dates).assign(m=lambda f: np.where(f.index == 4, "June", "1"))), "'m'", "holds text",
             params=parts),
        data("parts-fraction.csv", csv(good.assign(**dates).assign(d=lambda f: np.where(f.index == 4, 1.5, 2))), "'d'", "fractions",
             params=parts),
        data("day-of-year-past-366.csv", csv(good.assign(doy=lambda f: np.where(f.index == 4, 400, 10))), "'doy'", "outside 1..366",
             params=doy),
        data("day-366-of-a-short-year.csv", csv(good.assign(doy=366)), "day 366 is past the end of year 2023",
             params=params_with(**{"data.time_column": ..., "data.time_from": {"year": 2023, "day_of_year": "doy"}})),
        data("spreadsheet.xlsx", b"PK\x03\x04" + bytes(200), "is a spreadsheet", "CSV"),
        data("corrupt.parquet", b"PAR1 this is not parquet", "cannot be read as a table"),
        data("zero-rows.parquet", parquet(good.head(0)), "header but no rows"),
        data("duplicate-columns.parquet", parquet(dup_parquet), "'x1'", "more than once"),
        data("inf.parquet", parquet(changed(good, x1=at([3], np.inf)).astype({"x1": float})), "column 'x1'", "finite"),
        data("text-in-number.parquet", parquet(changed(good, x2=lambda v: v.astype(str).where(v.index != 5, "ten"))), "column 'x2'", "ten",
             params=numeric),
        data("empty-column.parquet", parquet(changed(good, x1=np.nan)), "column 'x1'", "entirely empty"),
        data("epoch-seconds.parquet", parquet(good.assign(when=np.arange(ROWS) * 3600 + 1_704_067_200)), "'when'", "holds numbers",
             "data.time_unit"),
        Case("data-folder-as-path", ("data", "cannot be read as a table"), params=params_with(**{"data.path": "data"}),
             files={"data/a.txt": b"hello"}, group="data"),
        with_join("repeated-keys", csv(pd.concat([weather, weather.head(3)])), "3 rows repeat the join key"),
        with_join("key-text-vs-dates", csv(weather.assign(when=np.arange(ROWS))), "join key 'when'", "numbers here but text"),
        with_join("column-in-both-files", csv(weather.assign(x1=1.0)), "'x1'", "data.join.columns",
                  params=params_with(**{"data.join": {"path": "data/weather.csv", "keys": ["when"], "columns": ["temp", "x1"]}})),
        with_join("duplicate-columns", b"when,temp,temp\n2024-01-01 00:00:00,1,2\n", "'temp'", "more than once"),
        with_join("empty-column", csv(weather.assign(temp=np.nan)), "column 'temp'", "entirely empty"),
    ]


def _batch_cases() -> list[Case]:
    batch = make_tiny_frame(rows=300, seed=5).drop(columns=["churned", "when"])

    def scored(name: str, content: bytes, *expect: str, command: str = "drift") -> Case:
        return Case(f"batch-{command}-{name.replace('.', '-')}", (name, *expect), args=(command, "--current", name),
                    files={name: content}, group="batch")

    return [
        scored("inf.csv", csv(changed(batch, x1=at([3, 4], np.inf))), "column 'x1'", "2 infinite value(s)"),
        scored("inf.parquet", parquet(changed(batch, x1=at([3], -np.inf)).astype({"x1": float})), "column 'x1'", "infinite"),
        scored("text.csv", csv(changed(batch, x2=at([3], "ten"))), "column 'x2'", "holds text", "'ten'"),
        scored("text-eval.csv", csv(changed(batch, x2=at([3], "n/a!"))), "column 'x2'", "holds text", command="evaluate"),
        scored("true-false.csv", csv(changed(batch, x1=lambda v: v > 0)), "column 'x1'", "true/false"),
        scored("duplicate-columns.csv", b"x1,x2,x1,plan,customer_id\n1,2,3,pro,4\n", "'x1'", "more than once"),
        scored("empty-column.csv", csv(changed(batch, x2=np.nan)), "column 'x2'", "entirely empty"),
        scored("empty-column-eval.parquet", parquet(changed(batch, plan=None)), "column 'plan'", "entirely empty", command="evaluate"),
        scored("no-feature.csv", csv(batch.drop(columns=["x2"])), "'x2'", "missing"),
        scored("header-only.csv", csv(batch.head(0)), "header but no rows"),
        scored("empty.csv", b"", "file is empty"),
        scored("binary.parquet", bytes(range(256)) * 8, "cannot be read as a table"),
        scored("binary.csv", b"\x00\x01garbage" * 50, "binary data"),
        scored("semicolons.csv", batch.to_csv(index=False, sep=";").encode(), "separated by semicolons"),
        scored("bad-time.csv", csv(batch.assign(when="not a date")), "'when'", "not dates"),
        Case("batch-missing-file", ("nope.csv", "file not found"), args=("drift", "--current", "nope.csv"), group="batch"),
        Case("batch-window-outside-the-data", ("windows.current", "2030-01 has no rows"), args=("evaluate", "--current", "2030-01"),
             group="batch"),
        Case("batch-rows-outside-the-data", ("windows.current", "rows 9000.. has no rows"),
             args=("drift", "--current", "rows 9000.."), group="batch"),
        Case("two-files-duplicate-columns", ("ref.csv", "'x1'", "more than once"),
             args=("drift", "--reference", "ref.csv", "--current", "cur.csv"),
             files={"ref.csv": b"x1,x1\n1,2\n", "cur.csv": csv(batch)}, group="batch"),
        Case("two-files-binary-current", ("cur.csv", "binary data"), args=("drift", "--reference", "ref.csv", "--current", "cur.csv"),
             files={"ref.csv": csv(batch), "cur.csv": b"\x00" * 100}, group="batch"),
    ]


def _smtp_cases() -> list[Case]:
    def smtp(name: str, variable: str, *expect: str, **env: str) -> Case:
        return Case(f"smtp-{name}", (variable, *expect), args=("alert",), env={**SMTP_OK, **env}, group="smtp")

    return [
        smtp("port-text", "DRIFTGATE_SMTP_PORT", "'abc'", "not a port number", DRIFTGATE_SMTP_PORT="abc"),
        smtp("port-zero", "DRIFTGATE_SMTP_PORT", "outside 1..65535", DRIFTGATE_SMTP_PORT="0"),
        smtp("port-too-high", "DRIFTGATE_SMTP_PORT", "70000", DRIFTGATE_SMTP_PORT="70000"),
        smtp("port-decimal", "DRIFTGATE_SMTP_PORT", "'587.0'", DRIFTGATE_SMTP_PORT="587.0"),
        smtp("port-negative", "DRIFTGATE_SMTP_PORT", "'-25'", DRIFTGATE_SMTP_PORT="-25"),
        smtp("security-unknown", "DRIFTGATE_SMTP_SECURITY", "'tls'", "starttls, ssl, none", DRIFTGATE_SMTP_SECURITY="tls"),
        smtp("host-a-url", "DRIFTGATE_SMTP_HOST", "is a URL", DRIFTGATE_SMTP_HOST="smtp://mail.example.org"),
        smtp("host-with-port", "DRIFTGATE_SMTP_HOST", "DRIFTGATE_SMTP_PORT", DRIFTGATE_SMTP_HOST="mail.example.org:587"),
        smtp("host-with-space", "DRIFTGATE_SMTP_HOST", "spaces", DRIFTGATE_SMTP_HOST="mail example.org"),
        smtp("host-not-a-name", "DRIFTGATE_SMTP_HOST", "not a host name", DRIFTGATE_SMTP_HOST="mail..example.org"),
        smtp("host-missing-with-user", "DRIFTGATE_SMTP_HOST", "not set", "DRIFTGATE_SMTP_USER",
             DRIFTGATE_SMTP_HOST="", DRIFTGATE_SMTP_USER="alerts", DRIFTGATE_SMTP_PASSWORD="pw"),
        smtp("recipients-missing", "DRIFTGATE_ALERT_TO", "not set", DRIFTGATE_ALERT_TO=""),
        smtp("sender-not-an-address", "DRIFTGATE_ALERT_FROM", "'driftgate'", DRIFTGATE_ALERT_FROM="driftgate"),
        smtp("sender-two-addresses", "DRIFTGATE_ALERT_FROM", "not an email address", DRIFTGATE_ALERT_FROM="a@example.org, b@example.org"),
        smtp("sender-with-line-break", "DRIFTGATE_ALERT_FROM", "line break", DRIFTGATE_ALERT_FROM="a@example.org\nBcc: x@example.org"),
        smtp("recipient-not-an-address", "DRIFTGATE_ALERT_TO", "'oncall'", DRIFTGATE_ALERT_TO="ml-team@example.org, oncall"),
        smtp("recipients-only-commas", "DRIFTGATE_ALERT_TO", "no email address", DRIFTGATE_ALERT_TO=" , ,"),
        smtp("user-without-password", "DRIFTGATE_SMTP_PASSWORD", "DRIFTGATE_SMTP_USER", DRIFTGATE_SMTP_SECURITY="starttls",
             DRIFTGATE_SMTP_USER="alerts"),
        smtp("password-without-user", "DRIFTGATE_SMTP_USER", "DRIFTGATE_SMTP_PASSWORD", DRIFTGATE_SMTP_PASSWORD="pw"),
        smtp("login-without-encryption", "DRIFTGATE_SMTP_SECURITY", "unencrypted", DRIFTGATE_SMTP_USER="alerts",
             DRIFTGATE_SMTP_PASSWORD="pw"),
        smtp("cafile-missing", "DRIFTGATE_SMTP_CAFILE", "not a file", DRIFTGATE_SMTP_SECURITY="starttls",
             DRIFTGATE_SMTP_CAFILE="/nonexistent/ca.pem"),
        smtp("cafile-not-a-certificate", "DRIFTGATE_SMTP_CAFILE", "no usable certificate", DRIFTGATE_SMTP_SECURITY="ssl",
             DRIFTGATE_SMTP_CAFILE="params.yaml"),
    ]


CASES = [*_params_cases(), *_data_cases(), *_batch_cases(), *_smtp_cases()]
BY_ID = {case.id: case for case in CASES}
assert len(BY_ID) == len(CASES), "case ids are unique"
# One process per case through the installed script, compared with the grouped run.
SAMPLE = ["params-duplicate-nested-key", "params-latin1", "window-in-time-without-a-time", "time-column-numbers",
          "data-duplicate-columns-csv", "data-inf-csv", "batch-drift-inf-csv", "smtp-port-text"]

# --------------------------------------------------------------------------- running them

DRIVER = textwrap.dedent('''
    """Run driftgate's CLI for many cases in one process: what `driftgate ARGS` does, per case."""
    import contextlib, io, json, os, sys, traceback
    from driftgate.cli import app

    cases = json.load(open(sys.argv[1]))
    results = {}
    keep = dict(os.environ)
    for case in cases:
        os.chdir(case["cwd"])
        os.environ.clear()
        os.environ.update({k: v for k, v in keep.items() if not k.startswith("DRIFTGATE_")}, **case["env"])
        stdout, stderr = io.StringIO(), io.StringIO()
        code = None
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                app(case["args"], prog_name="driftgate")
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except BaseException:
                traceback.print_exc()
                code = 1
        results[case["id"]] = {"code": code, "stdout": stdout.getvalue(), "stderr": stderr.getvalue()}
    json.dump(results, open(sys.argv[2], "w"))
''')


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTGATE_")}
    return {**env, "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}", "PYTHONPATH": str(ROOT), "COLUMNS": "200",
            "OMP_NUM_THREADS": "1"}  # the booster's threads only wait for each other on a busy machine


def _base_project(folder: Path) -> Path:
    """The trained project that batches, `train` and `alert` cases run against."""
    folder.mkdir()
    (folder / "data.csv").write_bytes(csv(frame()))
    (folder / "params.yaml").write_text(base_yaml())
    for stage in ("validate", "train"):
        done = subprocess.run([str(BIN / "driftgate"), stage], cwd=folder, env=_env(), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{stage}: {done.stdout}{done.stderr}"
    return folder


def _run_all(folder: Path) -> dict[str, dict]:
    base = _base_project(folder / "base")
    groups: dict[str, list[dict]] = {}
    for case in CASES:
        cwd = folder / "cases" / case.id
        case.write(cwd)
        groups.setdefault(case.group, []).append({"id": case.id, "cwd": str(cwd), "args": case.command(base), "env": case.env})
    driver = folder / "driver.py"
    driver.write_text(DRIVER)
    running = []
    for name, cases in groups.items():
        (folder / f"{name}.json").write_text(json.dumps(cases))
        running.append(subprocess.Popen([sys.executable, str(driver), str(folder / f"{name}.json"), str(folder / f"{name}.out.json")],
                                        cwd=folder, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results: dict[str, dict] = {}
    for (name, _), process in zip(groups.items(), running):
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, f"driver for {name} failed:\n{out}{err}"
        results.update(json.loads((folder / f"{name}.out.json").read_text()))
    for case_id in SAMPLE:
        case = BY_ID[case_id]
        alone = subprocess.run([str(BIN / "driftgate"), *case.command(base)], cwd=folder / "cases" / case_id,
                               env={**_env(), **case.env}, capture_output=True, text=True, timeout=120)
        results[case_id]["alone"] = {"code": alone.returncode, "stdout": alone.stdout, "stderr": alone.stderr}
    return results


def _error_line(stderr: str) -> str:
    return next((line for line in stderr.splitlines() if line.startswith("error:")), "")


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> tuple[Path, dict[str, dict]]:
    """Every case run once per test session, shared by the xdist workers."""
    shared = tmp_path_factory.getbasetemp().parent / "driftgate-bad-inputs"
    with FileLock(str(shared) + ".lock"):
        if not (shared / "results.json").is_file():
            shared.mkdir(exist_ok=True)
            work = Path(tmp_path_factory.mktemp("bad-inputs"))
            results = _run_all(work)
            (shared / "results.json").write_text(json.dumps({"folder": str(work), "results": results}))
        stored = json.loads((shared / "results.json").read_text())
    return Path(stored["folder"]), stored["results"]


def test_the_corpus_is_large_and_covers_every_kind_of_input():
    groups = {case.group for case in CASES}
    assert groups == {"params", "data", "batch", "smtp"}
    assert len(CASES) >= 60
    assert sum(case.group == "smtp" for case in CASES) >= 15


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_exits_2_naming_where_and_writes_nothing_half(case, corpus):
    folder, results = corpus
    result = results[case.id]
    output = result["stdout"] + result["stderr"]
    assert "Traceback" not in output, output
    assert result["code"] == 2, f"exit {result['code']}:\n{output}"
    for text in case.expect:
        assert text in output, f"{text!r} not in:\n{output}"
    assert "error:" in result["stderr"], output
    cwd = folder / "cases" / case.id
    assert not [p for p in cwd.rglob("*") if p.name.startswith(".") and p.name.endswith(".tmp")], "a temp file was left behind"
    for output_file in ("artifacts/dataset.parquet", "artifacts/model.joblib", "artifacts/model.json", "reports/metrics.json",
                        "reports/drift/drift.json", "reports/drift/drift.md"):
        assert not (cwd / output_file).exists(), f"{output_file} was written on bad input"
    if "alone" in result:  # the same through the installed `driftgate` script, in its own process
        alone = result["alone"]
        assert alone["code"] == 2 and "Traceback" not in alone["stdout"] + alone["stderr"]
        assert _error_line(alone["stderr"]) == _error_line(result["stderr"])
