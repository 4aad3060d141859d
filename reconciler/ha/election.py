"""Leader election on a `coordination.k8s.io/v1` Lease, with client-go's semantics.

`LeaderElector.step()` makes one attempt to acquire or renew the Lease and returns how long to
wait before the next one; whoever drives it (a thread through `run_elector`, or a scheduler
job) waits that long. Time comes from the injected clock, so tests drive it with a fake one.

The rules, as `k8s.io/client-go/tools/leaderelection` has them:

- Acquire when the Lease is absent (create it), nobody holds it (`holderIdentity` empty, as a
  release leaves it), it has expired (`renewTime + leaseDurationSeconds < now`), or it is
  already ours. Taking it from another holder (or after a release) sets `acquireTime` and
  increments `leaseTransitions`; renewing our own keeps both.
- Every write carries the resourceVersion that was read: a 409 means another replica wrote the
  Lease in between and won; we are not the leader.
- The leader renews every `retry_period`. It stops leading at once when the Lease turns out to
  be held by someone else (a 409, or a read showing another valid holder), and when no renewal
  has succeeded for `renew_deadline`. `is_leader()` applies that deadline itself, from the
  clock, so a renewal stuck in a hung request cannot keep a replica writing: gate every write
  on it (`reconciler.ha.gate`).
- `release()` (client-go's `ReleaseOnCancel`), on graceful shutdown, writes the Lease with
  `holderIdentity: ""` and `leaseDurationSeconds: 1`, so a standby takes over on its next
  attempt instead of after the lease duration.

Because `renew_deadline < lease_duration`, a leader that cannot renew stops leading at least
`lease_duration - renew_deadline` before another replica may take the Lease. That margin is the
whole safety argument, so clocks must agree to well within it (NTP), and a write already sent
when leadership ends can still land: there is no fencing token in the Kubernetes API.

Two deliberate differences from client-go, both on the safe side: `leaseDurationSeconds` is the
configured duration rounded *up* to whole seconds (client-go truncates); and a 409 on a renewal
ends leadership at once unless a fresh read shows the Lease is still ours (client-go keeps
trying until the renew deadline).
"""

from __future__ import annotations

import random as _random
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Protocol

import structlog

from reconciler.ha.lease import (
    LeaseRecord,
    LeaseStore,
    new_lease,
    resource_version,
    whole_seconds,
    with_record,
)
from reconciler.model.errors import Conflict, NotFound, ReconcilerError
from reconciler.model.objects import Obj
from reconciler.runtime.clock import Clock

log = structlog.get_logger(__name__)

JITTER_FACTOR = 1.2
"""client-go's: a candidate waits `retry_period * (1 + random * 1.2)` between attempts."""

DEFAULT_LEASE_NAME = "reconciler-leader-election"


SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def in_cluster_namespace(path: Path = SERVICE_ACCOUNT_NAMESPACE) -> str | None:
    """The pod's own namespace when running in a cluster (the default of
    `--leader-election-namespace`, as controller-runtime's), else None."""
    try:
        namespace = path.read_text().strip()
    except OSError:
        return None
    return namespace or None


def default_identity() -> str:
    """This process's `holderIdentity`: the host name (the pod's name in a pod) and a random
    suffix, so two processes on one host, or a restarted one, never share an identity."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


@dataclass(frozen=True)
class ElectionConfig:
    """What `--leader-elect` and its flags configure; durations in seconds."""

    namespace: str
    name: str = DEFAULT_LEASE_NAME
    identity: str = field(default_factory=default_identity)
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    release_on_cancel: bool = True

    def __post_init__(self) -> None:
        # client-go's NewLeaderElector checks, with its messages.
        if not self.namespace or not self.name:
            raise ValueError("leader election needs the Lease's namespace and name")
        if not self.identity:
            raise ValueError("Lock identity is empty")
        if self.lease_duration <= self.renew_deadline:
            raise ValueError("leaseDuration must be greater than renewDeadline")
        if self.renew_deadline <= JITTER_FACTOR * self.retry_period:
            raise ValueError("renewDeadline must be greater than retryPeriod*JitterFactor")
        if self.retry_period < 0.001:
            raise ValueError("retryPeriod must be greater than zero")


def _nothing() -> None:
    return None


def _ignore(identity: str) -> None:
    del identity


@dataclass(frozen=True)
class LeaderCallbacks:
    """Called from the thread that steps the elector; keep them short (set a flag, signal a
    thread). `on_new_leader` gets each holder identity observed, ours included."""

    on_started_leading: Callable[[], None] = _nothing
    on_stopped_leading: Callable[[], None] = _nothing
    on_new_leader: Callable[[str], None] = _ignore


class Outcome(Enum):
    """How one attempt ended."""

    ACQUIRED = "acquired"  # the Lease is ours (created, taken over or renewed)
    HELD = "held"  # another replica holds a valid Lease
    CONFLICT = "conflict"  # another replica wrote the Lease first (409)
    FAILED = "failed"  # the request failed (network, server): nothing learned


class LeaderElector:
    """One candidate in one election. Thread-safe: `step`, `release` and `abandon` may be
    called from different threads; `is_leader` never blocks."""

    def __init__(self, store: LeaseStore, config: ElectionConfig, clock: Clock,
                 callbacks: LeaderCallbacks | None = None,
                 random: Callable[[], float] = _random.random) -> None:
        self.store = store
        self.config = config
        self._clock = clock
        self._callbacks = callbacks or LeaderCallbacks()
        self._random = random
        self._lock = threading.RLock()
        # (leading, time of the last successful acquire or renew), replaced as a whole so
        # `is_leader` reads a consistent pair without the lock.
        self._state: tuple[bool, float] = (False, 0.0)
        self._lease: Obj | None = None  # the Lease as last read or written
        self._reported_leader = ""
        self.last_outcome: Outcome | None = None

    @property
    def identity(self) -> str:
        return self.config.identity

    @property
    def leader(self) -> str:
        """The holder identity last observed ("" when none)."""
        return self.observed.holder_identity if self.observed is not None else ""

    @property
    def observed(self) -> LeaseRecord | None:
        lease = self._lease
        return LeaseRecord.from_lease(lease) if lease is not None else None

    def is_leader(self) -> bool:
        """Whether this replica may write now: it leads, and its last renewal is younger than
        the renew deadline (so a stuck renewal ends leadership on time)."""
        leading, renewed = self._state
        return leading and self._clock.now() - renewed < self.config.renew_deadline

    # --- driving ---------------------------------------------------------------------------

    def step(self) -> float:
        """One attempt to acquire or renew; the seconds to wait before the next one."""
        with self._lock:
            now = self._clock.now()
            try:
                outcome = self._try_acquire_or_renew(now)
            except Exception:  # a bug in a store must not stop the election loop
                log.exception("leader election attempt failed", lease=self._lease_ref())
                outcome = Outcome.FAILED
            self.last_outcome = outcome
            leading, renewed = self._state
            if outcome is Outcome.ACQUIRED and \
                    self._clock.now() - now < self.config.renew_deadline:
                self._state = (True, now)
                if not leading:
                    log.info("became leader", lease=self._lease_ref(), identity=self.identity)
                    self._call(self._callbacks.on_started_leading)
            elif leading:
                if outcome in (Outcome.HELD, Outcome.CONFLICT):
                    self._stop_leading(f"the lease is held by {self.leader or 'another'}")
                elif self._clock.now() - renewed >= self.config.renew_deadline:
                    # No renewal within the deadline (or one so slow it ended past it).
                    self._stop_leading("failed to renew the lease within the renew deadline")
            if self._state[0]:
                return self.config.retry_period
            return self.config.retry_period * (1.0 + self._random() * JITTER_FACTOR)

    def release(self) -> bool:
        """Give the Lease up, on graceful shutdown (client-go's ReleaseOnCancel): stop leading,
        then write `holderIdentity: ""` and `leaseDurationSeconds: 1` if the Lease is still
        ours. True when there was nothing to release or the release was written."""
        with self._lock:
            was_leading = self._state[0]
            self._state = (False, self._state[1])  # no write passes the gate from here on
            try:
                if self._lease is None or self.leader != self.identity:
                    return True
                return self._write_release()
            finally:
                if was_leading:
                    self._stopped("released the lease")

    def abandon(self) -> None:
        """Stop leading without touching the Lease, as a crash would leave it: another replica
        takes over once it expires."""
        with self._lock:
            if self._state[0]:
                self._stop_leading("stopped without releasing the lease")

    # --- one attempt -----------------------------------------------------------------------

    def _try_acquire_or_renew(self, now: float) -> Outcome:
        leading = self._state[0]
        if leading and self._lease is not None and self.leader == self.identity:
            # The fast path: renew what we hold with what we last wrote, no read first.
            try:
                return self._write(self._lease, self._renewal(self._lease, now))
            except (Conflict, NotFound):
                pass  # changed since, or deleted: read it and decide below
            except ReconcilerError as exc:
                log.warning("cannot renew the leader election lease", lease=self._lease_ref(),
                            error=str(exc))
                return Outcome.FAILED
        try:
            lease = self.store.get(self.config.namespace, self.config.name)
        except Exception as exc:
            log.warning("cannot read the leader election lease", lease=self._lease_ref(),
                        error=str(exc))
            return Outcome.FAILED
        if lease is None:
            record = LeaseRecord(self.identity, whole_seconds(self.config.lease_duration),
                                 acquire_time=now, renew_time=now, lease_transitions=0)
            try:
                self._observe(self.store.create(
                    new_lease(self.config.namespace, self.config.name, record)))
            except Conflict:
                return Outcome.CONFLICT
            except Exception as exc:
                log.warning("cannot create the leader election lease", lease=self._lease_ref(),
                            error=str(exc))
                return Outcome.FAILED
            return Outcome.ACQUIRED
        self._observe(lease)
        current = LeaseRecord.from_lease(lease)
        if current.holder_identity != self.identity and not current.expired(now):
            return Outcome.HELD
        try:
            return self._write(lease, self._renewal(lease, now))
        except Conflict:
            return Outcome.CONFLICT
        except Exception as exc:
            log.warning("cannot update the leader election lease", lease=self._lease_ref(),
                        error=str(exc))
            return Outcome.FAILED

    def _renewal(self, lease: Obj, now: float) -> LeaseRecord:
        current = LeaseRecord.from_lease(lease)
        ours = current.holder_identity == self.identity
        return LeaseRecord(
            holder_identity=self.identity,
            lease_duration_seconds=whole_seconds(self.config.lease_duration),
            acquire_time=(current.acquire_time if ours and current.acquire_time is not None
                          else now),
            renew_time=now,
            lease_transitions=current.lease_transitions + (0 if ours else 1),
        )

    def _write(self, lease: Obj, record: LeaseRecord) -> Outcome:
        stored = self.store.update(with_record(lease, record), resource_version(lease))
        self._observe(stored)
        return Outcome.ACQUIRED

    def _write_release(self) -> bool:
        assert self._lease is not None
        now = self._clock.now()
        for _ in range(2):
            lease = self._lease
            current = LeaseRecord.from_lease(lease)
            record = LeaseRecord(holder_identity="", lease_duration_seconds=1,
                                 acquire_time=now, renew_time=now,
                                 lease_transitions=current.lease_transitions)
            try:
                self._observe(self.store.update(with_record(lease, record),
                                                resource_version(lease)))
                log.info("released the leader election lease", lease=self._lease_ref())
                return True
            except Conflict:
                # Our own last renewal may have landed unseen: release only if it is still ours.
                try:
                    fresh = self.store.get(self.config.namespace, self.config.name)
                except Exception as exc:
                    log.warning("cannot release the leader election lease",
                                lease=self._lease_ref(), error=str(exc))
                    return False
                if fresh is None or LeaseRecord.from_lease(fresh).holder_identity != \
                        self.identity:
                    return True  # not ours any more: nothing to release
                self._observe(fresh)
            except Exception as exc:
                log.warning("cannot release the leader election lease", lease=self._lease_ref(),
                            error=str(exc))
                return False
        return False

    # --- state -----------------------------------------------------------------------------

    def _observe(self, lease: Obj) -> None:
        self._lease = lease
        holder = LeaseRecord.from_lease(lease).holder_identity
        if holder and holder != self._reported_leader:
            self._reported_leader = holder
            self._call(lambda: self._callbacks.on_new_leader(holder))

    def _stop_leading(self, why: str) -> None:
        self._state = (False, self._state[1])
        self._stopped(why)

    def _stopped(self, why: str) -> None:
        log.warning("stopped leading", lease=self._lease_ref(), identity=self.identity,
                    reason=why)
        self._call(self._callbacks.on_stopped_leading)

    def _call(self, callback: Callable[[], None]) -> None:
        try:
            callback()
        except Exception:
            log.exception("leader election callback failed", lease=self._lease_ref())

    def _lease_ref(self) -> str:
        return f"{self.config.namespace}/{self.config.name}"


class Stopper(Protocol):
    """What `run_elector` waits on; `threading.Event` is one."""

    def is_set(self) -> bool:
        ...

    def wait(self, timeout: float | None = None) -> bool:
        ...


def run_elector(elector: LeaderElector, stop: Stopper) -> None:
    """Step `elector` until `stop` is set, waiting between attempts as it asks; then release
    the Lease (`config.release_on_cancel`) or abandon it. For a thread of its own:

        stop = threading.Event()
        threading.Thread(target=run_elector, args=(elector, stop), daemon=True).start()
    """
    try:
        while not stop.is_set():
            if stop.wait(elector.step()):
                break
    finally:
        if elector.config.release_on_cancel:
            elector.release()
        else:
            elector.abandon()
