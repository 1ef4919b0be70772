"""params.yaml is validated at start-up: every mistake names the key and what to do."""

from pathlib import Path

import pandas as pd
import pytest
import yaml

from driftgate.config import Window, load_params, parse_window
from driftgate.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


def with_change(tmp_path: Path, dotted: str, value) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    node = params
    *parents, leaf = dotted.split(".")
    for key in parents:
        node = node[key]
    node[leaf] = value
    return write(tmp_path, yaml.safe_dump(params))


def test_shipped_params_load_with_the_documented_defaults():
    params = load_params(ROOT / "params.yaml")
    assert params.windows.current.label == "2013-04"
    assert params.windows.train.label == "2013-01..2013-03"
    assert params.windows.reference_window == params.windows.train
    assert 0 < params.gates.f1_min < 1


def test_wrong_type_names_the_key_and_the_value(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_params(with_change(tmp_path, "gates.f1_min", "high"))
    message = caught.value.message
    assert "gates.f1_min" in message and "'high'" in message and "params.yaml" in message


def test_out_of_range_threshold_names_the_allowed_range(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_params(with_change(tmp_path, "gates.drift_share_max", 1.5))
    assert "gates.drift_share_max" in caught.value.message
    assert "less than or equal to 1" in caught.value.message


def test_unknown_key_is_refused_with_its_name(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_params(with_change(tmp_path, "gates.f1_minimum", 0.5))
    assert "gates.f1_minimum" in caught.value.message and "unknown key" in caught.value.message


def test_missing_required_section_is_named(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    del params["gates"]
    with pytest.raises(ConfigError) as caught:
        load_params(write(tmp_path, yaml.safe_dump(params)))
    assert "gates" in caught.value.message and "missing" in caught.value.message


def test_invalid_yaml_and_missing_file_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(write(tmp_path, "data: [unclosed\n"))
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_params(write(tmp_path, "- a list\n"))


def test_bad_window_and_reversed_window_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="windows.current"):
        load_params(with_change(tmp_path, "windows.current", "April"))
    with pytest.raises(ConfigError, match="must be after start"):
        load_params(with_change(tmp_path, "windows.train", "2013-03..2013-01"))


def test_holdout_fraction_must_leave_rows_on_both_sides(tmp_path):
    with pytest.raises(ConfigError, match="windows.holdout_fraction"):
        load_params(with_change(tmp_path, "windows.holdout_fraction", 1.0))


def test_monotonic_constraint_values_are_limited_to_minus_one_zero_one(tmp_path):
    with pytest.raises(ConfigError, match="model.monotonic.precip"):
        load_params(with_change(tmp_path, "model.monotonic", {"precip": 2}))


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2013-04", "2013-04-01", "2013-05-01"),
        ("2013-01..2013-03", "2013-01-01", "2013-04-01"),
        ("2013-01-05..2013-02-01", "2013-01-05", "2013-02-01"),
        ("2013-12", "2013-12-01", "2014-01-01"),
    ],
)
def test_window_shorthands_are_half_open(text, start, end):
    window = Window.model_validate(text)
    assert (window.start, window.end) == (pd.Timestamp(start), pd.Timestamp(end))


def test_cli_window_errors_name_the_option():
    with pytest.raises(ConfigError) as caught:
        parse_window("summer", "--current")
    assert caught.value.where == "--current"


def test_per_column_drift_tests_are_checked_against_the_tested_columns(tmp_path):
    params = load_params(with_change(tmp_path, "drift.tests", {"carrier": {"test": "ks"}}))
    with pytest.raises(ConfigError, match="drift.tests.carrier.test: ks needs a numeric column"):
        params.drift.overrides({"carrier": "categorical", "temp": "numeric"})
    with pytest.raises(ConfigError, match="drift.tests.carrier: is not a column being tested"):
        params.drift.overrides({"temp": "numeric"})
    with pytest.raises(ConfigError, match="drift.tests.temp.test"):
        load_params(with_change(tmp_path, "drift.tests", {"temp": {"test": "t-test"}}))
    ok = load_params(with_change(tmp_path, "drift.tests", {"temp": {"test": "psi", "threshold": 0.2}}))
    assert ok.drift.overrides({"temp": "numeric"}) == {"temp": ("psi", 0.2)}


# --------------------------------------------------------------------------- windows in rows, and data without a time


@pytest.mark.parametrize(
    ("text", "kind", "start", "end", "label"),
    [
        ("rows 0..8000", "rows", 0, 8000, "rows 0..8000"),
        ("rows 8000..", "rows", 8000, None, "rows 8000.."),
        ("ROWS 10..20", "rows", 10, 20, "rows 10..20"),
        ("0.0..0.8", "fraction", 0.0, 0.8, "rows 0%..80%"),
        ("0..0.6", "fraction", 0.0, 0.6, "rows 0%..60%"),
        ("rows 80%..100%", "fraction", 0.8, 1.0, "rows 80%..100%"),
        ("2013-01..2013-03", "time", pd.Timestamp("2013-01-01"), pd.Timestamp("2013-04-01"), "2013-01..2013-03"),
    ],
)
def test_windows_can_be_rows_or_shares_of_the_rows(text, kind, start, end, label):
    window = parse_window(text)
    assert (window.kind, window.start, window.end, window.label) == (kind, start, end, label)
    assert parse_window(window.label) == window, "a window's label reads back as the same window"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("0..8000", "ambiguous"),
        ("rows 5..2", "end row 2 must be after start row 5"),
        ("rows -1..5", "cannot read 'rows -1..5' as rows"),
        ("0.5..1.5", "from 0.0 to 1.0"),
        ("0.6..0.2", "from 0.0 to 1.0"),
        ("2013-13", "2013-13"),
        ("2013-01-01..", "cannot read"),
    ],
)
def test_bad_windows_say_what_is_wrong(text, problem):
    with pytest.raises(ConfigError) as caught:
        parse_window(text, "--current")
    assert caught.value.where == "--current" and problem in caught.value.problem


def without_time(**data) -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    del params["data"]["time_column"]
    params["data"]["features"]["time_parts"] = []
    params["windows"] = {"train": "rows 0..200000", "current": "0.8..1.0"}
    params["data"].update(data)
    return params


def test_data_without_a_time_column_takes_row_windows(tmp_path):
    params = load_params(write(tmp_path, yaml.safe_dump(without_time())))
    assert params.data.time_column is None and not params.data.has_time
    assert params.windows.train.kind == "rows" and params.windows.current.label == "rows 80%..100%"


@pytest.mark.parametrize(
    ("change", "key", "problem"),
    [
        ({"windows": {"train": "2013-01..2013-03", "current": "0.8..1.0"}}, "windows.train", "is a time window"),
        ({"features": {"time_parts": ["hour"]}}, "data.features.time_parts", "need a time"),
        ({"time_unit": "seconds"}, "data.time_unit", "data.time_column, which is not set"),
        ({"time_from": {"year": "year", "month": "month"}}, "data.time_from", "month and day"),
        ({"time_from": {"year": 2013, "day_of_year": "doy", "month": "month"}}, "data.time_from", "replaces month and day"),
        ({"features": {"numeric": ["distance", "arr_delay"]}}, "data.features.numeric", "the target column"),
        ({"features": {"numeric": ["distance"], "exclude": ["distance"]}}, "data.features.exclude", "feature or excluded"),
        ({"time_column": "time_hour", "time_from": {"year": 2013, "day_of_year": "doy"}}, "data.time_from", "data.time_column"),
        ({"time_column": "time_hour", "time_unit": "seconds", "time_format": "%Y"}, "data.time_format", "keep one"),
        ({"time_column": "time_hour", "time_origin": "2013-01-01"}, "data.time_origin", "needs data.time_unit"),
        ({"time_column": "time_hour", "time_unit": "weeks"}, "data.time_unit", "'weeks'"),
        ({"time_column": "  "}, "data.time_column", "is empty"),
    ],
)
def test_settings_that_do_not_fit_together_are_named(tmp_path, change, key, problem):
    params = without_time()
    for name, value in change.items():
        if name == "windows":
            params["windows"] = value
        elif name == "features":
            params["data"]["features"].update(value)
        else:
            params["data"][name] = value
    with pytest.raises(ConfigError) as caught:
        load_params(write(tmp_path, yaml.safe_dump(params)))
    assert f"params.yaml: {key}" in caught.value.where and problem in caught.value.message, caught.value.message


def test_time_from_and_time_unit_load(tmp_path):
    parts = load_params(write(tmp_path, yaml.safe_dump(without_time(time_from={"year": "year", "month": "month", "day": "day",
                                                                              "hour": "hour"}))))
    assert parts.data.time_columns == ["year", "month", "day", "hour"] and parts.data.has_time
    doy = load_params(write(tmp_path, yaml.safe_dump(without_time(time_from={"year": 2013, "day_of_year": "doy"}))))
    assert doy.data.time_from.parts() == {"year": 2013, "day_of_year": "doy"} and doy.data.time_columns == ["doy"]
    unit = load_params(write(tmp_path, yaml.safe_dump(without_time(time_column="t", time_unit="days", time_origin="2013-01-01"))))
    assert (unit.data.time_unit, unit.data.time_origin) == ("days", "2013-01-01")


# --------------------------------------------------------------------------- the file itself


def test_a_key_given_twice_is_refused_at_any_depth_with_both_lines(tmp_path):
    text = (ROOT / "params.yaml").read_text()
    assert "    column: arr_delay" in text
    nested = text.replace("    column: arr_delay", "    column: arr_delay\n    column: dep_delay", 1)
    with pytest.raises(ConfigError) as caught:
        load_params(write(tmp_path, nested))
    line = next(i for i, text in enumerate(nested.splitlines(), 1) if text.startswith("    column: dep_delay"))
    assert caught.value.where.endswith("params.yaml: data.target.column")
    assert f"given twice, on lines {line - 1} and {line}" in caught.value.problem
    with pytest.raises(ConfigError, match="params.yaml: gates: is given twice"):
        load_params(write(tmp_path, text + "\ngates:\n  f1_min: 0.9\n"))
    with pytest.raises(ConfigError, match=r"drift.tests.dest.test: is given twice, on line \d+\n"):
        load_params(write(tmp_path, text.replace("  tests: {}", "  tests: {dest: {test: psi, test: ks}}")))


def test_yaml_merge_keys_are_not_duplicates(tmp_path):
    text = (ROOT / "params.yaml").read_text().replace("serving:", "x-defaults: &base\n  f1_min: 0.4\nserving:")
    params = yaml.safe_load(text)
    assert "x-defaults" in params  # an unknown key: refused for that, not as a duplicate
    with pytest.raises(ConfigError, match="x-defaults: unknown key"):
        load_params(write(tmp_path, text))


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("utf-16", "UTF-16"),
        (b"\xef\xbb\xbfdata: {}\n", "byte-order mark"),
        (b"project:\n  title: caf\xe9\n", "not UTF-8 text (byte 0xe9 on line 2)"),
        (b"\x00\x01\x02binary", "binary data"),
        (b"data: [unclosed\n", "not valid YAML"),
    ],
)
def test_params_that_are_not_utf8_yaml_text_are_refused_with_the_file_named(tmp_path, content, problem):
    path = tmp_path / "params.yaml"
    path.write_bytes((ROOT / "params.yaml").read_text().encode("utf-16") if content == "utf-16" else content)
    with pytest.raises(ConfigError) as caught:
        load_params(path)
    assert str(path) in caught.value.where and problem in caught.value.problem


def test_several_errors_are_all_counted(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["gates"].update(f1_min=2, drift_share_max=3, f1_max_drop=4)
    params["model"].update(max_iter=0, learning_rate=9, max_leaf_nodes=1, min_samples_leaf=0, threshold=2)
    with pytest.raises(ConfigError) as caught:
        load_params(write(tmp_path, yaml.safe_dump(params)))
    assert "(and 7 more: " in caught.value.problem and " and 1 more)" in caught.value.problem  # 6 named, none dropped silently
