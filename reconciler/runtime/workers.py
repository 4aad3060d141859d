"""A bounded pool of worker threads over one `WorkQueue`: each takes a key, processes it, and
marks it done, so at most `concurrency` keys of a queue are in flight and never the same key
twice. `process` must not raise (the daemon's handles every outcome itself); if it does, the
pool logs it and carries on, as controller-runtime recovers a panicking reconcile.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import structlog

from reconciler.runtime.workqueue import WorkQueue

log = structlog.get_logger(__name__)

K = TypeVar("K", bound=Hashable)


class WorkerPool(Generic[K]):
    def __init__(self, queue: WorkQueue[K], process: Callable[[K], None],
                 concurrency: int) -> None:
        if concurrency < 1:
            raise ValueError(f"a worker pool needs at least one worker, got {concurrency}")
        self.queue, self._process, self.concurrency = queue, process, concurrency
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for i in range(self.concurrency):
            thread = threading.Thread(target=self._work, name=f"{self.queue.name}-{i}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

    def _work(self) -> None:
        while True:
            key = self.queue.get()
            if key is None:
                return
            try:
                self._process(key)
            except Exception:
                log.exception("worker failed processing a key", queue=self.queue.name,
                              key=str(key))
            finally:
                self.queue.done(key)

    def shutdown(self, timeout: float) -> bool:
        """Stop handing out keys and wait up to `timeout` seconds for those in flight; whether
        they all finished (a reconcile past its deadline is abandoned: its thread is a daemon
        thread)."""
        self.queue.shutdown()
        finished = self.queue.wait_in_flight(timeout)
        for thread in self._threads:
            thread.join(0.5 if finished else 0.0)
        return finished
