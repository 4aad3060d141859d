"""Controllers in-process beside a served cluster: `reconciler serve --controllers all`.

The simulator's `ServedCluster` (found by the CLI through the `reconciler.servers` entry point)
runs these beside its HTTP API; it imports this module and nothing else of the daemon. They
are `reconciler run`'s own pieces, not a copy: `assembly.assemble` (the product's controllers
on one work queue each, `manager.QueueDriver`, the simulated controllers' rounds) over a
`LockedBackend`, ticked by `loop.QueueLoop` (virtual time following real time through a
`ClockFollower`, due requeues, the simulated rounds, gauges) from a plain thread every `tick`
seconds instead of APScheduler. So an HTTP write wakes exactly the keys that watch or read the
object it changed, as an informer's event does under `reconciler run`, and at rest nothing is
reconciled.

The cluster is not thread-safe: `lock` (re-entrant) is the one lock around it. The workers'
`LockedBackend`, the tick, and the served API's store (`simulator/apiserver/store.py`, handed
this same lock) all take it, so an HTTP request and a worker never touch the cluster at once.
`product=False` (`--controllers ecosystem`): only the simulated controllers run, so another
process can be the product's controller.

Two steps, so the API's store can register its change listener before anything runs: entering
loads the environment (`--state`), applies the inputs and wires everything; `start` queues
every watched object and starts the workers and the tick. Leaving stops the queues and the
tick, lets the reconciles in flight finish, saves `state`, stops the artifact server.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import structlog

from reconciler.backends.base import Backend
from reconciler.daemon.assembly import assemble
from reconciler.daemon.clock import ClockFollower
from reconciler.daemon.locked import LockedBackend
from reconciler.daemon.loop import QueueLoop
from reconciler.daemon.manager import QueueDriver, QueueSettings
from reconciler.engine.runner import Environment
from reconciler.engine.tracking import TrackingBackend
from reconciler.engine.wiring import load_environment
from reconciler.loader import LoadedObject
from reconciler.model.limits import DEFAULT_LIMITS, Limits
from reconciler.observability.health import HealthState
from reconciler.observability.metrics import ReconcilerMetrics, watched_kinds
from reconciler.runtime.controller import Controller
from reconciler.settings import OwnerSettings, SourceSettings
from reconciler.simulation import apply_inputs
from reconciler.sources.artifacts import ArtifactStore
from reconciler.sources.server import ArtifactServer

log = structlog.get_logger(__name__)

T = TypeVar("T")


class InProcessControllers:
    def __init__(self, objects: Sequence[LoadedObject], state: Path | None = None,
                 product: bool = True, time_scale: float = 1.0, tick: float = 0.2,
                 max_rounds: int = 100, queues: QueueSettings | None = None,
                 limits: Limits = DEFAULT_LIMITS, environment: str = "simulator",
                 owners: OwnerSettings | None = None) -> None:
        self.objects, self.state, self.product = objects, state, product
        self.time_scale, self.tick_seconds, self.max_rounds = time_scale, tick, max_rounds
        self.queue_settings = queues if queues is not None else QueueSettings()
        self.limits, self.environment = limits, environment
        self.owners = owners
        self.lock = threading.RLock()
        """The one lock around the cluster; hand it to whatever else calls the cluster."""
        self.metrics = ReconcilerMetrics()
        self.health = HealthState(300.0)
        self.env: Environment | None = None
        self.driver: QueueDriver | None = None
        self.controllers: list[Controller] = []
        """The product's controllers, as the queue driver runs them (once entered)."""
        self.loop: QueueLoop | None = None
        self._stack = contextlib.ExitStack()
        self._stop = threading.Event()

    def __enter__(self) -> InProcessControllers:
        try:
            self._wire()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stack.close()

    @property
    def backend(self) -> Backend:
        """The environment's cluster itself (unlocked: hold `lock` around every call)."""
        assert self.env is not None
        return self.env.backend

    @property
    def ready(self) -> bool:
        """Every object reconciled once (the first tick waited for it), and not stopping."""
        return self.loop is not None and self.loop.ticks > 0 and not self._stop.is_set()

    def read(self, reader: Callable[[], T]) -> T:
        with self.lock:
            return reader()

    def _wire(self) -> None:
        env = self.env = load_environment(self.environment)
        if self.state is not None and self.state.exists():
            env.load_state(self.state)
        # Virtual time starts at the wall clock's (or later, from a faster state), so the
        # inputs' creationTimestamps, and every AGE kubectl prints, are real.
        follower = ClockFollower(env, self.time_scale)
        follower.align()
        apply_inputs(env.backend, self.objects)
        sources: SourceSettings | None = None
        if self.product:
            data_dir = self._data_dir()
            artifacts = ArtifactServer(ArtifactStore(data_dir / "artifacts", "http://unused"))
            artifacts.start()
            self._stack.callback(artifacts.stop)
            sources = SourceSettings(artifact_root=data_dir / "artifacts",
                                     workdir=data_dir / "git",
                                     artifact_base_url=artifacts.base_url,
                                     allow_local_urls=False)
        if self.state is not None:
            self._stack.callback(self._save, env, self.state)
        locked = LockedBackend(env.backend, lock=self.lock)
        tracker = TrackingBackend(locked)
        assembly = assemble(env, locked, tracker, tracker, sources, self.queue_settings,
                            self.limits, self.metrics, owners=self.owners)
        driver = self.driver = assembly.driver
        self.controllers = assembly.product
        driver.subscribe(env.backend)
        # Runs after the tick thread has stopped: the reconciles in flight finish.
        self._stack.callback(self._drain, driver, self.limits.reconcile_seconds + 1.0)
        kinds = watched_kinds([*assembly.product, *env.controllers])
        self.loop = QueueLoop(env, driver, follower, self.metrics, self.health, kinds,
                              self.max_rounds, locked, idle_wait=self.limits.reconcile_seconds,
                              tick_seconds=self.tick_seconds)

    def start(self, after_tick: Callable[[], None] = lambda: None) -> None:
        """Queue every watched object, start the workers and the tick thread; `after_tick`
        runs after every tick (the served API wakes its watches)."""
        loop, driver = self.loop, self.driver
        assert loop is not None and driver is not None
        queued = driver.enqueue_all()
        driver.start()
        thread = threading.Thread(target=self._ticks, args=(loop, after_tick),
                                  name="controllers", daemon=True)
        thread.start()
        self._stack.callback(thread.join, 30)
        self._stack.callback(self._stop.set)
        # Run first on leaving: the queues hand out nothing more, the tick returns at once.
        self._stack.callback(loop.request_stop)
        log.info("controllers started", product=self.product, queued=queued,
                 concurrent=self.queue_settings.concurrent, time_scale=self.time_scale)

    def _ticks(self, loop: QueueLoop, after_tick: Callable[[], None]) -> None:
        while True:
            loop.tick()
            after_tick()
            if self._stop.wait(self.tick_seconds):
                return

    def _data_dir(self) -> Path:
        if self.state is not None:
            chosen = self.state.with_name(self.state.name + ".d")
            chosen.mkdir(parents=True, exist_ok=True, mode=0o700)
            return chosen
        scratch = Path(tempfile.mkdtemp(prefix="reconciler-serve-"))
        self._stack.callback(shutil.rmtree, scratch, ignore_errors=True)
        return scratch

    @staticmethod
    def _drain(driver: QueueDriver, timeout: float) -> None:
        if not driver.shutdown(timeout):
            log.warning("reconciles still running at shutdown were abandoned",
                        waited_seconds=timeout)

    def _save(self, env: Environment, path: Path) -> None:
        self.read(lambda: env.save_state(path))
        log.info("state saved", path=str(path))
