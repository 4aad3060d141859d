"""The daemon's lifecycle: start everything in order, run until signalled, stop in reverse.

Start: load the environment (and `--state`), apply the input objects, start the artifact server
(its real URL goes into `status.artifact.url`), wire the product's controllers with metrics,
start the operations server and the APScheduler job that ticks every `tick_seconds`.
Stop (SIGTERM/SIGINT, or leaving the `with` block): the loop starts no new reconcile (the tick
in progress ends after its current reconcile, itself bounded by `Limits.reconcile_seconds`),
readiness goes false, the scheduler stops, `--state` is saved, then the servers stop. A start
that fails half way stops what it had started.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import tempfile
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType, TracebackType

import structlog
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from reconciler.daemon.artifacts import CountingArtifactStore
from reconciler.daemon.clock import ClockFollower
from reconciler.daemon.debug import debug_document
from reconciler.daemon.loop import ReconcileLoop
from reconciler.engine.controller import Controller
from reconciler.engine.runner import Environment, RoundDriver
from reconciler.engine.sources import GitRepositoryReconciler
from reconciler.engine.tracking import TrackingBackend
from reconciler.engine.wiring import load_environment, product_controllers
from reconciler.loader import LoadedObject
from reconciler.model.errors import ReconcilerError
from reconciler.model.limits import DEFAULT_LIMITS, Limits
from reconciler.observability.endpoints import OperationsServer
from reconciler.observability.health import HealthState
from reconciler.observability.metrics import (
    CallbackCounter,
    CallbackCounters,
    InstrumentedController,
    ReconcilerMetrics,
    watched_kinds,
)
from reconciler.observability.stdlib_logs import route_to_structlog
from reconciler.settings import DaemonSettings, SourceSettings
from reconciler.simulation import apply_inputs
from reconciler.sources.server import ArtifactServer

log = structlog.get_logger(__name__)

JOB_ID = "reconcile"


class DaemonStartError(ReconcilerError):
    """The daemon could not start (an address in use, an unusable data directory)."""


class Daemon:
    """Use as a context manager: entering starts the daemon, leaving stops it."""

    def __init__(self, objects: Sequence[LoadedObject], settings: DaemonSettings,
                 limits: Limits = DEFAULT_LIMITS) -> None:
        self.objects = objects
        self.settings = settings
        self.limits = limits
        self.metrics = ReconcilerMetrics()
        self.health = HealthState(settings.stall_after_seconds)
        self._stack = contextlib.ExitStack()
        self.env: Environment | None = None
        self.loop: ReconcileLoop | None = None
        self.operations: OperationsServer | None = None
        self.artifacts: ArtifactServer | None = None

    def __enter__(self) -> Daemon:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.close()
        log.info("daemon stopped")

    def _start(self) -> None:
        settings = self.settings
        env = self.env = load_environment(settings.environment)
        if settings.state is not None and not env.stateful:
            # Refuse now, not at shutdown when the state could not be saved.
            raise DaemonStartError(
                f"--state {settings.state}: the {settings.environment} environment keeps its "
                "state in the cluster, not in a file; run without --state")
        if settings.time_scale != 1.0 and not env.virtual_clock:
            raise DaemonStartError(
                f"--time-scale {settings.time_scale:g}: the {settings.environment} environment "
                "runs on real time, which cannot be scaled; run without --time-scale")
        if settings.state is not None and settings.state.exists():
            env.load_state(settings.state)
        apply_inputs(env.backend, self.objects)
        data_dir = self._data_dir()

        self.artifacts = ArtifactServer(
            CountingArtifactStore(data_dir / "artifacts", self.metrics),
            settings.artifacts_listen.host, settings.artifacts_listen.port)
        try:
            self.artifacts.start()
        except OSError as exc:
            raise DaemonStartError(
                f"cannot serve artifacts on {settings.artifacts_listen}: {exc.strerror} "
                "(choose another address with --artifacts-listen)") from exc
        self._stack.callback(self.artifacts.stop)
        sources = SourceSettings(
            artifact_root=data_dir / "artifacts", workdir=data_dir / "git",
            artifact_base_url=settings.artifacts_url or self.artifacts.base_url,
            # Never local paths or file:// in the daemon: they read any repository on the host.
            allow_local_urls=False)

        tracker = TrackingBackend(env.backend)
        product = product_controllers(tracker, env.clock, sources)
        controllers: list[Controller] = [InstrumentedController(c, self.metrics)
                                         for c in (*product, *env.controllers)]
        driver = RoundDriver(env, controllers, tracker, tracked=product, limits=self.limits)
        self._register_counters(product, driver)
        follower = ClockFollower(env, settings.time_scale)
        follower.align()
        kinds = watched_kinds(controllers)
        loop = self.loop = ReconcileLoop(env, driver, follower, self.metrics, self.health, kinds,
                                         settings.max_rounds_per_tick)

        self.operations = OperationsServer(
            self.metrics.registry, self.health, settings.listen.host, settings.listen.port,
            debug_objects=lambda query: loop.read(
                lambda: debug_document(env.backend, kinds, query)))
        self.operations.start()
        self._stack.callback(self.operations.stop)

        if settings.state is not None:
            self._stack.callback(self._save_state, env, settings.state)
        route_to_structlog("apscheduler")
        scheduler = BackgroundScheduler(timezone=UTC)
        scheduler.add_job(
            loop.tick, IntervalTrigger(seconds=settings.tick_seconds, timezone=UTC), id=JOB_ID,
            name="reconcile tick", next_run_time=datetime.now(UTC),
            # A tick longer than the interval delays the next one; missed ticks are not replayed.
            max_instances=1, coalesce=True, misfire_grace_time=None)
        scheduler.start()
        self._stack.callback(scheduler.shutdown, wait=True)
        self._stack.callback(self.health.stopping)
        # Run first on stop: the tick in progress ends after its current reconcile, so the
        # scheduler's shutdown (which waits for it) is prompt.
        self._stack.callback(loop.request_stop)
        log.info("daemon started", environment=settings.environment,
                 metrics=f"{self.operations.url}/metrics",
                 artifacts=sources.artifact_base_url, data_dir=str(data_dir),
                 tick_seconds=settings.tick_seconds, time_scale=settings.time_scale)

    def _data_dir(self) -> Path:
        chosen = self.settings.resolved_data_dir
        if chosen is None:
            scratch = Path(tempfile.mkdtemp(prefix="reconciler-daemon-"))
            self._stack.callback(shutil.rmtree, scratch, ignore_errors=True)
            return scratch
        try:
            chosen.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DaemonStartError(
                f"cannot use data directory {chosen}: {exc.strerror}") from exc
        return chosen

    def _register_counters(self, product: Sequence[Controller], driver: RoundDriver) -> None:
        gits = [c.git for c in product if isinstance(c, GitRepositoryReconciler)]
        self.metrics.registry.register(CallbackCounters([
            CallbackCounter("reconciler_git_ls_remote_calls",
                            "git ls-remote calls made by the GitRepository controller.",
                            lambda: sum(g.ls_remote_calls for g in gits)),
            CallbackCounter("reconciler_git_fetch_calls",
                            "git fetches made by the GitRepository controller.",
                            lambda: sum(g.fetch_calls for g in gits)),
            CallbackCounter("reconciler_reconcile_skipped",
                            "Reconciles skipped because nothing the object's last reconcile "
                            "read has changed and no wake-up is due.",
                            lambda: driver.skipped),
        ]))

    @staticmethod
    def _save_state(env: Environment, path: Path) -> None:
        env.save_state(path)
        log.info("state saved", path=str(path))


def run_daemon(objects: Sequence[LoadedObject], settings: DaemonSettings) -> None:
    """Run until SIGTERM or SIGINT, then stop gracefully; must be called on the main thread."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("shutting down", signal=signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with Daemon(objects, settings):
            stop.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
