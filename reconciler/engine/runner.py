"""Driving controllers to a fixed point on a clock that can be advanced (the simulator's).

A round offers every object each controller watches to that controller. With a `TrackingBackend`
and a backend that keeps a change feed, an object is reconciled only when it is new, it or one of
the objects its last reconcile read changed since, or the wake-up it asked for is due; otherwise
every object is reconciled every round. Rounds repeat while the cluster keeps changing; once a
round changes nothing, time jumps to the earliest wake-up a controller asked for. The run ends
when it is settled, nothing is left to wait for, or the virtual-time budget is spent.

Settled means: a round changed nothing, the caller's `settled` test holds, and no work is in
flight within the budget, i.e. no controller (product or simulated) has a wake-up due before the
budget ends other than a periodic `Resync`, and no failed reconcile is waiting for its retry.

Each reconcile runs under `deadline_scope(limits.reconcile_seconds)`. A reconcile that raises
(an error, a crash, `DeadlineExceeded`) or returns past its deadline is a failure: it is logged
(a crash with its traceback), retried with exponential backoff, and counted in the report; the
controller has already written the failure on the object. A stop request (the daemon's
shutdown) is honoured between reconciles.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import structlog

from reconciler.backends.base import Backend
from reconciler.engine.clock import Clock
from reconciler.engine.controller import Controller, ReconcileFailure, Resync
from reconciler.engine.tracking import ChangeFeed, Dependency, TrackingBackend, changed_after
from reconciler.model.errors import ReconcilerError
from reconciler.model.limits import (
    DEFAULT_LIMITS,
    DeadlineExceeded,
    Limits,
    check_deadline,
    deadline_scope,
)
from reconciler.model.objects import GroupVersionKind, Obj, name_of, namespace_of

log = structlog.get_logger(__name__)


class Environment(Protocol):
    """A world to run controllers in: a cluster, a clock and the controllers that live there."""

    # Read-only in the protocol so an implementation may hold a narrower type (the simulator's
    # `InMemoryCluster` and `VirtualClock`): a mutable protocol attribute is invariant.
    @property
    def backend(self) -> Backend: ...

    @property
    def clock(self) -> Clock: ...

    controllers: Sequence[Controller]
    stateful: bool
    """Whether `save_state`/`load_state` work (a simulated cluster) or not (a real one)."""
    virtual_clock: bool
    """Whether `advance` moves the world's clock (a simulated cluster, whose clock a daemon may
    scale), or real time moves by itself (a real cluster)."""

    def advance(self, seconds: float) -> None: ...

    def revision(self) -> int: ...

    def save_state(self, path: Path) -> None: ...

    def load_state(self, path: Path) -> None: ...


@dataclass(frozen=True)
class RunReport:
    rounds: int
    virtual_seconds: float
    settled: bool
    reason: str
    reconciles: int = 0
    skipped: int = 0
    failing: tuple[str, ...] = ()
    """Objects whose latest reconcile failed (raised or ran past its deadline), described."""
    crashed: tuple[str, ...] = ()
    """Objects whose latest reconcile raised an unexpected exception (a bug), described."""


# Retries after a failed reconcile: 5 s, doubling, at most 5 min (controller-runtime's shape).
BACKOFF_BASE_SECONDS = 5.0
BACKOFF_MAX_SECONDS = 300.0


def backoff(failures: int) -> float:
    """Seconds before the retry that follows `failures` consecutive failed reconciles."""
    exponent = max(min(failures, 32) - 1, 0)
    return min(BACKOFF_BASE_SECONDS * float(2 ** exponent), BACKOFF_MAX_SECONDS)


class RunawayError(ReconcilerError):
    pass


@dataclass
class _Record:
    revision: int  # cluster revision right after the reconcile
    dependencies: set[Dependency]
    due: float | None  # when it asked to run again
    resync: bool = False  # the wake-up is a periodic re-check, not work in flight
    failures: int = 0  # consecutive failed reconciles
    failure: ReconcileFailure | None = None  # how the latest reconcile failed, if it did


@dataclass
class _Scheduler:
    """Decides which objects a round reconciles, from their last reads and wake-ups."""

    backend: Backend
    tracker: TrackingBackend | None
    clock: Clock
    tracked: frozenset[str] = frozenset()
    limits: Limits = DEFAULT_LIMITS
    stop: threading.Event | None = None
    """Set to stop starting reconciles (shutdown); the one in progress finishes."""
    records: dict[tuple[str, str, str, str, str], _Record] = field(default_factory=dict)
    reconciles: int = 0
    skipped: int = 0

    feed: ChangeFeed | None = None

    def __post_init__(self) -> None:
        # Checked once: isinstance against a runtime protocol inspects every member each time.
        self.feed = self.backend if isinstance(self.backend, ChangeFeed) else None

    def stopping(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def run_round(self, controllers: Sequence[Controller]) -> None:
        feed = self.feed
        present: set[tuple[str, str, str, str, str]] = set()
        for controller in controllers:
            tracked = self.tracker is not None and controller.name in self.tracked
            for api_version, kind in controller.watches():
                group = GroupVersionKind.parse(api_version, kind).group
                if not (tracked and feed is not None):
                    for obj in self.backend.list(api_version, kind):
                        if self.stopping():
                            return
                        present.add((controller.name, group, kind, namespace_of(obj),
                                     name_of(obj)))
                        self._offer(controller, tracked, api_version, obj)
                    continue
                # Decide from names and the change feed first: an object none of whose reads
                # changed is not even read (a read is a copy).
                for namespace, name in feed.names(api_version, kind):
                    if self.stopping():
                        return
                    present.add((controller.name, group, kind, namespace, name))
                    if not self._dirty(controller, ("key", group, kind, namespace, name)):
                        self.skipped += 1
                        continue
                    found = self.backend.get(api_version, kind, namespace, name)
                    if found is not None:
                        self._offer(controller, tracked, api_version, found)
        # Forget objects that are gone, so a long-running daemon does not grow with every
        # object it has ever seen (and a deleted object's wake-up does not move the clock).
        for key in [k for k in self.records if k not in present]:
            del self.records[key]

    def _dirty(self, controller: Controller, own: Dependency) -> bool:
        record = self.records.get((controller.name, *own[1:]))
        feed = self.feed
        if record is None or feed is None or self._due(record):
            return True
        return changed_after(feed, record.dependencies | {own}, record.revision)

    def next_wakeup(self) -> float | None:
        dues = [r.due for r in self.records.values() if r.due is not None]
        return max(min(dues) - self.clock.now(), 0.0) if dues else None

    def in_flight_until(self, until: float) -> bool:
        """Whether work is in flight: a failed reconcile waiting for its retry, or a wake-up
        other than a periodic resync due by `until`."""
        return any(r.failure is not None or (r.due is not None and not r.resync
                                             and r.due <= until)
                   for r in self.records.values())

    def failures(self) -> tuple[tuple[str, ReconcileFailure], ...]:
        return tuple((f"{k[0]}: {k[2]} {k[3] + '/' if k[3] else ''}{k[4]}", r.failure)
                     for k, r in sorted(self.records.items()) if r.failure is not None)

    def _offer(self, controller: Controller, tracked: bool, api_version: str, obj: Obj) -> None:
        group = GroupVersionKind.parse(api_version, str(obj.get("kind"))).group
        own: Dependency = ("key", group, str(obj.get("kind")), namespace_of(obj), name_of(obj))
        key = (controller.name, *own[1:])
        feed = self.feed
        previous = self.records.get(key)
        failure: ReconcileFailure | None = None
        after: float | None
        if tracked and self.tracker is not None:
            self.tracker.begin()
        try:
            with deadline_scope(self.limits.reconcile_seconds):
                after = controller.reconcile(obj)
                # A reconcile that never checked its deadline but overran it is not a success.
                check_deadline(f"reconciling {own[2]} {own[3]}/{own[4]}".replace(" /", " "))
        except ReconcilerError as exc:
            failure = ReconcileFailure.of(exc)
            log.warning("reconcile failed", controller=controller.name, object=own[2:],
                        reason=failure.reason, error=str(exc),
                        timeout=isinstance(exc, DeadlineExceeded))
        except Exception as exc:
            # A bug in one reconcile must not stop every other object's: log it whole
            # and retry later, as a controller runtime recovers a panicking reconcile.
            failure = ReconcileFailure.of(exc)
            # The traceback as plain text: a console renderer that shows every frame's locals
            # would take seconds over a deep recursion or a large object.
            log.error("reconcile crashed", controller=controller.name, object=own[2:],
                      error=failure.message,
                      traceback="".join(traceback.format_exception(exc)).rstrip())
        finally:
            reads = (self.tracker.end().dependencies if tracked and self.tracker is not None
                     else set())
        self.reconciles += 1
        failures = 0
        if failure is not None:
            failures = (previous.failures if previous is not None else 0) + 1
            after = backoff(failures)
        self.records[key] = _Record(
            revision=feed.revision if feed is not None else 0,
            dependencies=reads,
            due=self.clock.now() + after if after is not None else None,
            resync=isinstance(after, Resync),
            failures=failures,
            failure=failure,
        )

    def _due(self, record: _Record) -> bool:
        return record.due is not None and record.due <= self.clock.now()


@dataclass(frozen=True)
class RoundsReport:
    rounds: int
    fixed_point: bool
    """False when the round cap was hit while the cluster was still changing."""
    stopped: bool = False
    """A stop was requested: the rounds ended early."""


class RoundDriver:
    """Rounds at the current time for a driver that owns the clock (the daemon).

    The same choice of what to reconcile as `run_until_settled` (tracked controllers skip
    objects whose reads did not change and whose wake-up is not due), but time is never moved:
    the caller advances it between calls.
    """

    def __init__(
        self,
        env: Environment,
        controllers: Sequence[Controller],
        tracker: TrackingBackend | None = None,
        tracked: Sequence[Controller] = (),
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self._env = env
        self._controllers = list(controllers)
        self._stop = threading.Event()
        self._scheduler = _Scheduler(env.backend, tracker, env.clock,
                                     frozenset(c.name for c in tracked), limits=limits,
                                     stop=self._stop)

    def request_stop(self) -> None:
        """Start no new reconcile (the one in progress finishes); for shutdown. Permanent."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def reconciles(self) -> int:
        return self._scheduler.reconciles

    @property
    def skipped(self) -> int:
        return self._scheduler.skipped

    def run_to_fixed_point(self, max_rounds: int) -> RoundsReport:
        """Run rounds until one changes nothing, at most `max_rounds` of them."""
        for rounds in range(1, max_rounds + 1):
            if self._stop.is_set():
                return RoundsReport(rounds - 1, False, stopped=True)
            before = self._env.revision()
            self._scheduler.run_round(self._controllers)
            if self._stop.is_set():
                return RoundsReport(rounds, False, stopped=True)
            if self._env.revision() == before:
                return RoundsReport(rounds, True)
        return RoundsReport(max_rounds, False)

    def next_wakeup(self) -> float | None:
        """Seconds until the earliest wake-up a controller asked for (0 when one is overdue)."""
        return self._scheduler.next_wakeup()


def run_until_settled(
    env: Environment,
    controllers: Sequence[Controller],
    settled: Callable[[], bool],
    budget_seconds: float = 3600.0,
    max_rounds: int = 10_000,
    tracker: TrackingBackend | None = None,
    tracked: Sequence[Controller] = (),
    limits: Limits = DEFAULT_LIMITS,
) -> RunReport:
    """Drive `controllers` until `settled()` holds at a fixed point with nothing in flight.

    `tracked` are the controllers that read the cluster only through `tracker`: they are skipped
    while nothing they read changed.
    """
    start = env.clock.now()
    deadline = start + budget_seconds
    scheduler = _Scheduler(env.backend, tracker, env.clock,
                           frozenset(c.name for c in tracked), limits=limits)
    rounds = 0

    def report(done: bool, reason: str) -> RunReport:
        failures = scheduler.failures()
        return RunReport(rounds, env.clock.now() - start, done, reason, scheduler.reconciles,
                         scheduler.skipped,
                         failing=tuple(f"{what}: {f.reason}: {f.message}" for what, f in failures),
                         crashed=tuple(f"{what}: {f.message}" for what, f in failures
                                       if f.crashed))

    while True:
        rounds += 1
        if rounds > max_rounds:
            return report(False, f"no fixed point after {max_rounds} rounds")
        before = env.revision()
        scheduler.run_round(controllers)
        if env.revision() != before:
            continue
        if settled() and not scheduler.in_flight_until(deadline):
            return report(True, "settled")
        step = scheduler.next_wakeup()
        if step is None:
            return report(False, "nothing left to wait for")
        step = max(step, 0.001)
        if env.clock.now() + step > deadline:
            return report(False, f"virtual-time budget of {budget_seconds:g}s spent")
        env.advance(step)
