"""Moving an environment's clock with the real one.

The simulator's clock is virtual and only moves when told to; a daemon tells it to follow the
wall clock, `scale` environment seconds per real second. An environment whose clock is already
real (a future Kubernetes one) makes `advance` a no-op, so the daemon need not know which it has.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from reconciler.runtime.clock import Clock


class Advanceable(Protocol):
    # Read-only, so an environment typed with a narrower clock (VirtualClock) fits too.
    @property
    def clock(self) -> Clock: ...

    def advance(self, seconds: float) -> None: ...


class ClockFollower:
    def __init__(
        self,
        env: Advanceable,
        scale: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if scale <= 0:
            raise ValueError(f"time scale must be positive, got {scale}")
        self._env, self._scale, self._monotonic, self._wall = env, scale, monotonic, wall
        self._last = monotonic()

    def align(self) -> None:
        """Bring an environment clock that is behind the wall clock up to it, so timestamps
        written into statuses are real ones. A clock ahead (a state saved by a faster-scaled
        run) is left alone: time never goes backwards."""
        behind = self._wall() - self._env.clock.now()
        if behind > 0:
            self._env.advance(behind)
        self._last = self._monotonic()

    def catch_up(self) -> float:
        """Advance by the real time passed since the last call, scaled; returns the step."""
        now = self._monotonic()
        # Monotonic, so a wall-clock jump (NTP) neither stalls nor races the environment.
        step = max(now - self._last, 0.0) * self._scale
        self._last = now
        if step > 0:
            self._env.advance(step)
        return step
