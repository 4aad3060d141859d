"""A virtual clock: time moves only when the simulation says so."""

from __future__ import annotations

# 2026-01-01T00:00:00Z: a fixed start so runs are reproducible.
EPOCH = 1767225600.0


class VirtualClock:
    def __init__(self, start: float = EPOCH) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"cannot move a clock backwards by {seconds}s")
        self._now += seconds

    def set(self, now: float) -> None:
        self._now = max(self._now, now)
