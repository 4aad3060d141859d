"""Client-side flow control for `KubernetesBackend`: a token bucket (QPS and burst, as
client-go's `flowcontrol.NewTokenBucketRateLimiter`), exponential backoff with full jitter, and
the retry decision (429 always, honouring `Retry-After`; 5xx and connection errors only for
idempotent requests).

Pure: time comes from injected `now` and `sleep`, randomness from an injected `random`, so the
tests run on a fake clock and never sleep.
"""

from __future__ import annotations

import random as _random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime


class TokenBucket:
    """`qps` tokens a second, at most `burst` saved up; `acquire` takes one, waiting if none.

    Thread-safe: waiters reserve their token under the lock and sleep outside it, so callers
    are served in the order they asked and the rate holds across threads.
    """

    def __init__(self, qps: float, burst: int, now: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError(f"qps must be > 0 and burst >= 1 (got {qps}, {burst})")
        self.qps, self.burst = qps, burst
        self._now, self._sleep = now, sleep
        self._tokens = float(burst)
        self._stamp = now()
        self._lock = threading.Lock()
        self.waited = 0.0
        """Seconds callers spent waiting for tokens, in total (a metric)."""

    def reserve(self) -> float:
        """Take a token now (going into debt if none is left); the seconds to wait before the
        request may go."""
        with self._lock:
            now = self._now()
            self._tokens = min(float(self.burst),
                               self._tokens + (now - self._stamp) * self.qps)
            self._stamp = now
            self._tokens -= 1.0
            wait = 0.0 if self._tokens >= 0 else -self._tokens / self.qps
            self.waited += wait
            return wait

    def acquire(self) -> float:
        """Block until a token is available; the seconds waited."""
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
        return wait


@dataclass
class Backoff:
    """Exponential backoff with full jitter: attempt n waits uniform(0, min(cap, base * 2^n))
    (AWS's "full jitter"; spreads reconnects of many clients after a server restart)."""

    base: float = 0.2
    cap: float = 30.0
    random: Callable[[], float] = field(default=_random.random)

    def ceiling(self, attempt: int) -> float:
        return min(self.cap, self.base * 2.0 ** min(attempt, 62))

    def delay(self, attempt: int) -> float:
        jitter: float = self.random()
        return self.ceiling(attempt) * jitter


def retry_after_seconds(headers: Mapping[str, str] | None, now: float | None = None,
                        cap: float = 60.0) -> float | None:
    """The wait a `Retry-After` header asks for (delta-seconds or an HTTP date), capped;
    None when there is none or it is malformed."""
    if not headers:
        return None
    value = None
    for key, text in headers.items():
        if key.lower() == "retry-after":
            value = str(text).strip()
            break
    if not value:
        return None
    if value.isdigit():
        return min(float(value), cap)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return min(max(when - (time.time() if now is None else now), 0.0), cap)


IDEMPOTENT_VERBS = frozenset({"get", "list", "watch", "apply"})
"""Requests that may be sent again after a 5xx or a lost connection: reads, and server-side
applies (the same configuration applied twice ends in the same object)."""


def should_retry(verb: str, code: int) -> bool:
    """Whether a request answered `code` (0: no HTTP answer, a connection error) is retried.

    429 means the server did not process the request, so every verb retries; a 5xx or a lost
    connection may have happened after the server acted, so only idempotent verbs do (a create
    or a delete sent twice would answer 409 or 404 for a request that in fact succeeded)."""
    if code == 429:
        return True
    if code == 0 or code >= 500:
        return verb in IDEMPOTENT_VERBS and code != 501
    return False
