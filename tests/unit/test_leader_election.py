"""Leader election (`reconciler.ha.election`) on a virtual clock over the in-memory cluster's
Leases: every transition, without a sleep."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from reconciler.ha.election import (
    ElectionConfig,
    LeaderCallbacks,
    LeaderElector,
    Outcome,
    default_identity,
    in_cluster_namespace,
    run_elector,
)
from reconciler.ha.lease import (
    LeaseRecord,
    LeaseStore,
    format_micro_time,
    parse_time,
    whole_seconds,
    with_record,
)
from reconciler.model.errors import Conflict, NotFound, ReconcilerError, Transient
from reconciler.model.objects import Obj
from simulator.clock import EPOCH, VirtualClock
from simulator.cluster import InMemoryCluster
from simulator.leases import InMemoryLeaseStore

NAMESPACE = "reconciler-system"
NAME = "reconciler-leader-election"
MICRO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


class FlakyStore:
    """A `LeaseStore` over another that fails while `failure` is set, can run a hook before
    each update (another writer's race), and can move the clock during a request."""

    def __init__(self, inner: LeaseStore) -> None:
        self.inner = inner
        self.failure: Exception | None = None
        self.before_update: Callable[[], None] | None = None
        self.during_request: Callable[[], None] | None = None
        self.calls: list[str] = []

    def _enter(self, verb: str) -> None:
        self.calls.append(verb)
        if self.during_request is not None:
            self.during_request()
        if self.failure is not None:
            raise self.failure

    def get(self, namespace: str, name: str) -> Obj | None:
        self._enter("get")
        return self.inner.get(namespace, name)

    def create(self, lease: Obj) -> Obj:
        self._enter("create")
        return self.inner.create(lease)

    def update(self, lease: Obj, resource_version: str) -> Obj:
        self._enter("update")
        if self.before_update is not None:
            hook, self.before_update = self.before_update, None
            hook()
        return self.inner.update(lease, resource_version)


@dataclass
class Recorder:
    events: list[str] = field(default_factory=list)

    def callbacks(self) -> LeaderCallbacks:
        return LeaderCallbacks(
            on_started_leading=lambda: self.events.append("started"),
            on_stopped_leading=lambda: self.events.append("stopped"),
            on_new_leader=lambda identity: self.events.append(f"leader {identity}"))


@dataclass
class World:
    clock: VirtualClock
    cluster: InMemoryCluster
    store: FlakyStore

    def lease(self) -> Obj:
        lease = self.cluster.get("coordination.k8s.io/v1", "Lease", NAMESPACE, NAME)
        assert lease is not None
        return lease

    def record(self) -> LeaseRecord:
        return LeaseRecord.from_lease(self.lease())

    def elector(self, identity: str, recorder: Recorder | None = None,
                clock: Any = None, **settings: Any) -> LeaderElector:
        config = ElectionConfig(NAMESPACE, NAME, identity, **settings)
        return LeaderElector(self.store, config, clock or self.clock,
                             recorder.callbacks() if recorder else None, random=lambda: 0.0)


@pytest.fixture
def world() -> World:
    clock = VirtualClock()
    cluster = InMemoryCluster(clock)
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    return World(clock, cluster, FlakyStore(InMemoryLeaseStore(cluster)))


def test_the_in_memory_store_is_a_lease_store(world: World) -> None:
    store: LeaseStore = InMemoryLeaseStore(world.cluster)
    assert store.get(NAMESPACE, NAME) is None


# --- acquire -------------------------------------------------------------------------------


def test_acquires_an_absent_lease_by_creating_it(world: World) -> None:
    seen = Recorder()
    a = world.elector("a", seen)
    assert not a.is_leader()
    assert a.step() == 2.0  # a leader renews every retry period
    assert a.is_leader() and a.last_outcome is Outcome.ACQUIRED
    assert seen.events == ["leader a", "started"]
    spec = world.lease()["spec"]
    assert spec["holderIdentity"] == "a"
    assert spec["leaseDurationSeconds"] == 15
    assert spec["leaseTransitions"] == 0
    assert MICRO_TIME.match(spec["acquireTime"]) and spec["acquireTime"] == spec["renewTime"]
    assert parse_time(spec["renewTime"]) == EPOCH
    assert world.store.calls == ["get", "create"]


def test_a_held_lease_is_not_taken_and_the_candidate_retries_with_jitter(world: World) -> None:
    world.elector("a").step()
    seen = Recorder()
    b = LeaderElector(world.store, ElectionConfig(NAMESPACE, NAME, "b"), world.clock,
                      seen.callbacks(), random=lambda: 0.5)
    world.clock.advance(14.0)
    assert b.step() == pytest.approx(2.0 * (1 + 0.5 * 1.2))
    assert not b.is_leader() and b.last_outcome is Outcome.HELD
    assert b.leader == "a" and seen.events == ["leader a"]
    world.clock.advance(1.0)  # renewTime + 15 s == now: not yet expired (strictly less)
    b.step()
    assert not b.is_leader() and world.record().holder_identity == "a"


def test_acquires_an_expired_lease_and_counts_the_transition(world: World) -> None:
    a = world.elector("a")
    a.step()
    a.abandon()  # a dies without releasing
    seen = Recorder()
    b = world.elector("b", seen)
    world.clock.advance(15.001)
    b.step()
    assert b.is_leader()
    assert seen.events == ["leader a", "leader b", "started"]
    record = world.record()
    assert record.holder_identity == "b"
    assert record.lease_transitions == 1
    assert record.acquire_time == record.renew_time == EPOCH + 15.001


def test_a_lease_with_no_holder_is_free_at_once(world: World) -> None:
    a = world.elector("a")
    a.step()
    world.cluster.edit("coordination.k8s.io/v1", "Lease", NAMESPACE, NAME,
                       lambda lease: lease["spec"].update(holderIdentity=""))
    b = world.elector("b")
    b.step()
    assert b.is_leader() and world.record().lease_transitions == 1


# --- renew ---------------------------------------------------------------------------------


def test_the_leader_renews_keeping_acquire_time_and_transitions(world: World) -> None:
    seen = Recorder()
    a = world.elector("a", seen)
    a.step()
    first = world.lease()
    for _ in range(3):
        world.clock.advance(2.0)
        assert a.step() == 2.0
    record = world.record()
    assert record.renew_time == EPOCH + 6.0
    assert record.acquire_time == EPOCH
    assert record.lease_transitions == 0
    assert world.lease()["metadata"]["resourceVersion"] != first["metadata"]["resourceVersion"]
    assert seen.events == ["leader a", "started"]  # started once
    # Renewals take the fast path: one update each, no read first.
    assert world.store.calls == ["get", "create", "update", "update", "update"]


def test_the_lease_keeps_what_it_does_not_own(world: World) -> None:
    a = world.elector("a")
    a.step()
    def edit(lease: Obj) -> None:
        lease["metadata"]["labels"] = {"team": "platform"}
        lease["spec"]["strategy"] = "OldestEmulationVersion"
    world.cluster.edit("coordination.k8s.io/v1", "Lease", NAMESPACE, NAME, edit)
    world.clock.advance(2.0)
    a.step()  # fast path 409 (edited), then read and renew
    lease = world.lease()
    assert a.is_leader()
    assert lease["metadata"]["labels"] == {"team": "platform"}
    assert lease["spec"]["strategy"] == "OldestEmulationVersion"
    assert lease["spec"]["renewTime"] == format_micro_time(EPOCH + 2.0)


def test_a_deleted_lease_is_recreated_by_its_leader(world: World) -> None:
    a = world.elector("a")
    a.step()
    world.cluster.delete("coordination.k8s.io/v1", "Lease", NAMESPACE, NAME)
    world.clock.advance(2.0)
    a.step()
    assert a.is_leader() and world.record().holder_identity == "a"


# --- losing --------------------------------------------------------------------------------


def test_a_conflict_on_acquire_means_another_replica_won(world: World) -> None:
    a = world.elector("a")
    a.step()
    a.abandon()
    world.clock.advance(16.0)
    b, c = world.elector("b"), world.elector("c")
    # c takes the expired lease between b's read and b's write: b's update is stale.

    def race() -> None:
        c.step()
    world.store.before_update = race
    b.step()
    assert b.last_outcome is Outcome.CONFLICT and not b.is_leader()
    assert c.is_leader() and world.record().holder_identity == "c"


def test_the_leader_stops_at_once_when_another_replica_took_the_lease(world: World) -> None:
    seen = Recorder()
    a = world.elector("a", seen)
    a.step()
    # b's clock runs 20 s ahead: it sees a's lease as expired and takes it.
    b = world.elector("b", clock=VirtualClock(EPOCH + 20.0))
    b.step()
    assert b.is_leader()
    world.clock.advance(2.0)
    a.step()  # fast path 409, then the read shows b holds it: no waiting for the deadline
    assert not a.is_leader() and a.last_outcome is Outcome.HELD
    assert seen.events == ["leader a", "started", "leader b", "stopped"]


def test_the_leader_stops_when_renewals_fail_past_the_renew_deadline(world: World) -> None:
    seen = Recorder()
    a = world.elector("a", seen)
    a.step()
    world.store.failure = Transient("Unreachable", "connection refused")
    for _ in range(4):  # 2, 4, 6, 8 s: failing, still within the 10 s deadline
        world.clock.advance(2.0)
        a.step()
        assert a.is_leader() and a.last_outcome is Outcome.FAILED
    world.clock.advance(1.999)
    assert a.is_leader()
    world.clock.advance(0.001)
    assert not a.is_leader()  # the gate closes on the clock alone, before any step
    assert seen.events == ["leader a", "started"]
    a.step()
    assert seen.events == ["leader a", "started", "stopped"]
    # The lease is still a's for 5 more seconds: nobody may take it before it expires.
    b = world.elector("b")
    world.store.failure = None
    b.step()
    assert not b.is_leader()


def test_a_failed_renewal_within_the_deadline_keeps_leadership(world: World) -> None:
    seen = Recorder()
    a = world.elector("a", seen)
    a.step()
    world.store.failure = Transient("ServiceUnavailable", "503")
    world.clock.advance(2.0)
    a.step()
    world.store.failure = None
    world.clock.advance(2.0)
    a.step()
    assert a.is_leader() and world.record().renew_time == EPOCH + 4.0
    assert "stopped" not in seen.events


def test_a_renewal_slower_than_the_deadline_is_not_leadership(world: World) -> None:
    seen = Recorder()
    a = world.elector("a", seen)
    world.store.during_request = lambda: world.clock.advance(5.5)  # get + create: 11 s
    a.step()
    assert not a.is_leader() and "started" not in seen.events
    world.store.during_request = None
    a.step()  # the lease names a and is valid: a renews it and leads
    assert a.is_leader() and seen.events.count("started") == 1


def test_a_broken_store_is_a_failed_attempt_not_a_crash(world: World) -> None:
    a = world.elector("a")
    world.store.failure = RuntimeError("a bug")
    assert a.step() == 2.0
    assert a.last_outcome is Outcome.FAILED and not a.is_leader()


def test_a_callback_that_raises_does_not_break_the_election(world: World) -> None:
    def boom() -> None:
        raise RuntimeError("callback bug")
    config = ElectionConfig(NAMESPACE, NAME, "a")
    a = LeaderElector(world.store, config, world.clock,
                      LeaderCallbacks(on_started_leading=boom, on_stopped_leading=boom))
    a.step()
    assert a.is_leader()
    assert a.release()


# --- release -------------------------------------------------------------------------------


def test_release_frees_the_lease_for_the_next_candidate_at_once(world: World) -> None:
    seen = Recorder()
    a = world.elector("a", seen)
    a.step()
    world.clock.advance(1.0)
    assert a.release()
    assert not a.is_leader() and seen.events == ["leader a", "started", "stopped"]
    spec = world.lease()["spec"]
    assert spec["holderIdentity"] == ""
    assert spec["leaseDurationSeconds"] == 1
    assert spec["leaseTransitions"] == 0
    assert spec["renewTime"] == spec["acquireTime"] == format_micro_time(EPOCH + 1.0)
    b = world.elector("b")
    b.step()  # no waiting for the lease duration
    assert b.is_leader() and world.record().lease_transitions == 1


def test_release_by_a_non_leader_writes_nothing(world: World) -> None:
    world.elector("a").step()
    before = world.lease()["metadata"]["resourceVersion"]
    b = world.elector("b")
    b.step()
    assert b.release()
    assert world.lease()["metadata"]["resourceVersion"] == before
    assert world.record().holder_identity == "a"


def test_release_does_not_free_a_lease_another_replica_took(world: World) -> None:
    a = world.elector("a")
    a.step()
    b = world.elector("b", clock=VirtualClock(EPOCH + 20.0))
    b.step()
    assert a.release()  # 409, and the read shows b: nothing of a's to release
    assert world.record().holder_identity == "b"


def test_release_that_cannot_be_written_still_stops_leading(world: World) -> None:
    seen = Recorder()
    a = world.elector("a", seen)
    a.step()
    world.store.failure = Transient("Unreachable", "down")
    assert not a.release()
    assert not a.is_leader() and seen.events[-1] == "stopped"


def test_transitions_count_every_change_of_holder(world: World) -> None:
    a, b = world.elector("a"), world.elector("b")
    a.step()
    assert world.record().lease_transitions == 0
    a.abandon()
    world.clock.advance(16.0)
    b.step()
    assert world.record().lease_transitions == 1
    world.clock.advance(2.0)
    b.step()
    assert world.record().lease_transitions == 1  # renewal
    b.release()
    a.step()
    assert world.record().lease_transitions == 2
    assert world.record().holder_identity == "a"


# --- the loop, the configuration, the record ------------------------------------------------


class FakeStop:
    """A `Stopper` on the virtual clock: each wait advances it; set after `waits` waits."""

    def __init__(self, clock: VirtualClock, waits: int) -> None:
        self.clock, self.left = clock, waits
        self.waited: list[float] = []

    def is_set(self) -> bool:
        return self.left <= 0

    def wait(self, timeout: float | None = None) -> bool:
        assert timeout is not None
        self.waited.append(timeout)
        self.clock.advance(timeout)
        self.left -= 1
        return self.is_set()


def test_run_elector_renews_until_stopped_then_releases(world: World) -> None:
    seen = Recorder()
    a = world.elector("a", seen)
    stop = FakeStop(world.clock, waits=5)
    run_elector(a, stop)
    assert stop.waited == [2.0] * 5
    assert world.record().holder_identity == ""
    assert seen.events == ["leader a", "started", "stopped"]


def test_run_elector_without_release_on_cancel_leaves_the_lease(world: World) -> None:
    a = world.elector("a", release_on_cancel=False)
    run_elector(a, FakeStop(world.clock, waits=2))
    assert not a.is_leader() and world.record().holder_identity == "a"


@pytest.mark.parametrize(("settings", "message"), [
    ({"lease_duration": 10.0, "renew_deadline": 10.0}, "leaseDuration must be greater"),
    ({"renew_deadline": 2.4, "retry_period": 2.0}, "renewDeadline must be greater"),
    ({"identity": ""}, "identity is empty"),
    ({"retry_period": 0.0, "renew_deadline": 1.0, "lease_duration": 2.0}, "retryPeriod"),
])
def test_configuration_is_checked_as_client_go_checks_it(settings: dict[str, Any],
                                                         message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ElectionConfig(**{"namespace": NAMESPACE, **settings})


def test_defaults_are_client_gos() -> None:
    config = ElectionConfig(NAMESPACE)
    assert (config.lease_duration, config.renew_deadline, config.retry_period) == (15, 10, 2)
    assert config.release_on_cancel and config.name == NAME


def test_identities_are_the_host_and_a_random_suffix() -> None:
    import socket
    first, second = default_identity(), default_identity()
    assert first != second and first.startswith(socket.gethostname() + "_")


def test_the_namespace_in_a_pod_is_the_service_accounts(tmp_path: Path) -> None:
    file = tmp_path / "namespace"
    assert in_cluster_namespace(file) is None
    file.write_text("reconciler-system\n")
    assert in_cluster_namespace(file) == "reconciler-system"
    file.write_text("")
    assert in_cluster_namespace(file) is None


@pytest.mark.parametrize(("text", "seconds"), [
    ("2026-01-01T00:00:00.000000Z", EPOCH),
    ("2026-01-01T00:00:01.500000Z", EPOCH + 1.5),
    ("2026-01-01T00:00:00Z", EPOCH),
    ("2026-01-01T02:00:00+02:00", EPOCH),
    ("2026-01-01T00:00:00.5Z", EPOCH + 0.5),
    ("", None), ("yesterday", None), (None, None), (42, None),
])
def test_times_are_read_as_rfc3339(text: object, seconds: float | None) -> None:
    assert parse_time(text) == seconds


def test_micro_time_is_written_with_microseconds() -> None:
    assert format_micro_time(EPOCH + 0.25) == "2026-01-01T00:00:00.250000Z"
    assert parse_time(format_micro_time(EPOCH + 1.000001)) == pytest.approx(EPOCH + 1.000001)


@pytest.mark.parametrize(("duration", "seconds"), [(15.0, 15), (1.5, 2), (0.2, 1), (1.0, 1)])
def test_durations_round_up_to_whole_seconds(duration: float, seconds: int) -> None:
    assert whole_seconds(duration) == seconds


@pytest.mark.parametrize(("spec", "now", "expired"), [
    ({}, EPOCH, True),
    ({"holderIdentity": "a"}, EPOCH, True),  # never renewed
    ({"holderIdentity": "a", "renewTime": "2026-01-01T00:00:00.000000Z",
      "leaseDurationSeconds": 15}, EPOCH + 15, False),
    ({"holderIdentity": "a", "renewTime": "2026-01-01T00:00:00.000000Z",
      "leaseDurationSeconds": 15}, EPOCH + 15.000001, True),
    ({"holderIdentity": "", "renewTime": "2026-01-01T00:00:00.000000Z",
      "leaseDurationSeconds": 15}, EPOCH, True),
    ({"holderIdentity": "a", "renewTime": "2026-01-01T00:00:00.000000Z",
      "leaseDurationSeconds": "x"}, EPOCH + 0.5, True),
])
def test_expiry(spec: dict[str, Any], now: float, expired: bool) -> None:
    assert LeaseRecord.from_lease({"spec": spec}).expired(now) is expired


def test_with_record_replaces_only_the_election_fields() -> None:
    lease: Obj = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                  "metadata": {"name": NAME, "namespace": NAMESPACE, "resourceVersion": "7"},
                  "spec": {"holderIdentity": "a", "preferredHolder": "b", "acquireTime": "x"}}
    out = with_record(lease, LeaseRecord("c", 15, None, EPOCH, 3))
    assert out["spec"] == {"holderIdentity": "c", "leaseDurationSeconds": 15,
                           "leaseTransitions": 3, "preferredHolder": "b",
                           "renewTime": "2026-01-01T00:00:00.000000Z"}
    assert lease["spec"]["holderIdentity"] == "a"  # a copy


def test_store_errors_are_the_products(world: World) -> None:
    store = InMemoryLeaseStore(world.cluster)
    world.elector("a").step()
    lease = world.lease()
    with pytest.raises(Conflict):
        store.create(lease)
    with pytest.raises(Conflict):
        store.update(lease, "1")
    lease["metadata"]["name"] = "other"
    with pytest.raises(NotFound):
        store.update(lease, "1")
    assert isinstance(Conflict("x"), ReconcilerError)
