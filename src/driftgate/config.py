"""params.yaml, validated once into typed settings, and the project's paths.

No other module builds a path from strings or reads params.yaml itself. A bad value fails at
start-up with the key, the value and the allowed range in the message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from driftgate.errors import ConfigError

DEFAULT_PARAMS = Path("params.yaml")

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- windows

_MONTH = re.compile(r"^\d{4}-\d{2}$")


def _month_bounds(text: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    start = pd.Timestamp(f"{text}-01")
    return start, start + pd.offsets.MonthBegin(1)


class Window(Strict):
    """A half-open time window [start, end).

    Written in params.yaml as a month (`2013-04`), a range of months (`2013-01..2013-03`,
    both included), a range of dates (`2013-01-01..2013-03-15`, end excluded) or a mapping
    `{start: ..., end: ...}`.
    """

    start: pd.Timestamp
    end: pd.Timestamp
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: pd.Timestamp(v) if k in ("start", "end") else v for k, v in value.items()}
        if not isinstance(value, str):
            raise ValueError("a window is a month like 2013-04, a range like 2013-01..2013-03, or {start, end}")
        text = value.strip()
        try:
            if ".." in text:
                first, last = (part.strip() for part in text.split("..", 1))
                if _MONTH.match(first) and _MONTH.match(last):
                    return {"start": _month_bounds(first)[0], "end": _month_bounds(last)[1]}
                return {"start": pd.Timestamp(first), "end": pd.Timestamp(last)}
            if _MONTH.match(text):
                start, end = _month_bounds(text)
                return {"start": start, "end": end}
        except ValueError as exc:
            raise ValueError(f"cannot read {value!r} as dates ({exc})") from exc
        raise ValueError(f"cannot read {value!r} as a window: use 2013-04, 2013-01..2013-03 or {{start, end}}")

    @model_validator(mode="after")
    def _ordered(self) -> "Window":
        if self.end <= self.start:
            raise ValueError(f"end {self.end.date()} must be after start {self.start.date()}")
        return self

    @property
    def label(self) -> str:
        last = self.end - pd.Timedelta(days=1)
        if self.start.day == 1 and self.end.day == 1 and self.start.time() == self.end.time() == pd.Timestamp(0).time():
            first_m, last_m = self.start.strftime("%Y-%m"), last.strftime("%Y-%m")
            return first_m if first_m == last_m else f"{first_m}..{last_m}"
        return f"{self.start.date()}..{self.end.date()}"


def parse_window(text: str, where: str = "--current") -> Window:
    """Parse a window given on the command line, with the option name in the error."""
    try:
        return Window.model_validate(text)
    except ValidationError as exc:
        raise ConfigError(where, exc.errors()[0]["msg"], "use a month like 2013-07 or a range like 2013-06..2013-08") from exc


# --------------------------------------------------------------------------- sections


class JoinConfig(Strict):
    path: Path
    keys: list[str] = Field(min_length=1)
    columns: list[str] | None = None


class TargetConfig(Strict):
    column: str
    positive_if_at_least: float | None = None
    drop_missing: bool = True
    class_names: tuple[str, str] = ("negative", "positive")


class FeatureConfig(Strict):
    numeric: list[str] | None = None
    categorical: list[str] | None = None
    time_parts: list[Literal["hour", "day_of_week", "day_of_month", "month"]] = []
    exclude: list[str] = []

    @model_validator(mode="after")
    def _no_overlap(self) -> "FeatureConfig":
        both = set(self.numeric or []) & set(self.categorical or [])
        if both:
            raise ValueError(f"column(s) {sorted(both)} are listed as both numeric and categorical")
        return self


class DataConfig(Strict):
    path: Path
    join: JoinConfig | None = None
    time_column: str
    target: TargetConfig
    features: FeatureConfig = FeatureConfig()


class ValidationConfig(Strict):
    min_rows: int = Field(default=100, ge=1)
    max_null_share: Fraction = 0.05
    null_share: dict[str, Fraction] = {}
    ranges: dict[str, tuple[float, float]] = {}
    allowed: dict[str, list[str]] = {}
    min_positive_share: Fraction = 0.01

    @field_validator("ranges")
    @classmethod
    def _ranges_ordered(cls, value: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        for column, (low, high) in value.items():
            if low > high:
                raise ValueError(f"range for {column!r} has low {low} > high {high}")
        return value


class WindowsConfig(Strict):
    train: Window
    holdout_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.2
    reference: Window | None = None
    current: Window

    @property
    def reference_window(self) -> Window:
        return self.reference or self.train


class ModelConfig(Strict):
    max_iter: int = Field(default=300, ge=1, le=10_000)
    learning_rate: float = Field(default=0.05, gt=0.0, le=1.0)
    max_leaf_nodes: int = Field(default=31, ge=2, le=4096)
    min_samples_leaf: int = Field(default=20, ge=1)
    l2_regularization: float = Field(default=0.0, ge=0.0)
    class_weight: Literal["balanced"] | None = "balanced"
    monotonic: dict[str, Literal[-1, 0, 1]] = {}
    threshold: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.5
    seed: int = 0


DriftEngine = Literal["pandas", "chunked", "dask"]  # in memory; files in batches; the same on a Dask cluster


class ColumnTest(Strict):
    test: Literal["ks", "wasserstein", "jensenshannon", "chisquare", "z", "psi", "hellinger"] | None = None
    threshold: float | None = Field(default=None, gt=0.0)


class DriftConfig(Strict):
    share_threshold: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5
    columns: list[str] | None = None
    prediction: bool = True
    small_sample: int = Field(default=1000, ge=1)
    report_sample: int = Field(default=2000, ge=100, le=1_000_000)
    mode: Literal["parity", "calibrated"] = "parity"
    alpha: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.05  # calibrated mode: false-alarm level
    correction: Literal["bh", "bonferroni"] = "bh"
    draws: int = Field(default=200, ge=50, le=10_000)
    pool_below: Annotated[float, Field(ge=0.0, lt=0.5)] = 0.005
    tests: dict[str, ColumnTest] = {}  # per-column test and/or threshold instead of the default rule
    ignore: list[str] = []  # reported, but left out of the drift share (e.g. calendar columns under a time split)

    def overrides(self, kinds: dict[str, str]) -> dict[str, tuple[str | None, float | None]]:
        """The per-column overrides, checked against the columns being tested."""
        from driftgate.drift.stattests import NUMERIC_ONLY_TESTS

        for column, choice in self.tests.items():
            if column not in kinds:
                raise ConfigError(f"params.yaml: drift.tests.{column}", "is not a column being tested",
                                  f"use one of: {', '.join(kinds)}")
            if choice.test in NUMERIC_ONLY_TESTS and kinds[column] != "numeric":
                raise ConfigError(f"params.yaml: drift.tests.{column}.test", f"{choice.test} needs a numeric column",
                                  "use jensenshannon, psi, hellinger, chisquare or z")
        return {column: (choice.test, choice.threshold) for column, choice in self.tests.items()}

    def ignored(self, kinds: dict[str, str]) -> frozenset[str]:
        """drift.ignore, checked against the columns being tested."""
        for column in self.ignore:
            if column not in kinds:
                raise ConfigError(f"params.yaml: drift.ignore: {column}", "is not a column being tested",
                                  f"use some of: {', '.join(kinds)}")
        return frozenset(self.ignore)


class GatesConfig(Strict):
    f1_min: Fraction
    f1_max_drop: Fraction = 0.05
    drift_share_max: Fraction = 0.5
    drift_columns: list[str] = []
    baseline: Path | None = None


class AlertsConfig(Strict):
    """When `driftgate alert` sends an email. The SMTP server and the addresses come from
    environment variables (CI secrets), never from this file: see driftgate.alerts."""

    send_on: Literal["failure", "always", "schedule"] = "failure"  # schedule: failures of scheduled runs only
    required: bool = False  # true: missing SMTP settings are an error (exit 2), not a warning


class ServingConfig(Strict):
    """The demo and REST API (`driftgate serve`, app.py)."""

    log: str = "logs/predictions.sqlite"  # prediction log: a SQLite file (WAL mode), or a SQLAlchemy URL
    max_upload_mb: Annotated[float, Field(gt=0, le=2048)] = 20.0  # Batch tab: larger files are refused
    max_batch_rows: Annotated[int, Field(gt=0)] = 200_000


class ProjectConfig(Strict):
    """How the UI, the API and the reports speak of this data: nothing about one dataset is
    hard-coded. The class names are data.target.class_names (label 0, label 1)."""

    title: str = Field(default="model", min_length=1, max_length=120)  # page title, report headings
    question: str = Field(default="", max_length=500)  # what the model answers, in one sentence
    row: str = Field(default="row", min_length=1, max_length=40)  # what one row is (singular)
    rows: str = Field(default="rows", min_length=1, max_length=40)  # ... and plural


class Params(Strict):
    project: ProjectConfig = ProjectConfig()
    data: DataConfig
    validation: ValidationConfig = ValidationConfig()
    windows: WindowsConfig
    model: ModelConfig = ModelConfig()
    drift: DriftConfig = DriftConfig()
    gates: GatesConfig
    alerts: AlertsConfig = AlertsConfig()
    serving: ServingConfig = ServingConfig()
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


# --------------------------------------------------------------------------- loading


def _format_error(path: Path, error: dict[str, Any]) -> ConfigError:
    key = ".".join(str(part) for part in error["loc"] if not str(part).startswith("function-"))
    key = re.sub(r"\.(tuple|list|dict)\[.*?\]", "", key)
    got = error.get("input")
    kind = error["type"]
    if kind == "extra_forbidden":
        return ConfigError(f"{path}: {key}", "unknown key", "remove it or fix its spelling (see README: params.yaml)")
    if kind == "missing":
        return ConfigError(f"{path}: {key}", "required key is missing", "add it (see README: params.yaml)")
    shown = repr(got) if not isinstance(got, dict) else "a mapping"
    return ConfigError(f"{path}: {key}", f"{error['msg']} (got {shown})", "fix the value in params.yaml")


def load_params(path: Path | str = DEFAULT_PARAMS) -> Params:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(path, "params file not found", "run from the project root or pass --params PATH")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(path, f"is not valid YAML ({exc})", "fix the syntax; `python -c 'import yaml'` can help locate it") from exc
    if not isinstance(raw, dict):
        raise ConfigError(path, "must be a mapping of sections (data, windows, gates, ...)", "see README: params.yaml")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        errors = [_format_error(path, err) for err in exc.errors()]
        first = errors[0]
        if len(errors) > 1:
            first.problem += f" (and {len(errors) - 1} more: " + "; ".join(e.where.split(": ", 1)[1] for e in errors[1:]) + ")"
        raise first from None


# --------------------------------------------------------------------------- paths


@dataclass(frozen=True)
class PlotFiles:
    """The evaluation's curves and images, in `dir` (reports/plots)."""

    dir: Path

    @property
    def roc(self) -> Path:
        return self.dir / "roc.csv"

    @property
    def prc(self) -> Path:
        return self.dir / "prc.csv"

    @property
    def confusion(self) -> Path:
        return self.dir / "confusion.csv"

    @property
    def roc_pr_png(self) -> Path:
        return self.dir / "roc_pr.png"

    @property
    def confusion_png(self) -> Path:
        return self.dir / "confusion_matrix.png"


@dataclass(frozen=True)
class DriftFiles:
    """What `driftgate drift` and `drift-report` write, in `dir` (reports/drift)."""

    dir: Path

    @property
    def json(self) -> Path:
        return self.dir / "drift.json"

    @property
    def markdown(self) -> Path:
        return self.dir / "drift.md"

    @property
    def png(self) -> Path:
        return self.dir / "drift.png"

    @property
    def evidently(self) -> Path:
        return self.dir / "evidently.html"

    @property
    def reference_summary(self) -> Path:
        return self.dir / "reference.summary.npz"


@dataclass(frozen=True)
class RunLayout:
    """Every file one run writes, under its folder: reports/ for the pipeline, and
    reports/batches/<name>/ for each batch checked with `make run CURRENT=...`."""

    out: Path

    @classmethod
    def for_batch(cls, reports: Path, batch: str) -> RunLayout:
        """The folder of a checked batch: its file name without the suffix, or the window (2013-09)."""
        name = Path(batch).name
        name = name.rsplit(".", 1)[0] if Path(batch).suffix.lower() in {".csv", ".parquet", ".pq", ".sqlite", ".db"} else name
        return cls(reports / "batches" / (re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "batch"))

    @property
    def metrics(self) -> Path:
        return self.out / "metrics.json"

    @property
    def plots(self) -> PlotFiles:
        return PlotFiles(self.out / "plots")

    @property
    def drift(self) -> DriftFiles:
        return DriftFiles(self.out / "drift")

    @property
    def gate(self) -> Path:
        return self.out / "gate.json"

    @property
    def report(self) -> Path:
        return self.out / "report.md"

    @property
    def curves_against(self) -> Path:
        return self.out / "curves_against_main.png"

    @property
    def baseline_metrics(self) -> Path:
        return self.out / "baseline-metrics.json"


def gate_markdown_path(gate_json: Path) -> Path:
    """gate.md is written beside gate.json."""
    return gate_json.with_suffix(".md")


@dataclass(frozen=True)
class Paths:
    """Where every stage reads and writes, relative to the project root."""

    root: Path = Path(".")

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def dataset(self) -> Path:
        return self.artifacts / "dataset.parquet"

    @property
    def model(self) -> Path:
        return self.artifacts / "model.joblib"

    @property
    def model_card(self) -> Path:
        return self.artifacts / "model.json"

    @property
    def validation(self) -> Path:
        return self.reports / "validation.json"

    @property
    def run(self) -> RunLayout:
        """The pipeline's own run (dvc.yaml's outputs)."""
        return RunLayout(self.reports)

    def batch(self, batch: str) -> RunLayout:
        return RunLayout.for_batch(self.reports, batch)

    @property
    def metrics(self) -> Path:
        return self.run.metrics

    @property
    def plots(self) -> Path:
        return self.run.plots.dir

    @property
    def drift_dir(self) -> Path:
        return self.run.drift.dir

    @property
    def gate(self) -> Path:
        return self.run.gate
