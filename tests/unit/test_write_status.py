"""`backends.base.write_status` through the wrappers a controller writes through (read tracking,
the daemon's lock, the leader gate, a tenant's view, a wrapper that changes status writes) and
on a backend without a `write_status` of its own; the simulated cluster's own one (no copy):
what it stores, refuses and tells listeners is what `update_status` does.

The contract itself (versions, the "same apart from status" answer) runs against every backend
in tests/contract/test_write_status.py.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from reconciler.backends.base import (
    Backend,
    Forwarding,
    Identity,
    StatusWritten,
    WritesAs,
    same_apart_from_status,
    write_status,
)
from reconciler.daemon.locked import LockedBackend
from reconciler.engine.tracking import TrackingBackend
from reconciler.ha.gate import LeaderGatedBackend, NotLeader
from reconciler.model.errors import NotFound, Rejected
from reconciler.model.objects import Obj
from simulator.clock import VirtualClock
from simulator.cluster import InMemoryCluster

NS = "team"


def _cluster() -> InMemoryCluster:
    cluster = InMemoryCluster(VirtualClock())
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    return cluster


def _deployment(replicas: int = 1, **labels: str) -> Obj:
    selector = {"app": "web"}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": NS, "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": selector},
                     "template": {"metadata": {"labels": selector},
                                  "spec": {"containers": [{"name": "web", "image": "w:1"}]}}}}


def _version(cluster: InMemoryCluster) -> str:
    live = cluster.get("apps/v1", "Deployment", NS, "web")
    assert live is not None
    return str(live["metadata"]["resourceVersion"])


class _UpdateOnly:
    """A backend with no `write_status` of its own (nor an `inner` to look through)."""

    def __init__(self, cluster: InMemoryCluster) -> None:
        self.cluster = cluster
        self.status_writes = 0

    def update_status(self, obj: Obj) -> Obj:
        self.status_writes += 1
        return self.cluster.update_status(obj)


def test_a_backend_without_it_is_written_through_update_status() -> None:
    cluster = _cluster()
    read = cluster.apply(_deployment())
    plain = _UpdateOnly(cluster)
    written = write_status(plain, {**read, "status": {"replicas": 1}})  # type: ignore[arg-type]
    assert plain.status_writes == 1
    assert written == StatusWritten(_version(cluster), True)

    cluster.apply(_deployment(replicas=2))  # someone scales it after the read
    late = write_status(plain, {**read, "status": {"replicas": 2}})  # type: ignore[arg-type]
    assert late == StatusWritten(_version(cluster), False)


def test_the_simulated_cluster_answers_without_update_status_or_a_copy(
        monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = _cluster()
    read = cluster.apply(_deployment())

    def refuse(*_: Any) -> Obj:
        raise AssertionError("write_status must not return through update_status or copy")
    monkeypatch.setattr(cluster, "update_status", refuse)
    monkeypatch.setattr(cluster, "_out", refuse)
    written = write_status(cluster, {**read, "status": {"replicas": 1}})
    monkeypatch.undo()
    assert written == StatusWritten(_version(cluster), True)
    live = cluster.get("apps/v1", "Deployment", NS, "web")
    assert live is not None and live["status"] == {"replicas": 1}
    assert live["metadata"]["generation"] == 1


def test_the_simulated_cluster_stores_a_copy_and_tells_listeners() -> None:
    cluster = _cluster()
    seen: list[tuple[str, Obj, Obj | None]] = []
    cluster.add_listener(lambda type_, obj, before: seen.append((type_, obj, before)))
    read = cluster.apply(_deployment())
    seen.clear()
    condition = {"type": "Available", "status": "True"}
    status: Obj = {"replicas": 1, "conditions": [condition]}
    written = cluster.write_status({**read, "status": status})
    condition["status"] = "False"  # the caller's dict is not what is stored
    live = cluster.get("apps/v1", "Deployment", NS, "web")
    assert live is not None and live["status"]["conditions"][0]["status"] == "True"
    assert [(t, o["metadata"]["resourceVersion"], (b or {}).get("status")) for t, o, b in seen] \
        == [("MODIFIED", written.resource_version, None)]

    # An equal status is no write: no event, no new version.
    seen.clear()
    again = cluster.write_status({**read, "status": live["status"]})
    assert again.resource_version == written.resource_version and not seen


def test_a_refused_status_write_raises_as_update_status_does() -> None:
    cluster = _cluster()
    read = cluster.apply(_deployment())
    huge = {**read, "status": {"note": "x" * 2_000_000}}
    with pytest.raises(Rejected) as by_update:
        cluster.update_status(huge)
    with pytest.raises(Rejected) as by_write:
        cluster.write_status(huge)
    assert str(by_write.value) == str(by_update.value)
    assert "etcdserver: request is too large" in str(by_write.value)
    assert _version(cluster) == read["metadata"]["resourceVersion"], "nothing was written"
    gone = {**read, "metadata": {**read["metadata"], "name": "absent"}, "status": {}}
    with pytest.raises(NotFound):
        cluster.write_status(gone)


def test_tracking_records_the_status_as_update_status_does() -> None:
    cluster = _cluster()
    read = cluster.apply(_deployment())
    tracked = TrackingBackend(cluster)
    tracked.begin()
    written = write_status(tracked, {**read, "status": {"replicas": 3}})
    reads = tracked.end()
    assert written.resource_version == _version(cluster)
    assert reads.statuses == {("apps", "Deployment", NS, "web"): {"replicas": 3}}

    tracked.begin()
    tracked.update_status({**read, "status": {"replicas": 4}})
    assert tracked.end().statuses == {("apps", "Deployment", NS, "web"): {"replicas": 4}}

    # Outside a recorded reconcile nothing is recorded, and the write still happens.
    assert write_status(tracked, {**read, "status": {"replicas": 5}}).resource_version == (
        _version(cluster))


def test_the_lock_is_held_while_the_status_is_written() -> None:
    cluster = _cluster()
    read = cluster.apply(_deployment())
    lock = threading.RLock()
    held: list[bool] = []

    class Probe(Forwarding):
        def write_status(self, obj: Obj) -> StatusWritten:
            # An RLock owned by this thread can be taken again without blocking; by another
            # thread's only if it is free.
            other: list[bool] = []
            thread = threading.Thread(target=lambda: other.append(lock.acquire(blocking=False)))
            thread.start()
            thread.join()
            held.append(not other[0])
            return write_status(self.inner, obj)

    locked = LockedBackend(Probe(cluster), lock=lock)
    written = write_status(locked, {**read, "status": {"replicas": 1}})
    assert held == [True]
    assert written.resource_version == _version(cluster)


def test_the_leader_gate_refuses_the_write_of_a_standby() -> None:
    cluster = _cluster()
    read = cluster.apply(_deployment())
    leading = [True]
    gated = LeaderGatedBackend(cluster, lambda: leading[0])
    assert write_status(gated, {**read, "status": {"replicas": 1}}).resource_version == (
        _version(cluster))
    leading[0] = False
    before = _version(cluster)
    with pytest.raises(NotLeader, match="refusing to write the status of Deployment"):
        write_status(gated, {**read, "status": {"replicas": 2}})
    assert _version(cluster) == before


class _CountingStatus(Forwarding):
    """A wrapper that changes `update_status` only (as a tenant's view or a fault injector
    does): a status write must go through it, never around it to the inner backend's own."""

    def __init__(self, inner: Backend, on_write: Callable[[Obj], None]) -> None:
        super().__init__(inner)
        self.on_write = on_write

    def update_status(self, obj: Obj) -> Obj:
        self.on_write(obj)
        return self.inner.update_status(obj)


def test_a_wrapper_that_changes_update_status_is_written_through() -> None:
    cluster = _cluster()
    read = cluster.apply(_deployment())
    through: list[str] = []
    wrapper = _CountingStatus(cluster, lambda obj: through.append(obj["metadata"]["name"]))
    written = write_status(TrackingBackend(wrapper), {**read, "status": {"replicas": 1}})
    assert through == ["web"]
    assert written == StatusWritten(_version(cluster), True)


def test_a_tenant_view_writes_through_its_writer() -> None:
    cluster = _cluster()
    read = cluster.apply(_deployment())
    writer_saw: list[str] = []
    writer = _CountingStatus(cluster, lambda obj: writer_saw.append("writer"))
    view = WritesAs(cluster, writer, Identity.service_account(NS, "deployer"))
    written = write_status(view, {**read, "status": {"replicas": 1}})
    assert writer_saw == ["writer"]
    assert written.resource_version == _version(cluster)


def test_same_apart_from_status_reads_every_part_but_status_and_server_fields() -> None:
    sent: Obj = {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "c", "labels": {"a": "1"}, "resourceVersion": "1"},
                 "data": {"k": "v"}, "status": {"old": True}}
    live: Obj = {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "c", "labels": {"a": "1"}, "resourceVersion": "9",
                              "uid": "u", "managedFields": []},
                 "data": {"k": "v"}, "status": {"new": True}}
    assert same_apart_from_status(sent, live)
    assert not same_apart_from_status(sent, {**live, "data": {"k": "w"}})
    assert not same_apart_from_status(sent, {**live, "binaryData": {}})
    without_data = {k: v for k, v in live.items() if k != "data"}
    assert not same_apart_from_status(sent, without_data)
    assert not same_apart_from_status(
        sent, {**live, "metadata": {**live["metadata"], "annotations": {"x": "y"}}})
    assert not same_apart_from_status(
        sent, {**live, "metadata": {**live["metadata"], "generation": 2}})
