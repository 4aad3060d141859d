"""Driving controllers to a fixed point on a clock that can be advanced (the simulator's).

A round reconciles every object each controller watches. Rounds repeat while the cluster keeps
changing; once a round changes nothing, time jumps to the earliest wake-up a controller asked for.
The run ends when the caller's `settled` test holds at a fixed point, nothing is left to wait for,
or the virtual-time budget is spent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import structlog

from reconciler.backends.base import Backend
from reconciler.engine.clock import Clock
from reconciler.engine.controller import Controller
from reconciler.model.errors import ReconcilerError

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


class RunawayError(ReconcilerError):
    pass


def run_until_settled(
    env: Environment,
    controllers: Sequence[Controller],
    settled: Callable[[], bool],
    budget_seconds: float = 3600.0,
    max_rounds: int = 10_000,
) -> RunReport:
    start = env.clock.now()
    deadline = start + budget_seconds
    rounds = 0
    while True:
        rounds += 1
        if rounds > max_rounds:
            return RunReport(rounds, env.clock.now() - start, False,
                             f"no fixed point after {max_rounds} rounds")
        before = env.revision()
        wakeups = _round(env.backend, controllers)
        if env.revision() != before:
            continue
        if settled():
            return RunReport(rounds, env.clock.now() - start, True, "settled")
        if not wakeups:
            return RunReport(rounds, env.clock.now() - start, False,
                             "nothing left to wait for")
        step = max(min(wakeups), 0.001)
        if env.clock.now() + step > deadline:
            return RunReport(rounds, env.clock.now() - start, False,
                             f"virtual-time budget of {budget_seconds:g}s spent")
        env.advance(step)


def _round(backend: Backend, controllers: Sequence[Controller]) -> list[float]:
    wakeups: list[float] = []
    for controller in controllers:
        for api_version, kind in controller.watches():
            for obj in backend.list(api_version, kind):
                try:
                    after = controller.reconcile(obj)
                except ReconcilerError as exc:
                    log.warning("reconcile failed", controller=controller.name,
                                object=f"{kind}/{obj['metadata'].get('name')}", error=str(exc))
                    after = 5.0
                if after is not None:
                    wakeups.append(after)
    return wakeups
