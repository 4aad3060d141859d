"""Driving controllers to a fixed point on a clock that can be advanced (the simulator's).

A round offers every object each controller watches to that controller. With a `TrackingBackend`
and a backend that keeps a change feed, an object is reconciled only when it is new, it or one of
the objects its last reconcile read changed since, or the wake-up it asked for is due; otherwise
every object is reconciled every round. Rounds repeat while the cluster keeps changing; once a
round changes nothing, time jumps to the earliest wake-up a controller asked for. The run ends
when the caller's `settled` test holds at a fixed point, nothing is left to wait for, or the
virtual-time budget is spent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import structlog

from reconciler.backends.base import Backend
from reconciler.engine.clock import Clock
from reconciler.engine.controller import Controller
from reconciler.engine.tracking import ChangeFeed, Dependency, TrackingBackend, changed_after
from reconciler.model.errors import ReconcilerError
from reconciler.model.objects import GroupVersionKind, Obj, name_of, namespace_of

log = structlog.get_logger(__name__)


class Environment(Protocol):
    """A world to run controllers in: a cluster, a clock and the controllers that live there."""

    backend: Backend
    clock: Clock
    controllers: Sequence[Controller]

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


class RunawayError(ReconcilerError):
    pass


@dataclass
class _Record:
    revision: int  # cluster revision right after the reconcile
    dependencies: set[Dependency]
    due: float | None  # when it asked to run again


@dataclass
class _Scheduler:
    """Decides which objects a round reconciles, from their last reads and wake-ups."""

    backend: Backend
    tracker: TrackingBackend | None
    clock: Clock
    tracked: frozenset[str] = frozenset()
    records: dict[tuple[str, str, str, str, str], _Record] = field(default_factory=dict)
    reconciles: int = 0
    skipped: int = 0

    @property
    def feed(self) -> ChangeFeed | None:
        return self.backend if isinstance(self.backend, ChangeFeed) else None

    def run_round(self, controllers: Sequence[Controller]) -> None:
        for controller in controllers:
            tracked = self.tracker is not None and controller.name in self.tracked
            for api_version, kind in controller.watches():
                for obj in self.backend.list(api_version, kind):
                    self._offer(controller, tracked, api_version, obj)

    def next_wakeup(self) -> float | None:
        dues = [r.due for r in self.records.values() if r.due is not None]
        return max(min(dues) - self.clock.now(), 0.0) if dues else None

    def _offer(self, controller: Controller, tracked: bool, api_version: str, obj: Obj) -> None:
        group = GroupVersionKind.parse(api_version, str(obj.get("kind"))).group
        own: Dependency = ("key", group, str(obj.get("kind")), namespace_of(obj), name_of(obj))
        key = (controller.name, *own[1:])
        record = self.records.get(key)
        feed = self.feed
        if tracked and record is not None and feed is not None and not self._due(record):
            deps = record.dependencies | {own}
            if not changed_after(feed, deps, record.revision):
                self.skipped += 1
                return
        if tracked and self.tracker is not None:
            self.tracker.begin()
        try:
            after = controller.reconcile(obj)
        except ReconcilerError as exc:
            log.warning("reconcile failed", controller=controller.name, object=own[2:],
                        error=str(exc))
            after = 5.0
        except Exception:
            # A bug in one reconcile must not stop every other object's: log it whole
            # and retry later, as a controller runtime recovers a panicking reconcile.
            log.exception("reconcile crashed", controller=controller.name, object=own[2:])
            after = 30.0
        finally:
            reads = (self.tracker.end().dependencies if tracked and self.tracker is not None
                     else set())
        self.reconciles += 1
        self.records[key] = _Record(
            revision=feed.revision if feed is not None else 0,
            dependencies=reads,
            due=self.clock.now() + after if after is not None else None,
        )

    def _due(self, record: _Record) -> bool:
        return record.due is not None and record.due <= self.clock.now()


def run_until_settled(
    env: Environment,
    controllers: Sequence[Controller],
    settled: Callable[[], bool],
    budget_seconds: float = 3600.0,
    max_rounds: int = 10_000,
    tracker: TrackingBackend | None = None,
    tracked: Sequence[Controller] = (),
) -> RunReport:
    """Drive `controllers` until `settled()` holds at a fixed point.

    `tracked` are the controllers that read the cluster only through `tracker`: they are skipped
    while nothing they read changed.
    """
    start = env.clock.now()
    deadline = start + budget_seconds
    scheduler = _Scheduler(env.backend, tracker, env.clock,
                           frozenset(c.name for c in tracked))
    rounds = 0

    def report(done: bool, reason: str) -> RunReport:
        return RunReport(rounds, env.clock.now() - start, done, reason, scheduler.reconciles,
                         scheduler.skipped)

    while True:
        rounds += 1
        if rounds > max_rounds:
            return report(False, f"no fixed point after {max_rounds} rounds")
        before = env.revision()
        scheduler.run_round(controllers)
        if env.revision() != before:
            continue
        if settled():
            return report(True, "settled")
        step = scheduler.next_wakeup()
        if step is None:
            return report(False, "nothing left to wait for")
        step = max(step, 0.001)
        if env.clock.now() + step > deadline:
            return report(False, f"virtual-time budget of {budget_seconds:g}s spent")
        env.advance(step)
