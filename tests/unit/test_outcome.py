"""The one decision of what follows a reconcile: its result label and its next step."""

from __future__ import annotations

import pytest

from reconciler.model.errors import BackendError, Stalled, Transient, Waiting
from reconciler.model.limits import DeadlineExceeded
from reconciler.runtime.outcome import Next, Outcome, Result, classify


@pytest.mark.parametrize(("after", "error", "resync", "ready", "expected"), [
    (None, None, False, None, Outcome(Result.SUCCESS, Next.FORGET)),
    (None, None, False, "True", Outcome(Result.SUCCESS, Next.FORGET)),
    (30.0, None, False, None, Outcome(Result.REQUEUE, Next.FORGET, 30.0)),
    # A periodic re-check (a Git poll, a Kustomization interval) is a success, not a requeue.
    (60.0, None, True, "True", Outcome(Result.SUCCESS, Next.FORGET, 60.0, resync=True)),
    # Returned, but left its object failing: never a success.
    (None, None, False, "False", Outcome(Result.STALLED, Next.FORGET)),
    (60.0, None, True, "False", Outcome(Result.ERROR, Next.FORGET, 60.0, resync=True)),
    (5.0, None, False, "False", Outcome(Result.ERROR, Next.FORGET, 5.0)),
    (None, None, False, "Unknown", Outcome(Result.WAITING, Next.FORGET)),
    (5.0, None, False, "Unknown", Outcome(Result.REQUEUE, Next.FORGET, 5.0)),
    (-1.0, None, False, None, Outcome(Result.REQUEUE, Next.FORGET, 0.0)),
    # Raised: the class steers the retry.
    (None, Transient("Unreachable", "reset"), False, None,
     Outcome(Result.ERROR, Next.BACKOFF, failed=True)),
    (None, DeadlineExceeded(30, "rendering"), False, None,
     Outcome(Result.ERROR, Next.BACKOFF, failed=True)),
    (None, BackendError("refused"), False, None, Outcome(Result.ERROR, Next.BACKOFF, failed=True)),
    (None, Waiting("DependencyNotReady", "wait", retry_after=12.0), False, None,
     Outcome(Result.WAITING, Next.RETRY_AFTER, 12.0, failed=True)),
    (None, Stalled("URLSchemeNotAllowed", "no"), False, None,
     Outcome(Result.STALLED, Next.STOP, failed=True)),
    (None, KeyError("bug"), False, None, Outcome(Result.CRASH, Next.BACKOFF, failed=True)),
    # What it returned before raising does not matter, nor the status it had.
    (5.0, ZeroDivisionError(), True, "True", Outcome(Result.CRASH, Next.BACKOFF, failed=True)),
])
def test_classify(after: float | None, error: BaseException | None, resync: bool,
                  ready: str | None, expected: Outcome) -> None:
    assert classify(after, error, resync=resync, ready=ready) == expected


def test_only_failures_schedule_their_own_retry() -> None:
    assert classify(None, Transient("x", "y")).retried
    assert classify(None, Waiting("x", "y")).retried
    assert not classify(None, Stalled("x", "y")).retried
    assert not classify(5.0).retried
