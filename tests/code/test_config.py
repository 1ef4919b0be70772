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
