"""The daemon's lifecycle: start everything in order, run until signalled, stop in reverse.

Start: load the environment (and `--state`), apply the input objects, start the artifact server
(its real URL goes into `status.artifact.url`), wire the product's controllers to one work
queue each (`manager.QueueDriver`, `--concurrent` workers per queue) fed by the environment's
change notifications, queue every watched object once, start the operations server and the
APScheduler job that ticks every `tick_seconds` (`loop.QueueLoop`: the virtual clock, the
simulated controllers' rounds, due requeues, gauges).
Stop (SIGTERM/SIGINT, or leaving the `with` block): the queues hand out no more keys, readiness
goes false, the scheduler stops, the reconciles in flight finish (each bounded by
`Limits.reconcile_seconds`), `--state` is saved, then the servers stop. A start that fails half
way stops what it had started.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import structlog
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from reconciler.backends.base import Backend
from reconciler.daemon.artifacts import CountingArtifactStore
from reconciler.daemon.assembly import assemble
from reconciler.daemon.clock import ClockFollower
from reconciler.daemon.debug import debug_document
from reconciler.daemon.leadership import Leadership
from reconciler.daemon.locked import LockedBackend
from reconciler.daemon.loop import QueueLoop
from reconciler.daemon.manager import QueueDriver, QueueSettings
from reconciler.engine.runner import Environment
from reconciler.engine.tracking import TrackingBackend
from reconciler.engine.wiring import load_environment
from reconciler.ha.election import DEFAULT_LEASE_NAME, ElectionConfig, in_cluster_namespace
from reconciler.ha.gate import LeaderGatedBackend
from reconciler.ha.lease import LeaseStore
from reconciler.ha.shard import ShardFilter, lease_name
from reconciler.loader import LoadedObject
from reconciler.model.errors import InputError, ReconcilerError
from reconciler.model.limits import DEFAULT_LIMITS, Limits
from reconciler.notification.metrics import ReceiverMetrics
from reconciler.notification.server import ReceiverServer
from reconciler.observability.endpoints import OperationsServer
from reconciler.observability.health import HealthState
from reconciler.observability.metrics import (
    CallbackCounter,
    CallbackCounters,
    ReconcilerMetrics,
    watched_kinds,
)
from reconciler.observability.stdlib_logs import route_to_structlog
from reconciler.portal.app import Portal, read_token
from reconciler.portal.http import serve_request
from reconciler.runtime.clock import SystemClock
from reconciler.runtime.controller import Controller
from reconciler.runtime.gctuning import tune_after_load
from reconciler.runtime.jitter import check_percentage
from reconciler.settings import DaemonSettings, KubernetesSettings, OwnerSettings, SourceSettings
from reconciler.simulation import apply_inputs
from reconciler.sources.git import GitRepositoryController
from reconciler.sources.server import ArtifactServer

log = structlog.get_logger(__name__)

JOB_ID = "reconcile"
REREAD_SECONDS = 1.0
"""How often `reconciler run` checks its input files for changes (`Daemon.reread`)."""

EXIT_LEADERSHIP_LOST = 1
"""`reconciler run`'s exit status after losing the leader election Lease (the kubelet restarts
the pod, which comes back as a standby)."""


class DaemonStartError(ReconcilerError):
    """The daemon could not start (an address in use, an unusable data directory)."""


class Daemon:
    """Use as a context manager: entering starts the daemon, leaving stops it."""

    def __init__(self, objects: Sequence[LoadedObject], settings: DaemonSettings,
                 limits: Limits = DEFAULT_LIMITS,
                 kubernetes: KubernetesSettings | None = None,
                 reread: Callable[[], Sequence[LoadedObject] | None] | None = None,
                 owners: OwnerSettings | None = None) -> None:
        self.objects = objects
        self.reread = reread
        """Called every `REREAD_SECONDS`: the input files' objects when they changed, else None
        (`reconciler run` passes one; raises InputError for a file that no longer loads)."""
        self.settings = settings
        self.limits = limits
        self.kubernetes = kubernetes
        self.owners = owners
        """The owner controllers' settings (the tree's `owners` group; None: the defaults)."""
        self.metrics = ReconcilerMetrics()
        self.health = HealthState(settings.stall_after_seconds)
        self._stack = contextlib.ExitStack()
        self.env: Environment | None = None
        self.controllers: list[Controller] = []
        """The product's controllers, as the queue driver runs them (once started)."""
        self.loop: QueueLoop | None = None
        self.operations: OperationsServer | None = None
        self.artifacts: ArtifactServer | None = None
        self.webhooks: ReceiverServer | None = None
        self.leadership: Leadership | None = None
        self.portal: Portal | None = None
        self.stop_requested = threading.Event()
        """Set by a signal, or by losing leadership: the caller leaves the `with` block."""

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
        env = self.env = load_environment(settings.environment, self.kubernetes)
        if settings.state is not None and not env.stateful:
            # Refuse now, not at shutdown when the state could not be saved.
            raise DaemonStartError(
                f"--state {settings.state}: the {settings.environment} environment keeps its "
                "state in the cluster, not in a file; run without --state")
        if settings.time_scale != 1.0 and not env.virtual_clock:
            raise DaemonStartError(
                f"--time-scale {settings.time_scale:g}: the {settings.environment} environment "
                "runs on real time, which cannot be scaled; run without --time-scale")
        select = getattr(env.backend, "select_informers", None)
        if callable(select):
            # Sharding at the watch: the owners' informers list and watch with this replica's
            # label selector, so its caches hold only its own owners; the queue driver's
            # `owns` stays as a second guard (and is the only one on the simulator).
            select(self._shard().selector_for)
        if settings.state is not None and settings.state.exists():
            env.load_state(settings.state)
        if not settings.leader_elect:
            apply_inputs(env.backend, self.objects)  # a standby writes nothing: on leading
        # The state and inputs are in memory for the process's life: frozen, never rescanned.
        tune_after_load(freeze=True)
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
            allow_local_urls=False,
            interval_jitter=check_percentage(settings.interval_jitter_percentage))

        # A cluster that is not thread-safe (the simulator's) is called under one lock.
        locked = LockedBackend(env.backend, serialize=not getattr(env.backend, "thread_safe",
                                                                  False))
        tracker = TrackingBackend(locked)
        shard = self._shard()
        leadership = self.leadership = self._leadership(env)
        # Under --leader-elect every controller writes through the gate: only the leader may.
        writer = (LeaderGatedBackend(tracker, leadership.is_leader) if leadership is not None
                  else tracker)
        assembly = assemble(
            env, locked, tracker, writer, sources,
            QueueSettings(settings.concurrent, settings.retry_base_seconds,
                          settings.retry_max_seconds, settings.requeue_qps,
                          settings.requeue_burst),
            self.limits, self.metrics, owns=shard.owns, owners=self.owners)
        driver, product, gits = assembly.driver, assembly.product, assembly.gits
        self.controllers = product
        try:
            driver.subscribe(env.backend)
        except TypeError as exc:
            raise DaemonStartError(
                f"the {settings.environment} environment cannot run the daemon: {exc}") from exc
        # reconciler_resource_info: the managed objects listed once, then their changes.
        self.metrics.resource_info.track(env.backend, locked)
        follower = ClockFollower(env, settings.time_scale)
        with locked.lock:
            follower.align()
        kinds = watched_kinds([*product, *env.controllers])
        loop = self.loop = QueueLoop(env, driver, follower, self.metrics, self.health, kinds,
                                         settings.max_rounds_per_tick, locked,
                                         idle_wait=self.limits.reconcile_seconds,
                                         tick_seconds=settings.tick_seconds)
        self._register_counters(gits, loop)

        # The portal reads as /debug/objects does (under the loop's read lock), is fed by the
        # same change notifications as the work queues, and acts (when allowed) as a controller.
        portal = self.portal = Portal(locked, loop.read, actions=settings.portal_actions,
                                      writer=writer, hosts=settings.portal_hosts,
                                      token=read_token(settings.portal_token_file))
        portal.attach(env.backend)
        self.operations = OperationsServer(
            self.metrics.registry, self.health, settings.listen.host, settings.listen.port,
            debug_objects=lambda query: loop.read(
                lambda: debug_document(locked, kinds, query)),
            ui=lambda handler: serve_request(portal, handler))
        self.operations.start()
        self._stack.callback(self.operations.stop)
        self._stack.callback(portal.close)  # first: the open event streams end
        self._start_webhooks(env, locked)

        if settings.state is not None:
            self._stack.callback(self._save_state, env, settings.state)
        if leadership is None:
            queued = driver.enqueue_all()
            driver.start()
        else:
            # A standby: informers warm, no worker, nothing queued until it leads.
            driver.warm()
            queued = 0

            def start_work() -> None:
                try:
                    apply_inputs(writer, self.objects)
                except ReconcilerError as exc:
                    log.error("cannot apply the inputs; reconciling what is there", error=str(exc))
                added = driver.enqueue_all()
                driver.start()
                log.info("workers started", queued=added)

            leadership.start(start_work)
            # Runs after the drain below: workers stop first, then the Lease is released.
            self._stack.callback(leadership.stop)
        # Runs after the scheduler's shutdown and before the state is saved: the reconciles in
        # flight finish (each within its deadline).
        self._stack.callback(self._drain, driver, self.limits.reconcile_seconds + 1.0)
        route_to_structlog("apscheduler")
        scheduler = BackgroundScheduler(timezone=UTC)
        scheduler.add_job(
            loop.tick, IntervalTrigger(seconds=settings.tick_seconds, timezone=UTC), id=JOB_ID,
            name="reconcile tick", next_run_time=datetime.now(UTC),
            # A tick longer than the interval delays the next one; missed ticks are not replayed.
            max_instances=1, coalesce=True, misfire_grace_time=None)
        if self.reread is not None:
            scheduler.add_job(
                lambda: self._apply_changed_inputs(writer),
                IntervalTrigger(seconds=REREAD_SECONDS, timezone=UTC), id="inputs",
                name="re-read input files", max_instances=1, coalesce=True,
                misfire_grace_time=None)
        if settings.state is not None and settings.state_save_seconds > 0:
            checkpoint = _Checkpoint(env, settings.state)
            scheduler.add_job(
                lambda: loop.read(checkpoint.save_if_changed),
                IntervalTrigger(seconds=settings.state_save_seconds, timezone=UTC),
                id="state-checkpoint", name="state checkpoint", max_instances=1,
                coalesce=True, misfire_grace_time=None)
        scheduler.start()
        self._stack.callback(scheduler.shutdown, wait=True)
        self._stack.callback(self.health.stopping)
        # Run first on stop: the queues hand out nothing more and the tick in progress returns,
        # so the scheduler's shutdown (which waits for it) is prompt.
        self._stack.callback(loop.request_stop)
        log.info("daemon started", environment=settings.environment,
                 metrics=f"{self.operations.url}/metrics",
                 artifacts=sources.artifact_base_url, data_dir=str(data_dir),
                 tick_seconds=settings.tick_seconds, time_scale=settings.time_scale,
                 concurrent=settings.concurrent, queued=queued,
                 webhooks=self.webhooks.url if self.webhooks is not None else None,
                 shard=settings.shard,
                 lease=(f"{leadership.config.namespace}/{leadership.config.name}"
                        if leadership is not None else None))

    def _apply_changed_inputs(self, writer: Backend) -> None:
        """Apply the input files again when they changed (an object taken out of them stays
        in the cluster, as with `kubectl apply`); a standby only remembers them for when it
        leads, and files that no longer load leave the cluster as it is."""
        assert self.reread is not None
        try:
            objects = self.reread()
            if objects is None:
                return
            self.objects = objects
            if self.leadership is not None and not self.leadership.is_leader():
                return
            apply_inputs(writer, objects)
        except ReconcilerError as exc:
            log.error("input files changed but cannot be applied; the cluster keeps what it "
                      "has", error=str(exc))
            return
        log.info("input files changed: applied again", objects=len(objects))

    def _shard(self) -> ShardFilter:
        try:
            return ShardFilter(self.settings.shard)
        except ValueError as exc:
            raise InputError(f"--shard: {exc}") from exc

    def _leadership(self, env: Environment) -> Leadership | None:
        settings = self.settings
        if not settings.leader_elect:
            return None
        leases = getattr(env.backend, "leases", None)
        if not callable(leases):
            raise DaemonStartError(f"--leader-elect: the {settings.environment} environment "
                                   "has no Leases to elect a leader on")
        namespace = settings.leader_election_namespace or in_cluster_namespace()
        if not namespace:
            raise InputError("--leader-elect outside a cluster needs "
                             "--leader-election-namespace (the Lease's namespace)")
        try:
            config = ElectionConfig(
                namespace=namespace,
                name=settings.lease_name or lease_name(DEFAULT_LEASE_NAME, settings.shard),
                lease_duration=settings.lease_duration_seconds,
                renew_deadline=settings.renew_deadline_seconds,
                retry_period=settings.retry_period_seconds)
        except ValueError as exc:
            raise InputError(f"--leader-elect: {exc}") from exc
        store: LeaseStore = leases()

        def lost(reason: str) -> None:
            if self.loop is not None:
                self.loop.request_stop()  # no new reconcile; the gate already refuses writes
            self.stop_requested.set()

        # The Lease is judged on the wall clock, whatever the environment's clock is.
        return Leadership(store, config, SystemClock(), self.metrics.registry,
                          on_lost=lost)

    def _start_webhooks(self, env: Environment, locked: LockedBackend) -> None:
        listen = self.settings.webhook_listen
        if listen is None:
            return
        lock = locked.lock

        def guard(work: Callable[[], Any]) -> Any:
            with lock:  # the simulator's cluster is not thread-safe; a real one: no lock
                return work()

        self.webhooks = ReceiverServer(
            env.backend, env.clock, listen.host, listen.port,
            metrics=ReceiverMetrics(self.metrics.registry),
            no_cross_namespace_refs=self.settings.no_cross_namespace_refs, guard=guard)
        try:
            self.webhooks.start()
        except OSError as exc:
            raise DaemonStartError(
                f"cannot serve webhooks on {listen}: {exc.strerror} "
                "(choose another address with --webhook-listen)") from exc
        self._stack.callback(self.webhooks.stop)

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

    def _register_counters(self, gits: Sequence[GitRepositoryController],
                           loop: QueueLoop) -> None:
        self.metrics.registry.register(CallbackCounters([
            CallbackCounter("reconciler_git_ls_remote_calls",
                            "git ls-remote calls made by the GitRepository controller.",
                            lambda: sum(g.ls_remote_calls for g in gits)),
            CallbackCounter("reconciler_git_fetch_calls",
                            "git fetches made by the GitRepository controller.",
                            lambda: sum(g.fetch_calls for g in gits)),
            CallbackCounter("reconciler_reconcile_skipped",
                            "Per tick, objects the controllers watch that it did not reconcile "
                            "(nothing they read changed and no requeue was due).",
                            lambda: loop.skipped),
        ]))

    @staticmethod
    def _drain(driver: QueueDriver, timeout: float) -> None:
        if not driver.shutdown(timeout):
            log.warning("reconciles still running at shutdown were abandoned",
                        waited_seconds=timeout)
        else:
            log.debug("work queues drained")

    @staticmethod
    def _save_state(env: Environment, path: Path) -> None:
        env.save_state(path)
        log.info("state saved", path=str(path))


class _Checkpoint:
    """Saves `--state` while the daemon runs, when the cluster changed since the last save."""

    def __init__(self, env: Environment, path: Path) -> None:
        self.env, self.path = env, path
        self._saved: int | None = None

    def save_if_changed(self) -> None:
        revision = self.env.revision()
        if revision == self._saved:
            return
        try:
            self.env.save_state(self.path)
        except (OSError, ReconcilerError) as exc:
            log.error("cannot save the state; will retry", path=str(self.path), error=str(exc))
            return
        self._saved = revision
        log.debug("state saved", path=str(self.path), revision=revision)


def run_daemon(objects: Sequence[LoadedObject], settings: DaemonSettings, *,
               limits: Limits = DEFAULT_LIMITS,
               kubernetes: KubernetesSettings | None = None,
               reread: Callable[[], Sequence[LoadedObject] | None] | None = None,
               owners: OwnerSettings | None = None) -> int:
    """Run until SIGTERM or SIGINT, then stop gracefully; must be called on the main thread.
    The exit status: 0, or `EXIT_LEADERSHIP_LOST` when the leader election Lease was lost.
    `reread`: see `Daemon.reread`."""
    daemon = Daemon(objects, settings, limits, kubernetes, reread, owners)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("shutting down", signal=signal.Signals(signum).name)
        daemon.stop_requested.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with daemon:
            daemon.stop_requested.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if daemon.leadership is not None and daemon.leadership.lost is not None:
        log.error("exiting: leadership lost", reason=daemon.leadership.lost)
        return EXIT_LEADERSHIP_LOST
    return 0
