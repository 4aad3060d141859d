"""The product's controllers on work queues: the one wiring `reconciler run` (`service.Daemon`)
and `reconciler serve --controllers all` (`inprocess.InProcessControllers`) share.

`product_controllers` over `writer` (a `TrackingBackend`, or the leader gate over it), a poll
interval counted as a periodic re-check (`Polling`), a `QueueDriver` with one queue and worker
pool per product controller, the simulated controllers' rounds on the environment's clock, and
the work-queue metrics watching every queue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from reconciler.backends.base import Backend
from reconciler.daemon.locked import LockedBackend
from reconciler.daemon.manager import QueueDriver, QueueSettings
from reconciler.engine.runner import Environment, RoundDriver
from reconciler.engine.sources import GitRepositoryReconciler
from reconciler.engine.tracking import TrackingBackend
from reconciler.engine.wiring import product_controllers
from reconciler.model.limits import Limits
from reconciler.model.objects import Obj
from reconciler.observability.metrics import ReconcilerMetrics
from reconciler.runtime.controller import Controller, Polling
from reconciler.settings import OwnerSettings, SourceSettings
from reconciler.sources.git import GitRepositoryController


@dataclass
class Assembly:
    driver: QueueDriver
    product: list[Controller]
    gits: list[GitRepositoryController]


def assemble(
    env: Environment,
    locked: LockedBackend,
    tracker: TrackingBackend,
    writer: Backend,
    sources: SourceSettings | None,
    queues: QueueSettings,
    limits: Limits,
    metrics: ReconcilerMetrics,
    owns: Callable[[Obj], bool] | None = None,
    owners: OwnerSettings | None = None,
) -> Assembly:
    """`sources=None`: no product controller (the simulated ones only). `owners`: the owner
    controllers' settings (None: the defaults)."""
    built = (product_controllers(writer, env.clock, sources, limits, owners=owners)
             if sources is not None else [])
    gits = [c.git for c in built if isinstance(c, GitRepositoryReconciler)]
    # A poll interval is a periodic re-check, not work in flight (a success, not a requeue).
    product: list[Controller] = [Polling(c) if isinstance(c, GitRepositoryReconciler) else c
                                 for c in built]
    observe = metrics.observe_reconcile
    rounds = (RoundDriver(env, env.controllers, limits=limits, observe=observe)
              if env.controllers else None)
    driver = QueueDriver(locked, tracker, product, env.clock, queues, limits, observe,
                         metrics.workqueues.for_queue, rounds, owns=owns)
    for queue in driver.queues:
        metrics.workqueues.watch(queue)
    return Assembly(driver, product, gits)
