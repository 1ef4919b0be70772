"""Group commit in the prediction log: the rows of requests that arrive while a commit is in
progress are committed together in the next transaction, each request returns only once its own
rows are committed, and a failed commit fails every request of its group and keeps none of their
rows. On SQLite and on a real PostgreSQL: another connection holds the write lock, so the first
request's commit waits and the others pile up behind it, until the lock is released."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager

from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import SQLAlchemyError

from driftgate.store.predictions import PredictionLog

pytest_plugins = ["tests.postgres"]


@contextmanager
def write_lock(url: str):
    """Another connection holding the predictions table's write lock until the block ends."""
    if url.startswith("sqlite"):
        connection = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            connection.execute("ROLLBACK")
            connection.close()
        return
    engine = create_engine(url)
    with engine.connect() as connection:
        transaction = connection.begin()
        connection.execute(text("LOCK TABLE predictions IN EXCLUSIVE MODE"))
        try:
            yield
        finally:
            transaction.rollback()
    engine.dispose()


class Inserts:
    """The rows of each INSERT the log sends, and an event set when the first one starts."""

    def __init__(self, log: PredictionLog) -> None:
        self.sizes: list[int] = []
        self.started = threading.Event()
        self.commits = 0
        event.listen(log.engine, "before_cursor_execute", self._before)
        event.listen(log.engine, "commit", self._commit)

    def _before(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO PREDICTIONS"):
            self.sizes.append(len(parameters) if executemany else 1)
            self.started.set()

    def _commit(self, conn) -> None:
        self.commits += 1


def one(log: PredictionLog, source: str = "api") -> str:
    request_id = str(uuid.uuid4())
    log.append([{"distance": 1000.0}], [{"probability": 0.25, "decision": "on time"}], request_id, source, "v1")
    return request_id


def until(condition, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.01)


def logged_ids(url: str) -> set[str]:
    engine = create_engine(url)
    with engine.connect() as connection:
        found = {row[0] for row in connection.execute(text("SELECT request_id FROM predictions"))}
    engine.dispose()
    return found


def test_requests_arriving_during_a_commit_commit_together_and_each_returns_only_once_its_rows_are_kept(store_url):
    log = PredictionLog(store_url)
    inserts = Inserts(log)
    with ThreadPoolExecutor(max_workers=12) as pool:
        with write_lock(log.url):
            first = pool.submit(one, log)
            until(inserts.started.is_set, "the first request's insert")
            others = [pool.submit(one, log) for _ in range(11)]
            until(lambda: log.waiting() == 11, "11 requests waiting for the commit in progress")
            time.sleep(0.2)
            assert not any(f.done() for f in [first, *others]), "a request returned before its rows were committed"
            assert logged_ids(log.url) == set()
        ids = [f.result(timeout=60) for f in [first, *others]]
    assert inserts.sizes == [1, 11]  # the first request's own commit, then one for the 11 that waited
    assert inserts.commits == 2
    assert logged_ids(log.url) == set(ids)
    assert log.waiting() == 0


def test_a_failed_commit_fails_every_request_of_its_group_keeps_none_of_their_rows_and_the_next_request_commits(store_url):
    log = PredictionLog(store_url)
    # A row the database refuses (a real constraint, not a stand-in): its group's commit fails.
    with log.engine.begin() as connection:
        if log.url.startswith("sqlite"):
            connection.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON predictions WHEN NEW.source = 'refused' "
                                    "BEGIN SELECT RAISE(ABORT, 'refused row'); END"))
        else:
            connection.execute(text("ALTER TABLE predictions ADD CONSTRAINT refuse CHECK (source <> 'refused')"))
    inserts = Inserts(log)
    with ThreadPoolExecutor(max_workers=8) as pool:
        with write_lock(log.url):
            first = pool.submit(one, log)
            until(inserts.started.is_set, "the first request's insert")
            group = [pool.submit(one, log) for _ in range(6)] + [pool.submit(one, log, "refused")]
            until(lambda: log.waiting() == 7, "7 requests waiting for the commit in progress")
        wait([first, *group], timeout=60)
    kept = first.result()
    errors = [f.exception() for f in group]
    assert all(isinstance(e, SQLAlchemyError) for e in errors), errors
    assert all("refuse" in str(getattr(e, "orig", e)) for e in errors), [str(e) for e in errors]
    assert logged_ids(log.url) == {kept}  # none of the failed group's rows, the first request's row kept
    after = one(log)  # the log goes on: the next request commits on its own
    assert logged_ids(log.url) == {kept, after}
    assert inserts.sizes == [1, 7, 1]
