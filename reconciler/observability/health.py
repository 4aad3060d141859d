"""Liveness and readiness of the daemon, as `/healthz` and `/readyz` report them.

- Live: the reconcile loop is not stuck, i.e. no tick has been running for longer than
  `stall_after` seconds. A slow tick is fine; one that never ends is what a restart can fix.
- Ready: the first full tick has finished (every object was offered to its controller once,
  so metrics and statuses describe the cluster), and the daemon is not shutting down.

Ticks report in from the scheduler's thread while the HTTP server reads from its own: every
field is read and written under one lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str


class HealthState:
    def __init__(self, stall_after: float, now: Callable[[], float] = time.monotonic) -> None:
        self._stall_after = stall_after
        self._now = now
        self._lock = threading.Lock()
        self._tick_started: float | None = None
        self._ticks_done = 0
        self._last_error: str | None = None
        self._stopping = False

    def tick_started(self) -> None:
        with self._lock:
            self._tick_started = self._now()

    def tick_finished(self, error: str | None = None) -> None:
        """A tick ended; `error` says why it failed, None when it completed."""
        with self._lock:
            self._tick_started = None
            self._last_error = error
            if error is None:
                self._ticks_done += 1

    def stopping(self) -> None:
        with self._lock:
            self._stopping = True

    def liveness(self) -> Verdict:
        with self._lock:
            if self._tick_started is not None:
                running = self._now() - self._tick_started
                if running > self._stall_after:
                    return Verdict(False, f"a reconcile tick has been running for "
                                          f"{running:.0f}s (limit {self._stall_after:g}s)")
            return Verdict(True, "ok")

    def readiness(self) -> Verdict:
        with self._lock:
            if self._stopping:
                return Verdict(False, "shutting down")
            if self._ticks_done == 0:
                why = f": last tick failed: {self._last_error}" if self._last_error else ""
                return Verdict(False, f"first reconcile tick not finished yet{why}")
            return Verdict(True, "ok")
