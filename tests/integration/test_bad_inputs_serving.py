"""A corpus of bad inputs to the served model, one test id each: REST /predict bodies and Batch
uploads through the Gradio app's own HTTP API, on the real app (API and UI) of a small trained
project whose params.yaml limits x2 to [0, 10] and plan to basic, pro and team.

Each case checks the answer (the status code, or the Batch tab's refusal) names the field or
column, that nothing reached the prediction log, and that the server logged no traceback.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient

from driftgate.store.predictions import PredictionLog
from tests.conftest import gradio_call, make_tiny_frame

MAX_ROWS = 50  # serving.max_batch_rows of the app under test
MAX_MB = 0.05  # serving.max_upload_mb: about 52 KB
GOOD = {"x1": 0.5, "x2": 3.0, "plan": "pro"}


@pytest.fixture(scope="module")
def app(served_project, tmp_path_factory):
    """The whole app, as `python app.py` builds it, with small caps so that going over them is cheap."""
    from driftgate.serving.ui import create_app

    folder = tmp_path_factory.mktemp("bad-inputs")
    params = yaml.safe_load((served_project / "params.yaml").read_text())
    params["serving"] = {"max_batch_rows": MAX_ROWS, "max_upload_mb": MAX_MB, "log": str(folder / "log.sqlite")}
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    application = create_app(folder / "params.yaml", served_project / "artifacts" / "model.joblib", root=served_project)
    with TestClient(application, raise_server_exceptions=False) as client:  # a crash shows as a 500, as a user sees it
        yield client, PredictionLog(folder / "log.sqlite"), folder


@pytest.fixture
def quiet(caplog, capfd):
    """Everything the server logs or prints during one case; the case fails on any traceback in it."""
    caplog.set_level(logging.DEBUG)
    yield
    printed = capfd.readouterr()
    output = caplog.text + printed.out + printed.err
    assert "Traceback" not in output, output[-3000:]
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records if r.exc_info]


# --------------------------------------------------------------------------- REST /predict


@dataclass
class Bad:
    """One bad request: a JSON value (`json`) or raw bytes (`body`) with its content type."""

    status: int
    field: str
    kind: str
    json: object = None
    body: bytes | None = None
    content_type: str | None = "application/json"
    message: str = ""  # a part of the message to find


REST = {
    "missing field": Bad(422, "x1", "missing", json={"x2": 3.0, "plan": "pro"}, message="required"),
    "empty object": Bad(422, "x1", "missing", json={}),
    "extra field": Bad(422, "age", "extra_forbidden", json={**GOOD, "age": 40}, message="not a feature of the model"),
    "list for a number": Bad(422, "x1", "not_a_number", json={**GOOD, "x1": [1]}, message="got a list"),
    "object for a number": Bad(422, "x1", "not_a_number", json={**GOOD, "x1": {"value": 1}}, message="got an object"),
    "text for a number": Bad(422, "x1", "not_a_number", json={**GOOD, "x1": "high"}, message="got text 'high'"),
    "number as text": Bad(422, "x2", "not_a_number", json={**GOOD, "x2": "3.0"}, message="got text '3.0'"),
    "empty text for a number": Bad(422, "x2", "not_a_number", json={**GOOD, "x2": ""}),
    "true for a number": Bad(422, "x1", "not_a_number", json={**GOOD, "x1": True}, message="got a boolean true"),
    "false for a number": Bad(422, "x2", "not_a_number", json={**GOOD, "x2": False}, message="got a boolean false"),
    "number for a category": Bad(422, "plan", "not_a_category", json={**GOOD, "plan": 5}, message="got int 5"),
    "null for a category": Bad(422, "plan", "not_a_category", json={**GOOD, "plan": None}, message="got null"),
    "true for a category": Bad(422, "plan", "not_a_category", json={**GOOD, "plan": True}, message="got a boolean true"),
    "list for a category": Bad(422, "plan", "not_a_category", json={**GOOD, "plan": ["pro"]}),
    "NaN literal": Bad(422, "x1", "finite_number", body=b'{"x1": NaN, "x2": 3.0, "plan": "pro"}', message="NaN and infinity"),
    "Infinity literal": Bad(422, "x2", "finite_number", body=b'{"x1": 0.5, "x2": Infinity, "plan": "pro"}'),
    "-Infinity literal": Bad(422, "x1", "finite_number", body=b'{"x1": -Infinity, "x2": 3.0, "plan": "pro"}'),
    "number too large for a float": Bad(422, "x1", "finite_number", body=b'{"x1": 1e400, "x2": 3.0, "plan": "pro"}'),
    "integer too large for a float": Bad(422, "x1", "too_large", body=b'{"x1": 1' + b"0" * 400 + b', "x2": 3.0, "plan": "pro"}',
                                         message="too large"),
    "huge number out of range": Bad(422, "x2", "out_of_range", json={**GOOD, "x2": 1e300},
                                    message="1e+300 is outside the allowed range [0, 10] (validation.ranges in params.yaml)"),
    "below the range": Bad(422, "x2", "out_of_range", json={**GOOD, "x2": -0.5}, message="-0.5 is outside the allowed range [0, 10]"),
    "just above the range": Bad(422, "x2", "out_of_range", json={**GOOD, "x2": 10.001}),
    "category not allowed": Bad(422, "plan", "not_allowed", json={**GOOD, "plan": "enterprise"},
                                message="'enterprise' is not allowed: use one of basic, pro, team (validation.allowed in params.yaml)"),
    "category in the wrong case": Bad(422, "plan", "not_allowed", json={**GOOD, "plan": "PRO"}),
    "empty category": Bad(422, "plan", "not_allowed", json={**GOOD, "plan": ""}),
    "control characters for a category": Bad(422, "plan", "not_allowed", json={**GOOD, "plan": "pro\u0000"}),
    "empty list": Bad(422, "body", "too_short", json=[], message="an empty list"),
    "bad record deep in a list": Bad(422, "2.x2", "out_of_range", json=[GOOD, GOOD, {**GOOD, "x2": 99}]),
    "list of numbers": Bad(422, "0", "model_type", json=[1, 2], message="got int"),
    "list of lists": Bad(422, "0", "model_type", json=[[GOOD]], message="got a list"),
    "a string body": Bad(422, "body", "model_type", json="hello", message="got text"),
    "a number body": Bad(422, "body", "model_type", json=42),
    "a null body": Bad(422, "body", "model_type", body=b"null", message="got null"),
    "over max rows": Bad(422, "body", "too_long", json=[GOOD] * (MAX_ROWS + 1),
                         message=f"{MAX_ROWS + 1} records; at most {MAX_ROWS} per request (serving.max_batch_rows in params.yaml)"),
    "over the size cap": Bad(413, "body", "too_large", body=json.dumps([{**GOOD, "pad": "x" * 1000}] * 60).encode(),
                             message="serving.max_upload_mb"),
    "malformed JSON": Bad(422, "body", "json_invalid", body=b'{"x1": 0.5, "x2": 3.0, "plan": ', message="not valid JSON"),
    "trailing comma": Bad(422, "body", "json_invalid", body=b'{"x1": 0.5, "x2": 3.0, "plan": "pro",}'),
    "single quotes": Bad(422, "body", "json_invalid", body=b"{'x1': 0.5, 'x2': 3.0, 'plan': 'pro'}"),
    "not JSON at all": Bad(422, "body", "json_invalid", body=b"x1=0.5&x2=3&plan=pro"),
    "empty body": Bad(422, "body", "missing", body=b"", message="the body is empty"),
    "invalid UTF-8": Bad(400, "body", "unreadable_body", body=b'{"x1": 0.5, "x2": 3.0, "plan": "\xff\xfe"}', message="UTF-8"),
    "plain text content type": Bad(415, "body", "unsupported_media_type", body=json.dumps(GOOD).encode(), content_type="text/plain",
                                   message="got content-type text/plain"),
    "form content type": Bad(415, "body", "unsupported_media_type", body=b"x1=0.5", content_type="application/x-www-form-urlencoded"),
    "no content type": Bad(415, "body", "unsupported_media_type", body=json.dumps(GOOD).encode(), content_type=None,
                           message="got no content-type"),
}


@pytest.mark.parametrize("case", list(REST))
def test_bad_requests_get_a_clear_answer_naming_the_field_and_nothing_is_logged(app, quiet, case):
    client, log, _ = app
    bad = REST[case]
    before = log.count()
    headers = {"content-type": bad.content_type} if bad.content_type else {}
    content = bad.body if bad.body is not None else json.dumps(bad.json).encode()
    response = client.post("/predict", content=content, headers=headers)
    assert response.status_code == bad.status, response.text
    [error, *_] = response.json()["detail"]
    assert (error["field"], error["type"]) == (bad.field, bad.kind), error
    assert bad.message in error["message"], error
    assert log.count() == before


def test_the_server_answers_a_good_request_after_every_bad_one(app):
    client, log, _ = app
    before = log.count()
    response = client.post("/predict", json=[GOOD, {**GOOD, "x2": 10}])
    assert response.status_code == 200 and log.count() == before + 2


# --------------------------------------------------------------------------- Batch uploads


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def _parquet(frame: pd.DataFrame) -> bytes:
    import io

    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    return buffer.getvalue()


def _rows(n: int = 20, **columns) -> pd.DataFrame:
    frame = make_tiny_frame(n, seed=5)[["x1", "x2", "plan"]]
    return frame.assign(**columns)


GOOD_CSV = _csv(_rows())
TEXT_IN_NUMBERS = _rows().astype({"x1": object})
TEXT_IN_NUMBERS.loc[3, "x1"] = "about 3"  # ("n/a" is read as a missing value, which is fine)

BATCHES = {  # id: (file name, content, what the refusal must say)
    "empty file": ("empty.csv", b"", "Cannot read empty.csv"),
    "only whitespace": ("blank.csv", b"\n\n  \n", "Cannot read blank.csv"),
    "header only": ("header.csv", b"x1,x2,plan\n", "Cannot read header.csv:** file has a header but no rows"),
    "binary garbage as CSV": ("garbage.csv", bytes(range(256)) * 20, "garbage.csv"),
    "binary garbage as Parquet": ("garbage.parquet", b"\x00\x01not parquet at all" * 10, "Cannot read garbage.parquet"),
    "gzip bytes named .csv": ("packed.csv", __import__("gzip").compress(GOOD_CSV), "packed.csv"),
    "Latin-1 text": ("latin.csv", "x1,x2,plan\n0.5,3.0,pr\u00f6\n".encode("latin-1"), "latin.csv"),
    "malformed CSV": ("broken.csv", b'x1,x2,plan\n0.5,"3.0\n', "Cannot read broken.csv"),
    "ragged rows": ("ragged.csv", b"x1,x2,plan\n0.5,3.0,pro\n0.5,3.0,pro,extra,more\n", "ragged.csv"),
    "semicolon-separated": ("semicolons.csv", b"x1;x2;plan\n0.5;3.0;pro\n", "it looks separated by semicolons, not commas"),
    "none of the model's columns": ("other.csv", b"a,b\n1,2\n", "other.csv has none of the model's columns"),
    "a missing column": ("no_x2.csv", _csv(_rows().drop(columns=["x2"])), "missing column(s): x2"),
    "duplicate column names": ("twice.csv", b"x1,x2,x1,plan\n0.5,3.0,0.7,pro\n", "column name(s) 'x1' appear more than once"),
    "text in a number column": ("text.csv", _csv(TEXT_IN_NUMBERS), "column 'x1' has 1 value(s) that are not numbers, e.g. 'about 3'"),
    "booleans in a number column": ("bools.csv", _csv(_rows(x1=True)), "column 'x1' holds true/false values, not numbers"),
    "mixed booleans and numbers": ("mixed.csv", b"x1,x2,plan\n0.5,3.0,pro\ntrue,3.0,pro\n", "column 'x1' has 1 value(s) that are not numbers"),
    "booleans in a Parquet number column": ("bools.parquet", _parquet(_rows(x2=False)), "column 'x2' holds true/false values"),
    "infinities": ("inf.csv", b"x1,x2,plan\ninf,3.0,pro\n-inf,3.0,pro\n0.5,Infinity,pro\n", "column 'x1' has 2 infinite value(s)"),
    "numbers too large for a float": ("huge.csv", b"x1,x2,plan\n1e400,3.0,pro\n", "column 'x1' has 1 number(s) too large to use, e.g. '1e400'"),
    "an empty number column": ("hollow.csv", b"x1,x2,plan\n,3.0,pro\n,4.0,team\n", "column 'x1' has no values"),
    "an empty category column": ("no_plans.csv", b"x1,x2,plan\n0.5,3.0,\n0.7,4.0,\n", "column 'plan' has no values"),
    "out of range": ("range.csv", _csv(_rows(x2=50.0)), "column 'x2' has 20 value(s) outside the allowed range [0, 10]"),
    "category not allowed": ("plans.csv", _csv(_rows(plan="enterprise")),
                             "column 'plan' has 20 value(s) that are not allowed (validation.allowed in params.yaml: basic, pro, team)"),
    "over the row cap": ("long.csv", _csv(_rows(MAX_ROWS + 10)), f"long.csv has {MAX_ROWS + 10} rows**, over serving.max_batch_rows ({MAX_ROWS})"),
    "not a table format": ("batch.txt", GOOD_CSV, "batch.txt is not a CSV or Parquet file"),
    "no suffix": ("batch", GOOD_CSV, "batch is not a CSV or Parquet file"),
}


def _upload(client: TestClient, name: str, content: bytes):
    return client.post("/gradio_api/upload", files={"files": (name, content, "application/octet-stream")})


def _score_batch(client: TestClient, uploaded_path: str, name: str) -> list:
    return gradio_call(client, "batch", [{"path": uploaded_path, "orig_name": name, "meta": {"_type": "gradio.FileData"}}])


@pytest.mark.parametrize("case", list(BATCHES))
def test_bad_uploads_are_refused_naming_the_column_and_nothing_is_logged(app, quiet, case):
    client, log, _ = app
    name, content, says = BATCHES[case]
    before = log.count()
    uploaded = _upload(client, name, content)
    assert uploaded.status_code == 200, uploaded.text
    status, download, table, _image = _score_batch(client, uploaded.json()[0], name)
    assert says in status, status
    assert download is None and log.count() == before
    assert table["headers"][:1] == ["column"]  # the empty drift table keeps its headers


def test_an_upload_over_the_size_cap_is_refused_before_it_reaches_the_disk(app, quiet):
    client, log, _ = app
    before = log.count()
    response = _upload(client, "big.csv", b"x1,x2,plan\n" + b"0.5,3.0,pro\n" * 6000)  # about 72 KB
    assert response.status_code == 413, response.text
    assert "big.csv" in response.text or "size" in response.text.lower()
    assert log.count() == before


def test_no_file_chosen_is_a_message_not_an_error(app, quiet):
    client, log, _ = app
    status, download, _table, _image = gradio_call(client, "batch", [None])
    assert status == "**Choose a file first.**" and download is None


def test_a_good_upload_after_the_bad_ones_is_scored_and_logged(app, quiet):
    client, log, _ = app
    before = log.count()
    uploaded = _upload(client, "good.csv", GOOD_CSV)
    status, download, _table, _image = _score_batch(client, uploaded.json()[0], "good.csv")
    assert "Scored **20" in status and download is not None, status
    assert log.count() == before + 20


def test_the_corpus_has_at_least_45_cases():
    assert len(REST) + len(BATCHES) >= 45
