"""Driving controllers to a fixed point on a clock that can be advanced (the simulator's).

A round offers every object each controller watches to that controller. With a `TrackingBackend`
and a backend that keeps a change feed, an object is reconciled only when it is new, it or one of
the objects its last reconcile read changed since, or the wake-up it asked for is due; otherwise
every object is reconciled every round. A reconcile's own writes do not offer its object again
(`_Scheduler._offer`; a controller with more to do asks for it with a requeue). Rounds repeat
while the cluster keeps changing; once a round changes nothing, time jumps to the earliest
wake-up a controller asked for. The run ends when it is settled, nothing is left to wait for, or
the virtual-time budget is spent.

Settled means: a round changed nothing, the caller's `settled` test holds, and no work is in
flight within the budget, i.e. no controller (product or simulated) has a wake-up due before the
budget ends other than a periodic `Resync`, and no failed reconcile is waiting for its retry.

Each reconcile runs through `reconcile_once`, which the daemon's work queue shares: under
`deadline_scope(limits.reconcile_seconds)`, its reads tracked, and its ending classified by
`reconciler.runtime.outcome.classify` (the result label, and what follows: a `Transient` error,
a timeout or a crash backs off exponentially, `Waiting` retries after its own delay, `Stalled`
waits for a change). A failure is logged (a crash with its traceback, once per distinct crash
of an object) and counted in the report; the controller has already written the failure on the
object. A stop request (the daemon's shutdown) is honoured between reconciles.
"""

from __future__ import annotations

import contextvars
import heapq
import itertools
import os
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import structlog

from reconciler.backends.base import Backend
from reconciler.engine.tracking import (
    ChangeFeed,
    ChangeLog,
    Dependency,
    DependencyIndex,
    LabelledChange,
    LabelLog,
    ReadRecorder,
    TrackingBackend,
    changed_after,
)
from reconciler.model.conditions import find_condition
from reconciler.model.errors import ReconcilerError, without_tracebacks
from reconciler.model.limits import (
    DEFAULT_LIMITS,
    DeadlineExceeded,
    Limits,
    deadline_scope,
)
from reconciler.model.objects import GroupVersionKind, Obj, name_of, namespace_of
from reconciler.runtime.clock import Clock
from reconciler.runtime.controller import Controller, ReconcileFailure, Resync, forget_object
from reconciler.runtime.gctuning import sampled_young_collections
from reconciler.runtime.outcome import Next, Outcome, Result, classify
from reconciler.runtime.ratelimit import ExponentialBackoff

log = structlog.get_logger(__name__)

Observer = Callable[[str, Result, float], None]
"""Told of every reconcile: (controller name, result, seconds it took); the daemon's metrics."""


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
DEFAULT_BACKOFF = ExponentialBackoff(BACKOFF_BASE_SECONDS, BACKOFF_MAX_SECONDS)


def backoff(failures: int) -> float:
    """Seconds before the retry that follows `failures` consecutive failed reconciles."""
    return DEFAULT_BACKOFF.delay(failures)


ObjKey = tuple[str, str, str, str]  # group, kind, namespace, name
RecordKey = tuple[str, str, str, str, str]  # controller name, then the object's `ObjKey`


def object_key(api_version: str, obj: Obj) -> ObjKey:
    kind = str(obj.get("kind"))
    return (GroupVersionKind.parse(api_version, kind).group, kind, namespace_of(obj),
            name_of(obj))


class Attempt(NamedTuple):
    """One reconcile, as both drivers see it (a tuple: one is made per reconcile)."""

    outcome: Outcome
    failure: ReconcileFailure | None
    """How it failed, when it raised (what its status says)."""
    reads: set[Dependency]
    seconds: float


class _ReconcileIDs:
    """A unique UUID-shaped `reconcileID` per reconcile, as controller-runtime logs it, for a
    fraction of `uuid4`'s cost: 80 random bits drawn once per process (again after a fork),
    then a 48-bit count in the last group."""

    def __init__(self) -> None:
        self._draw()
        os.register_at_fork(after_in_child=self._draw)

    def _draw(self) -> None:
        self._prefix = str(uuid.uuid4())[:24]
        self._count = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._count) & 0xFFFFFFFFFFFF:012x}"


_reconcile_ids = _ReconcileIDs()


class _LogContext:
    """Binds a reconcile's log keys as `structlog.contextvars.bind_contextvars` does, through
    the context variables that call made for them the first time (structlog keeps one per key
    for the process): a reconcile binds four keys and resets them, so this spares it building
    and looking up four variable names twice."""

    KEYS = ("controller", "name", "namespace", "reconcileID")

    def __init__(self) -> None:
        self._vars: tuple[contextvars.ContextVar[Any], ...] | None = None

    def bind(self, *values: str) -> list[contextvars.Token[Any]]:
        """Tokens to reset, in `KEYS` order (`token.var.reset(token)`)."""
        found = self._vars
        if found is None:
            tokens = structlog.contextvars.bind_contextvars(**dict(zip(self.KEYS, values,
                                                                       strict=True)))
            self._vars = tuple(tokens[key].var for key in self.KEYS)
            return [tokens[key] for key in self.KEYS]
        return [var.set(value) for var, value in zip(found, values, strict=True)]


_log_context = _LogContext()


def reconcile_once(
    controller: Controller,
    obj: Obj,
    own: ObjKey,
    tracker: ReadRecorder | None,
    limits: Limits = DEFAULT_LIMITS,
    previous: ReconcileFailure | None = None,
    observe: Observer | None = None,
) -> Attempt:
    """Reconcile `obj` (whose key is `own`) once: under the per-reconcile deadline, its reads
    recorded through `tracker` (None: not tracked), its ending classified. Never raises a
    reconcile's exception: it is logged (a crash with its traceback, unless `previous` was the
    same crash) and returned as the attempt's failure."""
    _, kind, namespace, name = own
    failure: ReconcileFailure | None = None
    error: BaseException | None = None
    after: float | None = None
    if tracker is not None:
        tracker.begin()
    started = time.perf_counter()
    # Every line logged during this reconcile (here, in the controller, in what it calls)
    # carries these keys: controller-runtime's, for log pipelines built for it.
    bound = _log_context.bind(controller.name, name, namespace, _reconcile_ids.next())
    try:
        with deadline_scope(limits.reconcile_seconds) as deadline:
            after = controller.reconcile(obj)
            # A reconcile that never checked its deadline but overran it is not a success.
            # (`check_deadline`, with the message made only when it is needed.)
            if time.monotonic() > deadline.at:
                where = f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"
                raise DeadlineExceeded(deadline.seconds, f"reconciling {where}")
    except ReconcilerError as exc:
        error, failure = exc, ReconcileFailure.of(exc)
        log.warning("reconcile failed", controller=controller.name, object=(kind, namespace, name),
                    reason=failure.reason, error=str(exc),
                    timeout=isinstance(exc, DeadlineExceeded))
    except Exception as exc:
        # A bug in one reconcile must not stop every other object's: log it whole (once per
        # distinct crash of this object, not on every retry) and retry with backoff, as a
        # controller runtime recovers a panicking reconcile.
        error, failure = exc, ReconcileFailure.of(exc)
        if previous is not None and previous.crashed and previous.message == failure.message:
            log.error("reconcile crashed again", controller=controller.name,
                      object=(kind, namespace, name), error=failure.message)
        else:
            # The traceback as plain text: a console renderer that shows every frame's locals
            # would take seconds over a deep recursion or a large object.
            log.error("reconcile crashed", controller=controller.name,
                      object=(kind, namespace, name), error=failure.message,
                      traceback="".join(traceback.format_exception(exc)).rstrip())
    finally:
        for token in bound:
            token.var.reset(token)
        reads = tracker.end() if tracker is not None else None
    seconds = time.perf_counter() - started
    ready: str | None = None
    if reads is not None and error is None:
        status = reads.statuses.get(own)
        if status is None:
            found = obj.get("status")
            status = found if isinstance(found, dict) else {}
        conditions = status.get("conditions")
        cond = find_condition(conditions if isinstance(conditions, list) else None, "Ready")
        ready = str(cond.get("status")) if cond is not None else None
    outcome = classify(after, error, resync=isinstance(after, Resync), ready=ready)
    if error is not None:
        without_tracebacks(error)  # logged above; keeping it would keep this frame's cycle
    if observe is not None:
        observe(controller.name, outcome.result, seconds)
    # The recording is finished and no one else holds it: its set is handed over, not copied.
    return Attempt(outcome, failure, reads.dependencies if reads is not None else set(),
                   seconds)


class RunawayError(ReconcilerError):
    pass


class WriteWitness(Protocol):
    """Sees every write to the cluster on the thread that makes it (the daemon's `QueueDriver`,
    a listener of the simulated cluster): what tells a reconcile's own writes from anyone
    else's made while it ran."""

    def writes_here(self) -> int:
        """Writes made so far on the calling thread."""
        ...


@dataclass(slots=True)
class _Record:
    """What the scheduler keeps per object and controller (one per stored object and controller
    that watches it: slots, and its reads kept once, in the scheduler's `index`)."""

    revision: int  # changes after this cluster revision are news to it
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
    observe: Observer | None = None
    backoff: ExponentialBackoff = DEFAULT_BACKOFF

    recorded: frozenset[str] = frozenset()
    """Controllers that read the backend directly and are scheduled by the reads it records
    (the environment's simulated ones); any other untracked one is offered everything."""
    serial: bool = False
    """Nothing but the reconcile running writes to the cluster while it runs (`run_until_settled`
    drives its world alone, from one thread): every write in its window is its own."""
    witness: WriteWitness | None = None
    """Otherwise, what tells its own writes from others' (None: not known)."""
    _known: dict[str, int] = field(default_factory=dict)
    """Records per controller (what a round that offers fewer skipped)."""
    index: DependencyIndex = field(default_factory=DependencyIndex)
    """Which records read what: a change finds the objects to offer again."""
    _dues: list[tuple[float, tuple[str, str, str, str, str]]] = field(default_factory=list)
    """Wake-ups as a heap (entries a later offer replaced are skipped when they come up)."""
    _seen: int | None = None
    """The revision the last complete round began at; None: look at everything."""

    _controllers: dict[str, Controller] = field(default_factory=dict)
    """The controllers of the round running, by name (to tell one an object is gone)."""
    feed: ChangeFeed | None = None
    change_log: ChangeLog | None = None
    label_log: LabelLog | None = None
    recorder: ReadRecorder | None = None
    """The backend itself, when it records reads (the simulated cluster): the controllers that
    read it directly (the simulated ones) are scheduled by those reads."""

    def __post_init__(self) -> None:
        # Checked once: isinstance against a runtime protocol inspects every member each time.
        self.feed = self.backend if isinstance(self.backend, ChangeFeed) else None
        self.change_log = self.feed if isinstance(self.feed, ChangeLog) else None
        self.label_log = self.feed if isinstance(self.feed, LabelLog) else None
        self.recorder = self.backend if isinstance(self.backend, ReadRecorder) else None

    def stopping(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def run_round(self, controllers: Sequence[Controller]) -> None:
        """Offer each controller what it has to reconcile. The first round (and any after the
        change log stopped reaching back) looks at every object's name; later ones only at
        the objects that changed since the last round began, the objects whose last reconcile
        read one of them (`index`) and the wake-ups now due, so that a round costs what
        changed, not what exists. Either way `_dirty` has the last word."""
        self._controllers = {c.name: c for c in controllers}
        feed = self.feed
        begun = feed.revision if feed is not None else 0
        changes = self._changes_since(self._seen) if self._seen is not None else None
        self._seen = None  # until this round has run to its end
        if changes is None:
            self._full_round(controllers)
        else:
            self._changed_round(controllers, changes)
        if not self.stopping():
            self._seen = begun

    def _changes_since(self, revision: int) -> list[LabelledChange] | None:
        """The keys changed since `revision`, each with the labels it carried before or after
        (None when the feed does not say); None when the log does not reach back."""
        if self.label_log is not None:
            return self.label_log.labelled_changes_since(revision)
        if self.change_log is not None:
            keys = self.change_log.changes_since(revision)
            return None if keys is None else [(key, None) for key in keys]
        return None

    def _follows_changes(self, controller: Controller) -> tuple[bool, bool]:
        """(tracked, recorded): whether its reads are known, through the tracker or the
        backend itself."""
        tracked = self.tracker is not None and controller.name in self.tracked
        recorded = (not tracked and self.recorder is not None
                    and controller.name in self.recorded)
        return tracked, recorded

    def _changed_round(self, controllers: Sequence[Controller],
                       changes: Sequence[LabelledChange]) -> None:
        # Per controller, each candidate (its record's key) with the latest revision at which
        # something it read (or the object itself) changed: a candidate is offered when that
        # is after its record's revision. Found through the index, a list by labels counts
        # only the changes of objects its selector matched, where the feed's own test
        # (`changed_after`) counts every change of the kind: another Service's Revision does
        # not offer this Service again. Keys are records' keys throughout (controller first),
        # so that no key is taken apart and built again per candidate.
        candidates: dict[str, dict[RecordKey, int]] = {}
        watchers: dict[tuple[str, str], list[tuple[str, dict[RecordKey, int]]]] = {}
        for controller in controllers:
            tracked, recorded = self._follows_changes(controller)
            if tracked or recorded:
                mine = candidates.setdefault(controller.name, {})
                for api_version, kind in controller.watches():
                    group = GroupVersionKind.parse(api_version, kind).group
                    watchers.setdefault((group, kind), []).append((controller.name, mine))

        feed = self.feed
        assert isinstance(feed, ChangeLog) and feed is not None
        last_change = feed.last_change
        readers_of_change = self.index.readers_of_change

        def absorb(changed: Sequence[LabelledChange]) -> None:
            for (group, kind, namespace, name), pairs in changed:
                # (A log that names a key whose last change it cannot date: as of now.)
                changed_at = last_change(group, kind, namespace, name) or feed.revision
                for controller_name, mine in watchers.get((group, kind), ()):
                    key = (controller_name, group, kind, namespace, name)
                    if mine.get(key, -1) < changed_at:
                        mine[key] = changed_at
                for reader in readers_of_change(group, kind, namespace, name, pairs):
                    assert isinstance(reader, tuple)
                    mine = candidates.get(reader[0])
                    if mine is None:
                        mine = candidates[reader[0]] = {}
                    if mine.get(reader, -1) < changed_at:
                        mine[reader] = changed_at

        absorb(changes)
        cursor = feed.revision
        now = self.clock.now()
        dues = self._dues
        while dues and dues[0][0] <= now:
            _, due_key = heapq.heappop(dues)
            candidates.setdefault(due_key[0], {}).setdefault(due_key, 0)
        records = self.records
        stop = self.stop
        get = self.backend.get
        for controller in controllers:
            # What the controllers before this one changed in this round is its to see now,
            # as a full round would show it.
            if feed.revision != cursor:
                absorb(self._changes_since(cursor) or ())
                cursor = feed.revision
            tracked, recorded = self._follows_changes(controller)
            if not (tracked or recorded):
                present: set[tuple[str, str, str, str, str]] = set()
                if not self._list_and_offer(controller, tracked, present):
                    return
                for gone in [k for k in records if k[0] == controller.name
                             and k not in present]:
                    self._drop(gone)
                continue
            mine = candidates.get(controller.name, {})
            # The candidates of each watched kind, in the order the controller lists its
            # kinds, then by namespace and name (a candidate of a kind it does not watch is
            # not its to reconcile).
            by_kind: dict[tuple[str, str], list[RecordKey]] = {}
            for key in mine:
                by_kind.setdefault((key[1], key[2]), []).append(key)
            watched: dict[tuple[str, str], tuple[int, str]] = {
                (GroupVersionKind.parse(api_version, kind).group, kind): (i, api_version)
                for i, (api_version, kind) in enumerate(controller.watches())}
            known = self._known.get(controller.name, 0)
            offered = 0
            for kind_key, (_, api_version) in sorted(watched.items(), key=lambda w: w[1][0]):
                keys = by_kind.get(kind_key)
                if not keys:
                    continue
                keys.sort()
                for key in keys:
                    if stop is not None and stop.is_set():
                        return
                    # Offered when it has no record, its wake-up is due, or what it read (or
                    # it) changed after its record.
                    record = records.get(key)
                    if (record is not None and mine[key] <= record.revision
                            and not (record.due is not None
                                     and record.due <= self.clock.now())):
                        continue
                    found = get(api_version, key[2], key[3], key[4])
                    if found is None:  # gone: forget it
                        self._drop(key)
                        continue
                    offered += 1
                    self._offer(controller, tracked, api_version, found, recorded, key[1:], key)
            self.skipped += max(known - offered, 0)

    def _list_and_offer(self, controller: Controller, tracked: bool,
                        present: set[tuple[str, str, str, str, str]]) -> bool:
        """Offer every object of the controller's kinds, read by listing (a controller whose
        reads are not known); False when a stop cut it short."""
        for api_version, kind in controller.watches():
            group = GroupVersionKind.parse(api_version, kind).group
            for obj in self.backend.list(api_version, kind):
                if self.stopping():
                    return False
                present.add((controller.name, group, kind, namespace_of(obj), name_of(obj)))
                self._offer(controller, tracked, api_version, obj)
        return True

    def _full_round(self, controllers: Sequence[Controller]) -> None:
        feed = self.feed
        present: set[tuple[str, str, str, str, str]] = set()
        for controller in controllers:
            tracked, recorded = self._follows_changes(controller)
            if not ((tracked or recorded) and feed is not None):
                if not self._list_and_offer(controller, tracked, present):
                    return
                continue
            for api_version, kind in controller.watches():
                group = GroupVersionKind.parse(api_version, kind).group
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
                        self._offer(controller, tracked, api_version, found, recorded,
                                    (group, kind, namespace, name))
        # Forget objects that are gone, so a long-running daemon does not grow with every
        # object it has ever seen (and a deleted object's wake-up does not move the clock).
        for key in [k for k in self.records if k not in present]:
            self._drop(key)

    def _drop(self, key: tuple[str, str, str, str, str]) -> None:
        if self.records.pop(key, None) is not None:
            self._known[key[0]] -= 1
        self.index.forget(key)
        controller = self._controllers.get(key[0])
        if controller is not None:
            forget_object(controller, key[3], key[4])

    def _dirty(self, controller: Controller, own: Dependency) -> bool:
        record = self.records.get((controller.name, *own[1:]))
        feed = self.feed
        if record is None or feed is None or self._due(record):
            return True
        return changed_after(feed, {own, *self.index.reads((controller.name, *own[1:]))},
                             record.revision)

    def next_wakeup(self) -> float | None:
        dues = self._dues
        # The earliest entry that is still its record's wake-up (later offers leave stale ones).
        while dues:
            due, key = dues[0]
            record = self.records.get(key)
            if record is not None and record.due == due:
                return max(due - self.clock.now(), 0.0)
            heapq.heappop(dues)
        return None

    def in_flight_until(self, until: float) -> bool:
        """Whether work is in flight: a failed reconcile waiting for its retry (a `Stalled` one
        waits for a change instead), or a wake-up other than a periodic resync due by `until`."""
        return any(r.due is not None and (r.failure is not None
                                          or (not r.resync and r.due <= until))
                   for r in self.records.values())

    def failures(self) -> tuple[tuple[str, ReconcileFailure], ...]:
        failed = sorted((k, r.failure) for k, r in self.records.items() if r.failure is not None)
        return tuple((f"{k[0]}: {k[2]} {k[3] + '/' if k[3] else ''}{k[4]}", failure)
                     for k, failure in failed)

    def _offer(self, controller: Controller, tracked: bool, api_version: str, obj: Obj,
               recorded: bool = False, own_key: ObjKey | None = None,
               key: RecordKey | None = None) -> None:
        """`recorded`: the controller reads the backend directly, which records its reads.
        `own_key`: the object's key when the caller has it already (else read from `obj`);
        `key`: its record's key, (controller name, *own_key), when the caller has that too.

        Its record starts after its own writes, as a tracked controller's does: the simulated
        controllers write all they have to in one reconcile (a controller with more steps to
        take asks for its next one with a requeue), so a second offer for their own writes
        only finds nothing to do. A write by anyone else while it ran may have changed what it
        read after it read it: then its record starts before the reconcile, and whatever of its
        reads changed since offers it again. Who wrote is known when the driver is the only
        writer (`serial`) or from its `witness`; when it is not known, every write counts."""
        if own_key is None:
            own_key = object_key(api_version, obj)
        if key is None:
            key = (controller.name, *own_key)
        feed = self.feed
        records = self.records
        previous = records.get(key)
        started_at = feed.revision if feed is not None else 0
        witness = self.witness if recorded and not self.serial else None
        mine = witness.writes_here() if witness is not None else 0
        recorder = self.tracker if tracked else self.recorder if recorded else None
        attempt = reconcile_once(
            controller, obj, own_key, recorder, self.limits,
            previous.failure if previous is not None else None, self.observe)
        self.reconciles += 1
        revision = feed.revision if feed is not None else 0
        if recorded and revision != started_at and not self.serial and (
                witness is None or witness.writes_here() - mine != revision - started_at):
            revision = started_at
        outcome = attempt.outcome
        failures = previous.failures if previous is not None else 0
        after: float | None
        if outcome.next is Next.BACKOFF:
            failures += 1
            after = self.backoff.delay(failures)
        elif outcome.next is Next.RETRY_AFTER:
            after = outcome.after
        elif outcome.next is Next.STOP:
            failures, after = 0, None
        else:
            failures, after = 0, outcome.after
        if previous is None:
            self._known[key[0]] = self._known.get(key[0], 0) + 1
        due = self.clock.now() + after if after is not None else None
        records[key] = _Record(revision, due, outcome.resync, failures, attempt.failure)
        self.index.record(key, attempt.reads)
        if due is not None:
            heapq.heappush(self._dues, (due, key))

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
        observe: Observer | None = None,
    ) -> None:
        self._env = env
        self._controllers = list(controllers)
        self._stop = threading.Event()
        self._scheduler = _Scheduler(env.backend, tracker, env.clock,
                                     frozenset(c.name for c in tracked), limits=limits,
                                     stop=self._stop, observe=observe,
                                     recorded=frozenset(c.name for c in env.controllers))

    def watch_writes(self, witness: WriteWitness) -> None:
        """Tell the simulated controllers' own writes from others' by `witness` (the daemon's
        queue driver, which sees every write); until then any write while one of them ran
        counts as a change to offer it again."""
        self._scheduler.witness = witness

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
    observe: Observer | None = None,
    on_round: Callable[[int, float], None] | None = None,
) -> RunReport:
    """Drive `controllers` until `settled()` holds at a fixed point with nothing in flight.

    `tracked` are the controllers that read the cluster only through `tracker`: they are skipped
    while nothing they read changed. `on_round(rounds, virtual seconds)` is told before each
    round (`simulate`'s progress line).
    """
    start = env.clock.now()
    deadline = start + budget_seconds
    # This loop is the world's only driver, on one thread: every write is the reconcile's
    # running then (`serial`).
    scheduler = _Scheduler(env.backend, tracker, env.clock,
                           frozenset(c.name for c in tracked), limits=limits, observe=observe,
                           recorded=frozenset(c.name for c in env.controllers), serial=True)
    rounds = 0

    def report(done: bool, reason: str) -> RunReport:
        failures = scheduler.failures()
        return RunReport(rounds, env.clock.now() - start, done, reason, scheduler.reconciles,
                         scheduler.skipped,
                         failing=tuple(f"{what}: {f.reason}: {f.message}" for what, f in failures),
                         crashed=tuple(f"{what}: {f.message}" for what, f in failures
                                       if f.crashed))

    # A batch run: most young collections skipped while they find no garbage (gctuning).
    with sampled_young_collections():
        while True:
            rounds += 1
            if rounds > max_rounds:
                return report(False, f"no fixed point after {max_rounds} rounds")
            if on_round is not None:
                on_round(rounds, env.clock.now() - start)
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
