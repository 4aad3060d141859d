"""Leader election over HTTP: two electors, each with its own client (`KubernetesLeaseStore`
through `KubernetesBackend.leases()`), against `reconciler serve --controllers ecosystem`.

Short durations (lease 1.5 s, written as 2 whole seconds; renew deadline 1 s; retry 0.2 s) and
bounded polling: the takeover bounds are the lease duration plus retries and slack, never an
exact time.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.backends.kubernetes import KubernetesBackend, KubernetesLeaseStore, connect
from reconciler.ha.election import ElectionConfig, LeaderCallbacks, LeaderElector, run_elector
from reconciler.ha.lease import LeaseRecord, LeaseStore, new_lease, parse_time
from reconciler.model.errors import Conflict, NotFound
from reconciler.runtime.clock import SystemClock
from tests.apiserver.conftest import Served, serving, wait_for

LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD = 1.5, 1.0, 0.2
WRITTEN_DURATION = 2  # seconds, as the Lease stores it (rounded up)
SLACK = 2.0  # scheduling and HTTP on a busy test machine


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("leader-serve"), "--controllers", "ecosystem") as server:
        yield server


@pytest.fixture
def backends(served: Served) -> Iterator[list[KubernetesBackend]]:
    made = [connect(Path(served.kubeconfig)) for _ in range(2)]
    try:
        yield made
    finally:
        for backend in made:
            backend.close()


@pytest.fixture
def namespace(backends: list[KubernetesBackend]) -> Iterator[str]:
    name = f"leader-{uuid.uuid4().hex[:8]}"
    backends[0].apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    backends[0].delete("v1", "Namespace", "", name)


class Replica:
    """One elector on its own thread, as one replica of the daemon runs it."""

    def __init__(self, store: LeaseStore, config: ElectionConfig) -> None:
        self.started = self.stopped = 0
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.elector = LeaderElector(store, config, SystemClock(), LeaderCallbacks(
            on_started_leading=self._on_started, on_stopped_leading=self._on_stopped))

    def _on_started(self) -> None:
        self.started += 1

    def _on_stopped(self) -> None:
        self.stopped += 1

    def start(self) -> None:
        self.thread = threading.Thread(target=run_elector, args=(self.elector, self.stop),
                                       daemon=True)
        self.thread.start()

    def halt(self) -> None:
        """Stop the loop: releases the Lease or abandons it, as `release_on_cancel` says."""
        self.stop.set()
        assert self.thread is not None
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()


def _replicas(backends: list[KubernetesBackend], namespace: str,
              release_on_cancel: bool) -> list[Replica]:
    return [Replica(backend.leases(timeout=0.5),
                    ElectionConfig(namespace, "reconciler-leader-election", f"replica-{index}",
                                   LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD,
                                   release_on_cancel=release_on_cancel))
            for index, backend in enumerate(backends)]


def _leaders(replicas: list[Replica]) -> list[Replica]:
    return [r for r in replicas if r.elector.is_leader()]


def _record(backend: KubernetesBackend, namespace: str) -> LeaseRecord:
    lease = backend.leases().get(namespace, "reconciler-leader-election")
    assert lease is not None
    return LeaseRecord.from_lease(lease)


def _never_two_leaders(replicas: list[Replica], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert len(_leaders(replicas)) <= 1
        time.sleep(0.02)


def test_the_lease_store_over_http(backends: list[KubernetesBackend], namespace: str) -> None:
    store: LeaseStore = backends[0].leases()
    assert isinstance(store, KubernetesLeaseStore)
    assert store.get(namespace, "l") is None
    lease = new_lease(namespace, "l", LeaseRecord("me", 2, 1767225600.25, 1767225600.25, 0))
    created = store.create(lease)
    spec = created["spec"]
    assert spec["holderIdentity"] == "me" and spec["renewTime"] == "2026-01-01T00:00:00.250000Z"
    assert parse_time(spec["acquireTime"]) == 1767225600.25
    with pytest.raises(Conflict):
        store.create(lease)  # 409 AlreadyExists
    version = str(created["metadata"]["resourceVersion"])
    updated = store.update({**created, "spec": {**spec, "holderIdentity": "you"}}, version)
    assert updated["spec"]["holderIdentity"] == "you"
    assert updated["metadata"]["resourceVersion"] != version
    with pytest.raises(Conflict):
        store.update({**created, "spec": {**spec, "holderIdentity": "late"}}, version)  # 409
    gone = {**created, "metadata": {**created["metadata"], "name": "gone"}}
    with pytest.raises(NotFound):
        store.update(gone, version)
    assert (store.get(namespace, "l") or {})["spec"]["holderIdentity"] == "you"


def test_exactly_one_leads_and_a_standby_takes_over_when_the_leader_dies(
        backends: list[KubernetesBackend], namespace: str) -> None:
    replicas = _replicas(backends, namespace, release_on_cancel=False)
    for replica in replicas:
        replica.start()
    try:
        leader = wait_for(lambda: _leaders(replicas), seconds=10)[0]
        _never_two_leaders(replicas, seconds=1.5)  # several renewals: still exactly one
        assert _leaders(replicas) == [leader]
        standby = next(r for r in replicas if r is not leader)
        before = _record(backends[0], namespace)
        assert before.holder_identity == leader.elector.identity
        assert before.lease_duration_seconds == WRITTEN_DURATION

        killed_at = time.monotonic()
        leader.halt()  # dies: stops renewing, does not release
        assert not leader.elector.is_leader() and leader.stopped == 1
        bound = WRITTEN_DURATION + RETRY_PERIOD * 2.2 + SLACK
        wait_for(standby.elector.is_leader, seconds=bound, every=0.02)
        took = time.monotonic() - killed_at
        print(f"takeover after the leader died: {took:.2f}s (lease {WRITTEN_DURATION}s)")
        after = _record(backends[0], namespace)
        assert after.holder_identity == standby.elector.identity
        assert after.lease_transitions == before.lease_transitions + 1
        # Nobody took it before the dead leader's lease expired.
        assert after.acquire_time is not None and before.renew_time is not None
        assert after.acquire_time >= before.renew_time + before.lease_duration_seconds
        assert standby.started == 1
    finally:
        for replica in replicas:
            replica.halt()


def test_a_released_lease_is_taken_over_without_waiting_for_it_to_expire(
        backends: list[KubernetesBackend], namespace: str) -> None:
    replicas = _replicas(backends, namespace, release_on_cancel=True)
    for replica in replicas:
        replica.start()
    try:
        leader = wait_for(lambda: _leaders(replicas), seconds=10)[0]
        standby = next(r for r in replicas if r is not leader)
        before = _record(backends[0], namespace)  # at most one retry period old
        leader.halt()  # graceful shutdown: releases
        assert leader.stopped == 1
        wait_for(standby.elector.is_leader, seconds=WRITTEN_DURATION + SLACK, every=0.02)
        after = _record(backends[0], namespace)
        assert after.holder_identity == standby.elector.identity
        assert after.lease_transitions == before.lease_transitions + 1
        # Taken before the old leader's lease would have expired: the release freed it.
        assert after.acquire_time is not None and before.renew_time is not None
        assert after.acquire_time < before.renew_time + before.lease_duration_seconds
    finally:
        for replica in replicas:
            replica.halt()
