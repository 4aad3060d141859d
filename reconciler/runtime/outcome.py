"""How a reconcile ended, and what happens next: one decision for every driver.

`classify` turns what a reconcile gave back (the seconds it asked to wait, or the exception it
raised) into an `Outcome`: the `result` label of `reconciler_reconcile_total` and the next step.
Both drivers use it: the daemon's work queue and the round-based fixed point of `simulate` and
`test`, so an object is retried the same way in both.

| ended with                               | result    | next                                   |
| ---------------------------------------- | --------- | -------------------------------------- |
| return None                              | success   | forget the backoff; wait for a change  |
| return a `Resync` (periodic re-check)    | success   | forget the backoff; re-check after it  |
| return seconds (work in flight)          | requeue   | forget the backoff; run again after it |
| raise `Waiting`                          | waiting   | run again after its own `retry_after`  |
| raise `Stalled`                          | stalled   | never retried: only a change of the    |
|                                          |           | object, or of what it read, runs it    |
| raise `Transient`, `DeadlineExceeded`,   | error     | per-key exponential backoff            |
| any other `ReconcilerError`              |           |                                        |
| raise anything else (a bug)              | crash     | logged with its traceback; backoff     |

A reconcile that returns but leaves its own object `Ready=False` (the owner and source
controllers record a missing blueprint, a template error or a failed `ls-remote` that way) is
not a success either: `error` when it asked to run again, `stalled` when it did not. One that
leaves it `Ready=Unknown` and asks for nothing counts as `waiting` (it waits for something it
read). Such a reconcile is steered by what it returned; only its label says what it achieved.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

from reconciler.model.errors import ReconcilerError, Stalled, Waiting


class Result(StrEnum):
    SUCCESS = "success"
    REQUEUE = "requeue"
    ERROR = "error"
    STALLED = "stalled"
    WAITING = "waiting"
    CRASH = "crash"


RESULTS = tuple(Result)


class Next(StrEnum):
    FORGET = "forget"
    """Done: forget the backoff; run again only on a change (or after `after`, if set)."""
    BACKOFF = "backoff"
    """Failed: retry after the key's next exponential backoff."""
    RETRY_AFTER = "retry_after"
    """Not ready yet: retry after `after`, the backoff left as it is."""
    STOP = "stop"
    """Stalled: forget the backoff; nothing but a change runs it again."""


class Outcome(NamedTuple):
    """(A tuple: one is made per reconcile.)"""

    result: Result
    next: Next
    after: float | None = None
    """Seconds until the next run (FORGET with a requeue, RETRY_AFTER)."""
    resync: bool = False
    """`after` is a periodic re-check, not work in flight (`simulate` settles while one waits)."""
    failed: bool = False
    """The reconcile raised: its status says so, and `simulate` reports it."""

    @property
    def retried(self) -> bool:
        """Whether a retry is scheduled by the failure itself (backoff or its own delay)."""
        return self.next in (Next.BACKOFF, Next.RETRY_AFTER)


def classify(after: float | None, error: BaseException | None = None, *,
             resync: bool = False, ready: str | None = None) -> Outcome:
    """`after`: what the reconcile returned (ignored when it raised `error`); `resync`: that
    return is a periodic re-check; `ready`: the `Ready` status its object was left with, when
    it has one ("True", "False", "Unknown")."""
    if error is not None:
        if isinstance(error, Stalled):
            return Outcome(Result.STALLED, Next.STOP, failed=True)
        if isinstance(error, Waiting):
            return Outcome(Result.WAITING, Next.RETRY_AFTER, max(error.retry_after, 0.0),
                           failed=True)
        if isinstance(error, ReconcilerError):
            return Outcome(Result.ERROR, Next.BACKOFF, failed=True)
        return Outcome(Result.CRASH, Next.BACKOFF, failed=True)
    if after is not None and after < 0:
        after = 0.0
    in_flight = after is not None and not resync
    result = Result.REQUEUE if in_flight else Result.SUCCESS
    if ready == "False":
        result = Result.ERROR if after is not None else Result.STALLED
    elif ready == "Unknown" and after is None:
        result = Result.WAITING
    return Outcome(result, Next.FORGET, after, resync=after is not None and resync)
