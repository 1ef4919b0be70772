"""Atomic writes and table reading: no half-written file, clear errors naming the file."""

import json

import numpy as np
import pandas as pd
import pytest

from driftgate.errors import DataError, listed
from driftgate.io import atomic_path, check_table, read_json, read_table, write_json


def test_a_failed_write_leaves_the_previous_file_and_no_temp_files(tmp_path):
    target = tmp_path / "metrics.json"
    write_json(target, {"f1": 0.5})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text('{"f1": 0.')
        raise RuntimeError("crash mid-write")
    assert json.loads(target.read_text()) == {"f1": 0.5}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_a_failed_first_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "model.joblib"):
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


# --------------------------------------------------------------------------- what read_table and check_table refuse


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("batch.csv", b"a,b,a\n1,2,3\n", "column name(s) 'a' appear more than once"),
        ("batch.csv", b"a;b;c\n1;2;3\n", "separated by semicolons"),
        ("batch.csv", b"a\tb\n1\t2\n", "separated by tabs"),
        ("batch.csv", b"a,b\n\x00\x01,2\n", "binary data (a NUL byte at offset 4)"),
        ("batch.csv", b"a,b\ncaf\xe9,2\n", "not UTF-8 text (byte 0xe9 at offset 7)"),
        ("batch.csv", b"\xef\xbb\xbfa,b\n1,2\n", "UTF-8 with a byte-order mark"),
        ("batch.csv", "a,b\n1,2\n".encode("utf-16"), "UTF-16"),
        ("batch.csv", b"PAR1\x00\x00", "is a Parquet file, not a CSV"),
        ("batch.csv", b"a,b\n1,2\n3,4,5\n", "cannot be read as a table"),
    ],
)
def test_tables_pandas_would_misread_are_refused_with_the_file_named(tmp_path, name, content, problem):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError) as caught:
        read_table(path)
    assert caught.value.where == str(path) and problem in caught.value.problem, caught.value.message


def test_parquet_with_repeated_column_names_is_refused(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table([pa.array([1, 2]), pa.array([3, 4])], names=["x", "x"]), tmp_path / "t.parquet")
    with pytest.raises(DataError, match="column name\\(s\\) 'x' appear more than once"):
        read_table(tmp_path / "t.parquet")


def test_a_column_named_like_a_renamed_duplicate_is_kept(tmp_path):
    (tmp_path / "t.csv").write_text("a,a.1\n1,2\n")
    assert list(read_table(tmp_path / "t.csv").columns) == ["a", "a.1"]


def test_check_table_names_every_problem_and_coerces_nothing():
    frame = pd.DataFrame({"x": [1.0, np.inf, -np.inf], "y": ["1", "ten", None], "flag": [True, False, True],
                          "blank": [None, None, None], "plan": ["a", "b", "c"]})
    with pytest.raises(DataError) as caught:
        check_table(frame, "batch.csv", numeric_columns=["x", "y", "flag", "plan"])
    problem = caught.value.problem
    assert caught.value.where == "batch.csv"
    for part in ("column 'blank' is entirely empty", "column 'x' holds 2 infinite value(s)",
                 "column 'y' is numeric but holds text in 1 row(s), e.g. 'ten'", "column 'flag' is numeric but holds true/false",
                 "column 'plan' is numeric but holds text in 3 row(s), e.g. 'a', 'b', 'c'"):
        assert part in problem
    assert "replace +-inf" in caught.value.hint and "data.features.categorical" in caught.value.hint
    assert frame["y"].tolist() == ["1", "ten", None], "nothing coerced"
    assert check_table(frame[["plan"]], "batch.csv", numeric_columns=[]) is not None


def test_check_table_lists_many_problems_with_a_count():
    frame = pd.DataFrame({f"c{i}": [np.nan, np.nan] for i in range(10)})
    with pytest.raises(DataError) as caught:
        check_table(frame, "wide.csv")
    assert caught.value.problem.endswith("column 'c5' is entirely empty and 4 more")
    assert check_table(frame, "wide.csv", columns=[]) is frame


def test_check_table_refuses_repeated_names_in_a_frame():
    frame = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(DataError, match="'a' appear more than once"):
        check_table(frame, "joined")


def test_listed_says_how_many_it_leaves_out():
    assert listed(["a", "b"]) == "a, b"
    assert listed("abcdefgh", limit=3) == "a, b, c and 5 more"
    assert listed(["x", "y"], quote=True, sep="; ") == "'x'; 'y'"
    assert listed([]) == ""
