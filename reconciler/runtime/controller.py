"""What a controller is: it watches kinds and reconciles one object at a time.

How a reconcile ended decides what its status says, so every controller classifies its ending
the same way (`ReconcileFailure.of`): a reconcile that returns is a success (or asks to be run
again), one that raises is never a success. A `ReconcilerError` is a failure of its class (its
`reason` when it has one); any other exception is a crash, a bug, reported as `ReconcileError`
with the exception's type and message. The controller writes that on the object, keeps its last
good outputs, prunes nothing, and re-raises, so the runner logs it and retries with backoff.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from reconciler.model.conditions import FALSE, UNKNOWN, Condition
from reconciler.model.errors import ReconcilerError, Waiting
from reconciler.model.limits import DeadlineExceeded
from reconciler.model.objects import Obj

RECONCILE_ERROR = "ReconcileError"
"""The reason on an object whose reconcile raised an unexpected exception (a bug)."""
RECONCILE_TIMEOUT = "ReconcileTimeout"
"""The reason on an object whose reconcile ran past its deadline."""


class Resync(float):
    """Seconds until a periodic re-check of an object that has nothing in flight (a poll
    interval, the next schedule of a CronJob).

    A controller returns a plain number for work in flight (a build that finishes in 30 s, a
    retry after a failure) and a `Resync` for a wake-up that only re-checks: `simulate` settles
    while a resync is pending, never while work in flight is due within its budget.
    """


class Controller(Protocol):
    name: str

    def watches(self) -> Sequence[tuple[str, str]]:
        """The (apiVersion, kind) pairs whose objects this controller reconciles."""
        ...

    def reconcile(self, obj: Obj) -> float | None:
        """Bring the world closer to `obj`; return seconds until it wants to run again (a
        `Resync` when that is only a periodic re-check). Raising is a failure: the controller
        has recorded it on `obj` (`ReconcileFailure`), the runner retries with backoff."""
        ...


@dataclass(frozen=True)
class ReconcileFailure:
    """How a reconcile that raised ended, as the object's status shows it."""

    reason: str
    message: str
    status: str = FALSE
    crashed: bool = False
    """An unexpected exception (a bug), as opposed to an error the product raises on purpose."""

    @classmethod
    def of(cls, exc: BaseException) -> ReconcileFailure:
        if isinstance(exc, DeadlineExceeded):
            return cls(RECONCILE_TIMEOUT, str(exc))
        if isinstance(exc, ReconcilerError):
            reason = getattr(exc, "reason", None)
            if not isinstance(reason, str) or not reason:
                reason = type(exc).__name__
            # Waiting is not a failure of the user: Unknown, but always with its reason.
            status = UNKNOWN if isinstance(exc, Waiting) else FALSE
            return cls(reason, str(exc) or type(exc).__name__, status)
        detail = str(exc)
        if len(detail) > 500:
            detail = detail[:500] + "..."
        message = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
        return cls(RECONCILE_ERROR, f"reconcile failed unexpectedly: {message}", FALSE,
                   crashed=True)

    def condition(self, type_: str) -> Condition:
        return Condition(type_, self.status, self.reason, self.message)



def forget_object(controller: object, namespace: str, name: str) -> None:
    """Tell `controller` that an object it reconciled is gone, if it keeps anything per object
    (an optional `forget(namespace, name)`: the owner's fast-path records, the Git source's
    poll records), so that a long-running process does not keep what every deleted object
    left behind. The drivers call it when they drop the object's key."""
    forget = getattr(controller, "forget", None)
    if callable(forget):
        forget(namespace, name)


class Polling:
    """A controller seen as one whose every wake-up is a `Resync`: a poller (the Git source
    controller re-lists its remote every interval) whose requeues are never work in flight."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        self.name = controller.name

    def watches(self) -> Sequence[tuple[str, str]]:
        return self.controller.watches()

    def forget(self, namespace: str, name: str) -> None:
        forget_object(self.controller, namespace, name)

    def reconcile(self, obj: Obj) -> float | None:
        after = self.controller.reconcile(obj)
        return None if after is None else Resync(after)
