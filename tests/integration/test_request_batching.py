"""The REST route's small requests that arrive together: scored in one model call and logged in one
transaction by one thread, each answered with its own predictions once its rows are committed; a
batch whose commit fails answers 503 to each of its requests and keeps none of their rows. The
real app (in process, on the test's event loop) and a real SQLite log, whose write lock another
connection holds so that the requests pile up behind the first one."""

from __future__ import annotations

import asyncio
import time

import httpx
import pandas as pd
import pytest
from sqlalchemy import text

from driftgate.serving.api import SMALL, create_api
from tests.integration.test_group_commit import Inserts, write_lock
from tests.integration.test_serving import RECORD, make_service


@pytest.fixture(scope="module")
def project(served_project):
    return served_project


async def until(condition, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        await asyncio.sleep(0.01)


def client_of(service) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_api(service)), base_url="http://driftgate")


def logged(service) -> pd.DataFrame:
    return service.log.frame()


@pytest.mark.parametrize("fast", [True, False], ids=["treelite", "scikit-learn"])
def test_requests_arriving_together_are_scored_and_logged_together_and_each_gets_its_own_answer(project, tmp_path, fast):
    service = make_service(project, tmp_path, fast=fast)
    inserts = Inserts(service.log)
    bodies = [{**RECORD, "x1": (i - 10) / 4, "x2": float(i % 5)} for i in range(20)]

    async def scenario():
        async with client_of(service) as client:
            with write_lock(service.log.url):
                first = asyncio.create_task(client.post("/predict", json=bodies[0]))
                await until(lambda: inserts.sizes, "the first request's insert")
                rest = [asyncio.create_task(client.post("/predict", json=body)) for body in bodies[1:]]
                await until(lambda: service._requests.waiting() == 19, "19 requests waiting for the batch in progress")
                await asyncio.sleep(0.2)
                assert not any(task.done() for task in [first, *rest]), "a request was answered before its rows were committed"
            return [await task for task in [first, *rest]]

    responses = asyncio.run(scenario())
    assert [r.status_code for r in responses] == [200] * 20
    assert inserts.sizes == [1, 19] and inserts.commits == 2  # the first alone, then the 19 that waited, in one transaction
    model = service.model
    expected = model.pipeline.predict_proba(pd.DataFrame(bodies)[model.schema.columns])[:, 1]
    got = [r.json()["predictions"][0]["probability"] for r in responses]
    assert got == pytest.approx(list(expected), abs=1e-6)  # each request its own record's score, none swapped
    log = logged(service).set_index("request_id")
    for body, response in zip(bodies, responses):
        row = log.loc[response.json()["request_id"]]
        assert row["x1"] == body["x1"] and row["probability"] == pytest.approx(response.json()["predictions"][0]["probability"])


def test_a_batch_whose_commit_fails_answers_503_to_each_of_its_requests_and_keeps_none_of_their_rows(project, tmp_path):
    service = make_service(project, tmp_path)
    with service.log.engine.begin() as connection:  # a row the database refuses: its batch's commit fails
        connection.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON predictions "
                                "WHEN json_extract(NEW.inputs, '$.x1') = 42.0 BEGIN SELECT RAISE(ABORT, 'refused row'); END"))
    inserts = Inserts(service.log)
    group = [{**RECORD, "x1": float(i)} for i in range(5)] + [{**RECORD, "x1": 42.0}]

    async def scenario():
        async with client_of(service) as client:
            with write_lock(service.log.url):
                first = asyncio.create_task(client.post("/predict", json=RECORD))
                await until(lambda: inserts.sizes, "the first request's insert")
                rest = [asyncio.create_task(client.post("/predict", json=body)) for body in group]
                await until(lambda: service._requests.waiting() == len(group), "the batch waiting")
            answered = [await task for task in [first, *rest]]
            after = await client.post("/predict", json=RECORD)  # the server goes on
            return answered, after

    (first, *failed), after = asyncio.run(scenario())
    assert first.status_code == 200 and after.status_code == 200
    assert [r.status_code for r in failed] == [503] * len(group)
    for response in failed:
        detail = response.json()["detail"][0]
        assert detail["field"] == "store" and "refused row" in detail["message"] and "serving.log" in detail["message"]
    assert sorted(logged(service)["request_id"]) == sorted([first.json()["request_id"], after.json()["request_id"]])


def test_a_list_longer_than_the_small_limit_is_scored_in_a_worker_thread_as_one_request(project, tmp_path):
    service = make_service(project, tmp_path)
    body = [{**RECORD, "x1": i / 10} for i in range(SMALL + 1)]

    async def scenario():
        async with client_of(service) as client:
            return await client.post("/predict", json=body)

    response = asyncio.run(scenario())
    assert response.status_code == 200
    assert len(response.json()["predictions"]) == SMALL + 1
    assert service._requests is None  # it did not go through the request queue
    log = logged(service)
    assert len(log) == SMALL + 1 and set(log["request_id"]) == {response.json()["request_id"]}
    assert list(log["row"]) == list(range(SMALL + 1))
