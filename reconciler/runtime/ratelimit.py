"""Rate limiters for requeues, as client-go's workqueue has them.

- `ExponentialBackoff`: per key, `base * 2**(failures-1)`, capped (controller-runtime's
  `ItemExponentialFailureRateLimiter`); `forget` starts a key over.
- `TokenBucket`: one bucket over every key (`BucketRateLimiter`): `qps` a second, `burst` at
  once; a reservation beyond it is a delay, never a refusal.
- `MaxOf`: the longer of both (controller-runtime's default limiter is the max of the two).

Pure: time comes from an injected clock (`now`), so the tests need no sleeps. Thread-safe.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Protocol


class RateLimiter(Protocol):
    def when(self, key: Hashable) -> float:
        """Seconds to wait before `key` is retried (counts one more failure)."""
        ...

    def forget(self, key: Hashable) -> None:
        """`key` succeeded: its next failure starts the backoff over."""
        ...

    def failures(self, key: Hashable) -> int:
        """Retries counted for `key` since it was last forgotten."""
        ...


class ExponentialBackoff:
    def __init__(self, base: float = 5.0, cap: float = 300.0) -> None:
        if base <= 0 or cap < base:
            raise ValueError(f"backoff needs 0 < base <= cap (got base={base}, cap={cap})")
        self.base, self.cap = base, cap
        self._failures: dict[Hashable, int] = {}
        self._lock = threading.Lock()

    def delay(self, failures: int) -> float:
        """Seconds before the retry that follows `failures` consecutive failures (>= 1)."""
        exponent = max(min(failures, 64) - 1, 0)
        return min(self.base * float(2 ** exponent), self.cap)

    def when(self, key: Hashable) -> float:
        with self._lock:
            failures = self._failures.get(key, 0) + 1
            self._failures[key] = failures
        return self.delay(failures)

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def failures(self, key: Hashable) -> int:
        with self._lock:
            return self._failures.get(key, 0)


class TokenBucket:
    """`qps` tokens a second, `burst` saved up at most; a reservation always succeeds and says
    how long to wait for its token (a queue in debt serves later retries later)."""

    def __init__(self, qps: float, burst: int, now: Callable[[], float]) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError(f"token bucket needs qps > 0 and burst >= 1 (got {qps}, {burst})")
        self.qps, self.burst, self._now = qps, burst, now
        self._tokens = float(burst)
        self._stamp = now()
        self._lock = threading.Lock()

    def reserve(self) -> float:
        with self._lock:
            now = self._now()
            self._tokens = min(float(self.burst),
                               self._tokens + max(now - self._stamp, 0.0) * self.qps)
            self._stamp = now
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.qps


class MaxOf:
    """Per-key exponential backoff and one overall token bucket: the longer delay wins."""

    def __init__(self, backoff: ExponentialBackoff, bucket: TokenBucket | None = None) -> None:
        self.backoff, self.bucket = backoff, bucket

    def when(self, key: Hashable) -> float:
        delay = self.backoff.when(key)
        if self.bucket is not None:
            delay = max(delay, self.bucket.reserve())
        return delay

    def forget(self, key: Hashable) -> None:
        self.backoff.forget(key)

    def failures(self, key: Hashable) -> int:
        return self.backoff.failures(key)
