"""Time as an injected dependency, so scheduling and backoff tests never sleep."""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()


def rfc3339(seconds: float) -> str:
    """`seconds` since the epoch as an RFC 3339 UTC timestamp, whole seconds (as Kubernetes
    writes them)."""
    return _rfc3339(int(seconds))


# Every status write stamps the time, and a virtual clock (or a second of real time) gives
# the same few seconds to thousands of writes: remember the last ones (bounded, whole seconds).
@functools.lru_cache(maxsize=512)
def _rfc3339(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
