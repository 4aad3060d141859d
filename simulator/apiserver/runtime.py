"""The cluster behind the API: the simulated environment, its inputs and state, and the
controllers that run in-process on a background thread.

The controllers are wired as `reconciler run` wires them (`product_controllers` over a
`TrackingBackend`, then a `RoundDriver` in a `ReconcileLoop`, virtual time following real time
through a `ClockFollower`), only ticking from a plain thread every `tick` seconds. With
`controllers="ecosystem"` only the simulated ones run (kpack, Knative, Tekton, the
kube-controller-manager's share), so another process can be the product's controller.

The loop's lock is the store's lock: a tick and an HTTP request never interleave. After each
tick the change log is scanned, so watches see what the controllers did.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import structlog

from reconciler.daemon.clock import ClockFollower
from reconciler.daemon.loop import ReconcileLoop
from reconciler.engine.runner import Environment, RoundDriver
from reconciler.engine.tracking import TrackingBackend
from reconciler.engine.wiring import load_environment, product_controllers
from reconciler.loader import LoadedObject
from reconciler.observability.health import HealthState
from reconciler.observability.metrics import ReconcilerMetrics, watched_kinds
from reconciler.runtime.controller import Controller
from reconciler.settings import SourceSettings
from reconciler.simulation import apply_inputs
from reconciler.sources.artifacts import ArtifactStore
from reconciler.sources.server import ArtifactServer
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
        self.objects, self.state, self.controllers = objects, state, controllers
        self.time_scale, self.tick, self.max_rounds = time_scale, tick, max_rounds
        self._stack = contextlib.ExitStack()
        self._stop = threading.Event()
        self.env: Environment | None = None
        self.store: Store | None = None
        self.loop: ReconcileLoop | None = None
        self.health = HealthState(300.0)

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
        return self.loop is not None and self.loop.ticks > 0 and not self._stop.is_set()

    def _start(self) -> None:
        env = self.env = load_environment("simulator")
        cluster = env.backend
        if not isinstance(cluster, InMemoryCluster):
            raise TypeError("the simulator environment has no in-memory cluster")
        if self.state is not None and self.state.exists():
            env.load_state(self.state)
        # Virtual time starts at the wall clock's (or later, from a faster state), so the
        # inputs' creationTimestamps, and every AGE kubectl prints, are real.
        follower = ClockFollower(env, self.time_scale)
        follower.align()
        apply_inputs(env.backend, self.objects)
        product: list[Controller] = []
        tracker: TrackingBackend | None = None
        if self.controllers == "all":
            data_dir = self._data_dir()
            artifacts = ArtifactServer(ArtifactStore(data_dir / "artifacts", "http://unused"))
            artifacts.start()
            self._stack.callback(artifacts.stop)
            sources = SourceSettings(artifact_root=data_dir / "artifacts",
                                     workdir=data_dir / "git",
                                     artifact_base_url=artifacts.base_url,
                                     allow_local_urls=False)
            tracker = TrackingBackend(env.backend)
            product = product_controllers(tracker, env.clock, sources)
        every = [*product, *env.controllers]
        driver = RoundDriver(env, every, tracker, tracked=product)
        loop = self.loop = ReconcileLoop(env, driver, follower, ReconcilerMetrics(),
                                         self.health, watched_kinds(every), self.max_rounds)
        self.store = Store(cluster, loop.lock)
        if self.state is not None:
            self._stack.callback(self._save, env, self.state)
        thread = threading.Thread(target=self._ticks, name="controllers", daemon=True)
        thread.start()
        self._stack.callback(thread.join, 30)
        self._stack.callback(self._stop.set)
        self._stack.callback(loop.request_stop)
        log.info("cluster started", controllers=self.controllers, time_scale=self.time_scale)

    def _ticks(self) -> None:
        assert self.loop is not None and self.store is not None
        while True:
            self.loop.tick()
            self.store.scan()
            if self._stop.wait(self.tick):
                return

    def _data_dir(self) -> Path:
        if self.state is not None:
            chosen = self.state.with_name(self.state.name + ".d")
            chosen.mkdir(parents=True, exist_ok=True, mode=0o700)
            return chosen
        scratch = Path(tempfile.mkdtemp(prefix="reconciler-serve-"))
        self._stack.callback(shutil.rmtree, scratch, ignore_errors=True)
        return scratch

    def _save(self, env: Environment, path: Path) -> None:
        assert self.loop is not None
        self.loop.read(lambda: env.save_state(path))
        log.info("state saved", path=str(path))
