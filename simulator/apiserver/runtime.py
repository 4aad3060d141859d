"""The cluster behind the API: the simulated environment, its inputs and state, and the
product's controllers running in-process.

The controllers are `reconciler run`'s own machinery (`reconciler.daemon.inprocess`: work
queues fed by the cluster's change notifications, a worker pool per controller, the tick for
virtual time and the simulated controllers' rounds), reached through that one module. With
`controllers="ecosystem"` only the simulated ones run (kpack, Knative, Tekton, the
kube-controller-manager's share), so another process can be the product's controller.

The controllers' lock is the store's lock: a worker's call, a tick and an HTTP request never
interleave. After each tick the change log is scanned, so watches see what the controllers did.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import structlog

from reconciler.daemon.inprocess import InProcessControllers
from reconciler.loader import LoadedObject
from simulator.apiserver.store import Store
from simulator.cluster import InMemoryCluster

log = structlog.get_logger(__name__)

CONTROLLER_SETS = ("all", "ecosystem")


class ServedCluster:
    """Use as a context manager: entering loads and starts, leaving stops and saves `state`."""

    def __init__(self, objects: Sequence[LoadedObject], state: Path | None = None,
                 controllers: str = "all", time_scale: float = 1.0, tick: float = 0.2,
                 max_rounds: int = 100) -> None:
        if controllers not in CONTROLLER_SETS:
            raise ValueError(f"controllers must be one of {CONTROLLER_SETS}, got {controllers!r}")
        self.controllers = controllers
        self.running = InProcessControllers(objects, state, product=controllers == "all",
                                            time_scale=time_scale, tick=tick,
                                            max_rounds=max_rounds)
        self._stack = contextlib.ExitStack()
        self.store: Store | None = None

    def __enter__(self) -> ServedCluster:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stack.close()

    @property
    def ready(self) -> bool:
        return self.running.ready

    def _start(self) -> None:
        running = self._stack.enter_context(self.running)
        cluster = running.backend
        if not isinstance(cluster, InMemoryCluster):
            raise TypeError("the simulator environment has no in-memory cluster")
        # The simulated controllers run under the cluster's lock, and the API's clients are not
        # this machine's user: Tekton never waits for steps here and runs none unless asked,
        # kpack fetches no source unless asked.
        for controller in running.env.controllers if running.env is not None else ():
            configure = getattr(controller, "configure_for_serving", None)
            if callable(configure):
                configure()
        # Before the workers start: the watch history sees every write they make.
        store = self.store = Store(cluster, running.lock)
        running.start(after_tick=store.scan)
        log.info("cluster started", controllers=self.controllers,
                 time_scale=running.time_scale)
