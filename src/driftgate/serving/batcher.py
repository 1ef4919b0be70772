"""Request batching for models served by scikit-learn: requests that arrive together, scored in one call."""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future

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
