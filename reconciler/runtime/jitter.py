"""Jittered intervals, as Flux's `pkg/runtime/jitter`: a periodic re-check comes back after
`interval * (1 ± fraction)`, drawn uniformly, so thousands of objects on one interval (every
GitRepository at `1m`, started by one apply) do not poll in lockstep.

Flux's controllers take `--interval-jitter-percentage` (default 5, so a `1m` interval is 57 s
to 63 s); `jittered(interval, 0.05, rng)` is that. The random source is injected: the daemon
passes `random.random`, tests a seeded `random.Random(...).random`, and a fraction of 0 (what
`simulate` and `test` use) returns the interval itself without drawing.
"""

from __future__ import annotations

from collections.abc import Callable

MAX_PERCENTAGE = 100.0
"""Exclusive bound of the percentage, as Flux refuses one of 100 or more (an interval of 0)."""


def check_percentage(percentage: float) -> float:
    """The fraction for a `--interval-jitter-percentage`; ValueError outside [0, 100)."""
    if not 0 <= percentage < MAX_PERCENTAGE:
        raise ValueError(f"the interval jitter percentage must be at least 0 and below "
                         f"{MAX_PERCENTAGE:g} (got {percentage:g})")
    return percentage / 100.0


def jittered(interval: float, fraction: float, random: Callable[[], float]) -> float:
    """`interval` moved by up to ±`fraction` of itself, uniformly (`random()` in [0, 1))."""
    if fraction <= 0 or interval <= 0:
        return interval
    return interval * (1.0 + fraction * (2.0 * random() - 1.0))
