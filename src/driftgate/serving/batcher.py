"""Request batching for models served by scikit-learn: requests that arrive together, scored in one call."""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from contextlib import suppress

import numpy as np
import pandas as pd

from driftgate.serving.model import ServedModel


class Batcher:
    """For models served by scikit-learn (no fast scorer): scores the requests that arrive
    together in one call. A batch of 200 rows costs about what one row costs (the per-call
    overhead dominates), so under load the server keeps up instead of queueing. A request
    waits at most for the call in progress."""

    def __init__(self, model: ServedModel, max_rows: int = 1024) -> None:
        self.model, self.max_rows = model, max_rows
        self.pending: queue.Queue = queue.Queue()
        threading.Thread(target=self._run, name="driftgate-batcher", daemon=True).start()

    def score(self, frame: pd.DataFrame) -> np.ndarray:
        future: Future = Future()
        self.pending.put((frame, future))
        return future.result()

    def _run(self) -> None:
        while True:
            batch = [self.pending.get()]
            rows = len(batch[0][0])
            while rows < self.max_rows:
                try:
                    item = self.pending.get_nowait()
                except queue.Empty:
                    break
                batch.append(item)
                rows += len(item[0])
            try:
                frames = [frame for frame, _ in batch]
                scores = self.model.score(frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True))
            except Exception as exc:  # each waiting request gets the error, the batcher keeps running
                for _, future in batch:
                    future.set_exception(exc)
                continue
            start = 0
            for frame, future in batch:
                future.set_result(scores[start:start + len(frame)])
                start += len(frame)


class RequestQueue:
    """For the REST route's small requests: the requests that arrive together are scored and
    logged by one thread, in one model call and one commit, and each request's coroutine awaits
    its own answer on the event loop. Against a thread-pool hop per request, under load the
    server makes one hop, one model call and one transaction per batch; alone, a request costs
    what it did. Each request still returns only once its rows are committed.

    `handle(items)` does a batch's work: it gets the items, in arrival order, and returns an
    outcome per item, its result or the exception that item gets; if it raises, every item of the
    batch gets that error."""

    def __init__(self, handle, max_items: int = 256) -> None:
        self.handle, self.max_items = handle, max_items
        self.pending: queue.Queue = queue.Queue()
        threading.Thread(target=self._run, name="driftgate-requests", daemon=True).start()

    async def submit(self, item):
        """The item's outcome: its result, or its exception raised here."""
        import asyncio

        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.pending.put((item, loop, future))
        return await future

    def waiting(self) -> int:
        """Requests waiting for the batch in progress to end (they make the next batch)."""
        return self.pending.qsize()

    def _run(self) -> None:
        while True:
            batch = [self.pending.get()]
            while len(batch) < self.max_items:
                try:
                    batch.append(self.pending.get_nowait())
                except queue.Empty:
                    break
            try:
                outcomes = list(self.handle([item for item, _, _ in batch]))
            except Exception as exc:  # noqa: BLE001 - handed to the requests, the thread keeps running
                outcomes = [exc] * len(batch)
            for (_, loop, future), outcome in zip(batch, outcomes, strict=True):
                with suppress(RuntimeError):  # that request's event loop has closed: nobody waits for it
                    loop.call_soon_threadsafe(_settle, future, outcome)


def _settle(future, outcome) -> None:
    if future.cancelled():  # the client left
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
