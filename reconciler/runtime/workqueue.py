"""A work queue with controller-runtime's semantics (client-go's rate-limiting workqueue).

- Keys are deduplicated: a key added while it waits is still one item.
- A key is handed to one worker at a time: added again while it is processed, it is marked
  dirty and queued once `done` is called for it, so never two reconciles of the same object
  run at once and none is lost.
- Ready keys are served first in, first out; a key that keeps failing goes to the delay heap
  for its backoff (`add_rate_limited`), so it cannot starve the others.
- Delayed adds (`add_after`, requeue-after) wait in a heap on the queue's clock (the
  environment's: virtual in the simulator) until `pump` finds them due. A key handed out loses
  its pending delayed add: its reconcile decides anew when it runs next.
- `shutdown` stops handing out keys (`get` returns None) and ignores new adds; the keys in
  flight finish, and `wait_in_flight` waits for them.

Time: `now` is the clock delays are measured on; `monotonic` (real time) measures the metrics
(queue latency, work duration, unfinished work). Both are injected, so tests never sleep.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, Protocol, TypeVar

from reconciler.runtime.ratelimit import RateLimiter

K = TypeVar("K", bound=Hashable)


class QueueMetrics(Protocol):
    """What a queue reports as it works (`workqueue_*` in controller-runtime)."""

    def added(self) -> None: ...

    def depth(self, value: int) -> None: ...

    def queued_for(self, seconds: float) -> None: ...

    def worked_for(self, seconds: float) -> None: ...

    def retried(self) -> None: ...


class _NoMetrics:
    def added(self) -> None: pass

    def depth(self, value: int) -> None: pass

    def queued_for(self, seconds: float) -> None: pass

    def worked_for(self, seconds: float) -> None: pass

    def retried(self) -> None: pass


class WorkQueue(Generic[K]):
    def __init__(
        self,
        name: str,
        now: Callable[[], float],
        limiter: RateLimiter,
        metrics: QueueMetrics | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._now, self._monotonic = now, monotonic
        self.limiter = limiter
        self._metrics: QueueMetrics = metrics or _NoMetrics()
        self._cond = threading.Condition(threading.Lock())
        self._ready: deque[K] = deque()
        self._dirty: set[K] = set()
        self._processing: dict[K, float] = {}  # key -> monotonic time it was handed out
        self._added_at: dict[K, float] = {}  # key -> monotonic time it became ready
        self._heap: list[tuple[float, int, K]] = []
        self._waiting: dict[K, float] = {}  # key -> due (queue clock) of its delayed add
        self._seq = itertools.count()
        self._shutting_down = False

    # --- adding ---------------------------------------------------------------------------

    def add(self, key: K) -> None:
        with self._cond:
            self._add(key)

    def _add(self, key: K) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._metrics.added()
        self._dirty.add(key)
        if key in self._processing:
            return  # queued again by `done`
        self._ready.append(key)
        self._added_at[key] = self._monotonic()
        self._metrics.depth(len(self._ready))
        self._cond.notify()

    def add_after(self, key: K, seconds: float) -> None:
        """Add `key` once `seconds` of the queue's clock have passed (at once when <= 0); an
        earlier pending delayed add of the same key wins."""
        if seconds <= 0:
            self.add(key)
            return
        with self._cond:
            if self._shutting_down:
                return
            due = self._now() + seconds
            current = self._waiting.get(key)
            if current is not None and current <= due:
                return
            self._waiting[key] = due
            heapq.heappush(self._heap, (due, next(self._seq), key))

    def add_rate_limited(self, key: K) -> float:
        """Add `key` after its rate limiter's delay (one more failure); the delay."""
        delay = self.limiter.when(key)
        self._metrics.retried()
        self.add_after(key, delay)
        return delay

    def forget(self, key: K) -> None:
        """`key` succeeded (or stopped failing): its backoff starts over."""
        self.limiter.forget(key)

    def num_requeues(self, key: K) -> int:
        return self.limiter.failures(key)

    def pump(self) -> int:
        """Move every delayed key that is due to the ready queue; how many were moved."""
        moved = 0
        with self._cond:
            now = self._now()
            while self._heap and self._heap[0][0] <= now:
                due, _, key = heapq.heappop(self._heap)
                if self._waiting.get(key) != due:
                    continue  # superseded by an earlier add, or handed out meanwhile
                del self._waiting[key]
                self._add(key)
                moved += 1
        return moved

    def next_due(self) -> float | None:
        """Seconds of the queue's clock until the earliest delayed add (0 when overdue)."""
        with self._cond:
            while self._heap and self._waiting.get(self._heap[0][2]) != self._heap[0][0]:
                heapq.heappop(self._heap)
            if not self._heap:
                return None
            return max(self._heap[0][0] - self._now(), 0.0)

    # --- working --------------------------------------------------------------------------

    def get(self, timeout: float | None = None) -> K | None:
        """The next ready key, blocking until there is one; None once shut down (or after
        `timeout` seconds with nothing ready). Call `done(key)` when its work is finished."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._ready or self._shutting_down, timeout):
                return None
            if self._shutting_down:
                return None
            key = self._ready.popleft()
            now = self._monotonic()
            self._metrics.depth(len(self._ready))
            self._metrics.queued_for(max(now - self._added_at.pop(key, now), 0.0))
            self._processing[key] = now
            self._dirty.discard(key)
            self._waiting.pop(key, None)
            return key

    def done(self, key: K) -> None:
        with self._cond:
            started = self._processing.pop(key, None)
            if started is not None:
                self._metrics.worked_for(max(self._monotonic() - started, 0.0))
            if key in self._dirty and not self._shutting_down:
                self._ready.append(key)
                self._added_at[key] = self._monotonic()
                self._metrics.depth(len(self._ready))
                self._cond.notify()
            self._cond.notify_all()  # wake wait_idle / wait_in_flight

    # --- stopping and observing -----------------------------------------------------------

    def shutdown(self) -> None:
        """Hand out no more keys and take no more adds; the keys in flight finish."""
        with self._cond:
            self._shutting_down = True
            self._cond.notify_all()

    @property
    def shutting_down(self) -> bool:
        with self._cond:
            return self._shutting_down

    def wait_in_flight(self, timeout: float | None = None) -> bool:
        """Wait until no key is being processed; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._processing, timeout)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no key is ready or being processed (delayed ones may wait); False on
        timeout. After shutdown, ready keys no longer count: no one will take them."""
        with self._cond:
            return self._cond.wait_for(self._idle, timeout)

    def _idle(self) -> bool:
        return not self._processing and (not self._ready or self._shutting_down)

    def idle(self) -> bool:
        with self._cond:
            return self._idle()

    def __len__(self) -> int:
        """Keys ready to be handed out (the `workqueue_depth`)."""
        with self._cond:
            return len(self._ready)

    @property
    def processing(self) -> int:
        with self._cond:
            return len(self._processing)

    @property
    def delayed(self) -> int:
        with self._cond:
            return len(self._waiting)

    def unfinished_work_seconds(self) -> float:
        """Seconds of work in progress not yet observed by `workqueue_work_duration_seconds`
        (the sum over keys being processed of how long they have been)."""
        with self._cond:
            now = self._monotonic()
            return sum(max(now - t, 0.0) for t in self._processing.values())

    def longest_running_seconds(self) -> float:
        with self._cond:
            now = self._monotonic()
            return max((max(now - t, 0.0) for t in self._processing.values()), default=0.0)
