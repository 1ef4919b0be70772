"""Atomic writes and table reading: no half-written file, clear errors naming the file."""

import json

import pandas as pd
import pytest

from driftgate.errors import DataError
from driftgate.io import atomic_path, read_json, read_table, write_json


def test_a_failed_write_leaves_the_previous_file_and_no_temp_files(tmp_path):
    target = tmp_path / "metrics.json"
    write_json(target, {"f1": 0.5})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text('{"f1": 0.')
            raise RuntimeError("crash mid-write")
    assert json.loads(target.read_text()) == {"f1": 0.5}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_a_failed_first_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "model.joblib"):
            raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []


def test_nan_is_written_as_null_so_readers_fail_closed(tmp_path):
    write_json(tmp_path / "m.json", {"f1": float("nan"), "nested": [float("inf")]})
    assert json.loads((tmp_path / "m.json").read_text()) == {"f1": None, "nested": [None]}


@pytest.mark.parametrize(
    ("content", "problem"),
    [(None, "file not found"), ("", "file is empty"), ("a,b\n", "no rows"), ("\n\n", "no columns")],
)
def test_unusable_tables_name_the_file_and_the_problem(tmp_path, content, problem):
    path = tmp_path / "batch.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(DataError) as caught:
        read_table(path)
    assert str(path) in caught.value.message and problem in caught.value.message


def test_corrupt_parquet_is_a_data_error(tmp_path):
    path = tmp_path / "batch.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataError, match="cannot be read as a table"):
        read_table(path)


def test_parquet_and_csv_round_trip(tmp_path):
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    frame.to_parquet(tmp_path / "t.parquet")
    frame.to_csv(tmp_path / "t.csv", index=False)
    pd.testing.assert_frame_equal(read_table(tmp_path / "t.parquet"), frame)
    pd.testing.assert_frame_equal(read_table(tmp_path / "t.csv"), frame)


def test_read_json_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_json(tmp_path / "metrics.json", "metrics file")
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(DataError, match="not valid JSON"):
        read_json(tmp_path / "bad.json")
