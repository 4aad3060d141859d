"""The daemon's driver: one work queue per product controller, fed by the cluster's changes.

Like controller-runtime's manager, each controller has its own queue of keys (group, kind,
namespace, name) and a pool of `concurrent` workers. Producers are the environment's change
notifications, one per changed object: the simulator's cluster listeners, `KubernetesBackend`'s
informers. A change of an object enqueues
- its own key, for every controller that watches its kind;
- the key of every object whose last reconcile read it (by name, or by listing its kind):
  read tracking (`engine/tracking.DependencyIndex`) on keys rather than on a global revision;
except the key whose reconcile made the change (a reconcile does not wake itself up with its own
writes, as the round-based runner never did). A change made while a key is being reconciled by
another thread, to something that reconcile read, enqueues it again after it finishes (the
queue's dirty mark), so no change is lost to a race.

A worker gets the object (gone: its key is forgotten), reconciles it with `reconcile_once` (the
same as `simulate`'s rounds) and steers the key by the outcome: success forgets its backoff and
adds it after its requeue, if any; an error or a crash backs off per key, exponentially, within
the queue's token bucket; `Waiting` comes back after its own delay; `Stalled` waits for a change.
So an object is reconciled when it, or anything its last reconcile read, changed, or when its
requeue is due, and otherwise never.

Delayed adds wait in each queue's delay heap on the environment's clock; `pump` (the daemon's
tick) moves the due ones to their queues. The simulated controllers (kpack, Knative, Tekton, the
kube-controller-manager's share) still run in rounds on the virtual clock, from the tick, and
only when the cluster changed or one of them asked to be woken. The driver, told of each write
on the thread that made it, is the rounds' `WriteWitness`: a simulated controller is not offered
again for its own writes, but is for a write anyone else made while it ran.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import structlog

from reconciler.engine.runner import ObjKey, Observer, RoundDriver, RoundsReport, reconcile_once
from reconciler.engine.tracking import (
    Dependency,
    DependencyIndex,
    TrackingBackend,
    dependencies_of_change,
)
from reconciler.model.errors import BackendError
from reconciler.model.labelsets import LabelSet, label_pairs
from reconciler.model.limits import DEFAULT_LIMITS, Limits
from reconciler.model.objects import GroupVersionKind, Obj
from reconciler.runtime.clock import Clock
from reconciler.runtime.controller import Controller, ReconcileFailure, forget_object
from reconciler.runtime.outcome import Next
from reconciler.runtime.ratelimit import ExponentialBackoff, MaxOf, TokenBucket
from reconciler.runtime.workers import WorkerPool
from reconciler.runtime.workqueue import QueueMetrics, WorkQueue

log = structlog.get_logger(__name__)

QueueKey = tuple[str, str, str, str, str]  # controller name, group, kind, namespace, name


@runtime_checkable
class ObjectChanges(Protocol):
    """The simulator's cluster: `listener(type, obj, before)` after every write."""

    def add_listener(self, listener: Callable[[str, Obj, Obj | None], None]) -> None: ...


@runtime_checkable
class KeyChanges(Protocol):
    """`KubernetesBackend`: `listener(group, kind, namespace, name)` for every cache change."""

    def add_change_listener(self, listener: Callable[[str, str, str, str], None]) -> None: ...


class Names(Protocol):
    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None: ...

    def names(self, api_version: str, kind: str) -> list[tuple[str, str]]: ...


@dataclass(frozen=True)
class QueueSettings:
    concurrent: int = 4
    retry_base_seconds: float = 5.0
    retry_max_seconds: float = 300.0
    qps: float = 10.0
    burst: int = 100


@dataclass
class _Controlled:
    controller: Controller
    queue: WorkQueue[ObjKey]
    kinds: dict[tuple[str, str], str]  # (group, kind) -> apiVersion to read it with
    failures: dict[ObjKey, ReconcileFailure] = field(default_factory=dict)
    pool: WorkerPool[ObjKey] | None = None


class QueueDriver:
    def __init__(
        self,
        backend: Names,
        tracker: TrackingBackend,
        controllers: Sequence[Controller],
        clock: Clock,
        settings: QueueSettings = QueueSettings(),
        limits: Limits = DEFAULT_LIMITS,
        observe: Observer | None = None,
        queue_metrics: Callable[[str], QueueMetrics] | None = None,
        rounds: RoundDriver | None = None,
        owns: Callable[[Obj], bool] | None = None,
    ) -> None:
        self._backend, self._tracker, self._limits = backend, tracker, limits
        self._observe = observe
        self._owns = owns
        """Which objects this replica reconciles (`--shard`: `ShardFilter.owns`); None: all."""
        self.not_owned = 0
        """Keys skipped because another shard owns the object."""
        self._started = False
        self.rounds = rounds
        """The simulated controllers' rounds on virtual time (None on a real cluster)."""
        self.index = DependencyIndex()
        self._lock = threading.Lock()
        self._local = threading.local()
        self._in_flight: dict[QueueKey, set[Dependency]] = {}
        self._reconciles = 0
        self.changes = 0
        """Change notifications received (a gauge refresh is due when it moved)."""
        self.own_changes = 0
        """Changes a reconcile made to what it reads itself: no reason to run it again."""
        self._stop = threading.Event()
        self._controllers: dict[str, _Controlled] = {}
        self._watchers: dict[tuple[str, str], list[str]] = {}
        bucket = TokenBucket(settings.qps, settings.burst, clock.now)
        for controller in controllers:
            limiter = MaxOf(ExponentialBackoff(settings.retry_base_seconds,
                                               settings.retry_max_seconds), bucket)
            queue: WorkQueue[ObjKey] = WorkQueue(
                controller.name, clock.now, limiter,
                queue_metrics(controller.name) if queue_metrics is not None else None)
            kinds: dict[tuple[str, str], str] = {}
            for api_version, kind in controller.watches():
                group = GroupVersionKind.parse(api_version, kind).group
                kinds.setdefault((group, kind), api_version)
                self._watchers.setdefault((group, kind), []).append(controller.name)
            controlled = _Controlled(controller, queue, kinds)
            controlled.pool = WorkerPool(queue, self._processor(controlled),
                                         settings.concurrent)
            self._controllers[controller.name] = controlled

    @property
    def queues(self) -> list[WorkQueue[ObjKey]]:
        return [c.queue for c in self._controllers.values()]

    @property
    def reconciles(self) -> int:
        """Reconciles done so far, the simulated controllers' rounds included."""
        with self._lock:
            done = self._reconciles
        return done + (self.rounds.reconciles if self.rounds is not None else 0)

    @property
    def product_reconciles(self) -> int:
        with self._lock:
            return self._reconciles

    # --- producers ------------------------------------------------------------------------

    def subscribe(self, source: object) -> None:
        """Listen to `source`'s changes (the environment's backend); raises TypeError when it
        gives none."""
        labelled = getattr(source, "add_labelled_change_listener", None)
        if callable(labelled):  # KubernetesBackend: keys with the labels their objects carried
            labelled(self.changed)
        elif isinstance(source, KeyChanges):
            source.add_change_listener(self.changed)
        elif isinstance(source, ObjectChanges):
            source.add_listener(self._object_changed)
            if self.rounds is not None:
                # Told on the writing thread: the rounds can tell a simulated controller's own
                # writes from the workers' (and not offer it again for its own).
                self.rounds.watch_writes(self)
        else:
            raise TypeError(f"{type(source).__name__} gives no change notifications")

    def writes_here(self) -> int:
        """Writes to the subscribed simulated cluster made so far on the calling thread (its
        listeners are called on the writing thread), Events not counted: `WriteWitness` for
        the rounds."""
        writes: int = getattr(self._local, "writes", 0)
        return writes

    def _object_changed(self, type_: str, obj: Obj, before: Obj | None) -> None:
        meta = obj.get("metadata") or {}
        kind = str(obj.get("kind"))
        if kind != "Event":
            # Counted as the revision counts: the cluster keeps Events apart from its change
            # feed (their writes move no revision), so one here would make a foreign write
            # in the same window look like the reconcile's own.
            self._local.writes = getattr(self._local, "writes", 0) + 1
        group = GroupVersionKind.parse(str(obj.get("apiVersion")), kind).group
        self.changed(group, kind, str(meta.get("namespace") or ""), str(meta.get("name")),
                     label_pairs(meta.get("labels"),
                                 ((before or {}).get("metadata") or {}).get("labels")))

    def changed(self, group: str, kind: str, namespace: str, name: str,
                pairs: LabelSet | None = None) -> None:
        """One object changed: enqueue its watchers' keys and the keys that read it (`pairs`:
        the labels it carried before or after the change; None when not known, and then
        every list by labels of its kind counts as having read it)."""
        deps = dependencies_of_change(group, kind, namespace, name)
        current: QueueKey | None = getattr(self._local, "key", None)
        with self._lock:
            self.changes += 1
            for key, seen in self._in_flight.items():
                if key != current:
                    seen.update(deps)
        targets: set[Any] = {(c, group, kind, namespace, name)
                             for c in self._watchers.get((group, kind), ())}
        targets |= self.index.readers_of_change(group, kind, namespace, name, pairs)
        for target in targets:
            if target == current:
                with self._lock:
                    self.own_changes += 1
                continue
            controlled = self._controllers.get(target[0])
            if controlled is not None:
                controlled.queue.add(target[1:])

    def enqueue_all(self) -> int:
        """Add every object of every watched kind (at start, as an informer's first list
        does); how many keys were added."""
        added = 0
        for controlled in self._controllers.values():
            for (group, kind), api_version in controlled.kinds.items():
                try:
                    names = self._backend.names(api_version, kind)
                except BackendError as exc:
                    log.info("kind not served yet; its objects are queued when they appear",
                             kind=kind, error=str(exc))
                    continue
                for namespace, name in names:
                    controlled.queue.add((group, kind, namespace, name))
                    added += 1
        return added

    # --- workers --------------------------------------------------------------------------

    def warm(self) -> None:
        """List every watched kind without queueing anything (a standby's informers start and
        stay current, so it takes over with full caches)."""
        for controlled in self._controllers.values():
            for (_, kind), api_version in controlled.kinds.items():
                try:
                    self._backend.names(api_version, kind)
                except BackendError as exc:
                    log.info("kind not served yet", kind=kind, error=str(exc))

    def start(self) -> None:
        """Start the workers (once; later calls do nothing)."""
        with self._lock:
            if self._started or self._stop.is_set():
                return
            self._started = True
        for controlled in self._controllers.values():
            assert controlled.pool is not None
            controlled.pool.start()

    @property
    def started(self) -> bool:
        """Whether the workers run (a standby's do not)."""
        return self._started

    def _processor(self, controlled: _Controlled) -> Callable[[ObjKey], None]:
        return lambda key: self._process(controlled, key)

    def _process(self, controlled: _Controlled, key: ObjKey) -> None:
        group, kind, namespace, name = key
        qkey: QueueKey = (controlled.controller.name, *key)
        obj = self._backend.get(controlled.kinds[(group, kind)], kind, namespace, name)
        if obj is None or (self._owns is not None and not self._owns(obj)):
            # Deleted, or another shard's (relabelled away): nothing to reconcile, nothing to
            # remember, and nothing to clean up or prune for it either.
            if obj is not None:
                with self._lock:
                    self.not_owned += 1
                log.debug("skipped: another shard's", kind=kind, namespace=namespace, name=name)
            self.index.forget(qkey)
            controlled.queue.forget(key)
            controlled.failures.pop(key, None)
            forget_object(controlled.controller, namespace, name)
            return
        self._local.key = qkey
        with self._lock:
            self._in_flight[qkey] = set()
        try:
            attempt = reconcile_once(controlled.controller, obj, key, self._tracker,
                                     self._limits, controlled.failures.get(key), self._observe)
            # Its reads are recorded before the key leaves `_in_flight`: a change arriving in
            # between is then seen either way, in `seen` or by `readers_of_change`.
            self.index.record(qkey, attempt.reads)
        finally:
            self._local.key = None
            with self._lock:
                seen = self._in_flight.pop(qkey, set())
                self._reconciles += 1
        log.debug("reconciled", controller=controlled.controller.name, kind=kind,
                  namespace=namespace, name=name, result=str(attempt.outcome.result))
        if attempt.failure is not None:
            controlled.failures[key] = attempt.failure
        else:
            controlled.failures.pop(key, None)
        queue, outcome = controlled.queue, attempt.outcome
        if outcome.next is Next.BACKOFF:
            queue.add_rate_limited(key)
        elif outcome.next is Next.RETRY_AFTER:
            queue.add_after(key, outcome.after or 0.0)
        else:
            queue.forget(key)
            if outcome.next is Next.FORGET and outcome.after is not None:
                queue.add_after(key, outcome.after)
        # A list by labels read during the reconcile counts as its kind's list here (whose
        # changes `seen` has): again when it may have changed, never wrongly not.
        read = {("kind", d[1], d[2], d[3], "") if d[0] == "labels" else d for d in attempt.reads}
        if seen & (read | {("key", *key)}):
            queue.add(key)  # changed under it by someone else: again, once it is done

    # --- the tick's side ------------------------------------------------------------------

    def pump(self) -> int:
        """Move every due delayed key to its queue; how many."""
        return sum(c.queue.pump() for c in self._controllers.values())

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for every queue to have nothing ready or in flight."""
        deadline = time.monotonic() + timeout
        for controlled in self._controllers.values():
            if not controlled.queue.wait_idle(max(deadline - time.monotonic(), 0.0)):
                return False
        return all(c.queue.idle() for c in self._controllers.values())

    def next_due(self) -> float | None:
        dues = [d for c in self._controllers.values() if (d := c.queue.next_due()) is not None]
        return min(dues) if dues else None

    def run_rounds(self, max_rounds: int) -> RoundsReport | None:
        """The simulated controllers' rounds at the current virtual time, if any."""
        if self.rounds is None or self._stop.is_set():
            return None
        return self.rounds.run_to_fixed_point(max_rounds)

    def request_stop(self) -> None:
        """Hand out no more keys, start no more rounds; reconciles in flight finish."""
        self._stop.set()
        if self.rounds is not None:
            self.rounds.request_stop()
        for controlled in self._controllers.values():
            controlled.queue.shutdown()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def shutdown(self, timeout: float) -> bool:
        """Stop and wait up to `timeout` seconds for the reconciles in flight; whether they all
        finished."""
        self.request_stop()
        deadline = time.monotonic() + timeout
        finished = True
        for controlled in self._controllers.values():
            if controlled.pool is not None:
                left = max(deadline - time.monotonic(), 0.0)
                finished = controlled.pool.shutdown(left) and finished
        return finished
