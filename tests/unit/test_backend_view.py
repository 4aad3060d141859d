"""`backends.base.read_only`: the product's copy-free read. On the simulated cluster it is the
cluster's read-only view of its stored object (no copy); through read tracking it is recorded
exactly as `get` records it, so a reconcile that read through it is offered again when the
object changes; through the daemon's lock, a wrapper that changes reads, or a backend without
views it is `get`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from reconciler.backends.base import Forwarding, read_only
from reconciler.daemon.locked import LockedBackend
from reconciler.engine.runner import _Scheduler
from reconciler.engine.tracking import TrackingBackend
from reconciler.ha.gate import LeaderGatedBackend
from reconciler.model.errors import Rejected
from reconciler.model.objects import Obj
from simulator.cluster import InMemoryCluster
from simulator.environment import SimulatedEnvironment
from tests.unit.test_resource_versions import CountingLock


def _config_map(name: str, value: str = "one") -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default"}, "data": {"value": value}}


@pytest.fixture
def env() -> SimulatedEnvironment:
    e = SimulatedEnvironment()
    e.cluster.apply(_config_map("a"))
    return e


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(v) for v in value]
    return value


def test_the_stored_object_read_only_and_nothing_copied(env: SimulatedEnvironment) -> None:
    cluster = env.cluster
    seen = read_only(cluster, "v1", "ConfigMap", "default", "a")
    assert seen is not None
    assert _plain(seen) == cluster.get("v1", "ConfigMap", "default", "a")
    stored = cluster.stored(("", "ConfigMap", "default", "a"))
    assert stored is not None
    # The stored strings themselves (no copy), behind a mapping that refuses changes.
    assert seen["metadata"]["resourceVersion"] is stored["metadata"]["resourceVersion"]
    assert not isinstance(seen, dict)
    with pytest.raises(TypeError):
        seen["data"]["value"] = "changed"
    assert read_only(cluster, "v1", "ConfigMap", "default", "missing") is None
    with pytest.raises(Rejected):
        read_only(cluster, "example.dev/v1", "Widget", "default", "a")


def test_recorded_as_get_records_it(env: SimulatedEnvironment) -> None:
    cluster = env.cluster
    refs = [("v1", "ConfigMap", "default", "a"), ("v1", "ConfigMap", "default", "missing"),
            ("v1", "Namespace", "ignored-for-a-cluster-scoped-kind", "default")]
    for backend in (cluster, TrackingBackend(cluster)):
        backend.begin()
        for ref in refs:
            backend.get(*ref)
        by_get = backend.end().dependencies
        backend.begin()
        for ref in refs:
            read_only(backend, *ref)
        assert backend.end().dependencies == by_get
        assert ("key", "", "Namespace", "", "default") in by_get


def test_tracking_forwards_the_copy_free_read(env: SimulatedEnvironment) -> None:
    tracker = TrackingBackend(env.cluster)
    seen = read_only(tracker, "v1", "ConfigMap", "default", "a")
    stored = env.cluster.stored(("", "ConfigMap", "default", "a"))
    assert seen is not None and stored is not None and not isinstance(seen, dict)
    assert seen["metadata"]["uid"] is stored["metadata"]["uid"]
    # A wrapper that leaves reads alone forwards it too (the leader gate).
    gated = read_only(LeaderGatedBackend(env.cluster, lambda: False), "v1", "ConfigMap",
                      "default", "a")
    assert gated is not None and not isinstance(gated, dict)


class Faulty(Forwarding):
    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        raise Rejected("the read is refused")


class OnlyGet:
    def __init__(self, inner: InMemoryCluster) -> None:
        self.inner = inner
        self.gets = 0

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        self.gets += 1
        return self.inner.get(api_version, kind, namespace, name)


def test_get_where_there_is_no_view(env: SimulatedEnvironment) -> None:
    plain = OnlyGet(env.cluster)
    seen = read_only(plain, "v1", "ConfigMap", "default", "a")  # type: ignore[arg-type]
    assert plain.gets == 1 and isinstance(seen, dict)
    assert seen == env.cluster.get("v1", "ConfigMap", "default", "a")
    # A wrapper that changes reads is read through, never around.
    with pytest.raises(Rejected, match="read is refused"):
        read_only(Faulty(env.cluster), "v1", "ConfigMap", "default", "a")


def test_the_daemons_lock_hands_out_copies(env: SimulatedEnvironment) -> None:
    """A view follows later writes, and the daemon's workers read outside the lock: through
    the lock the read is `get`'s copy, taken under it."""
    counting = CountingLock()
    locked = LockedBackend(env.cluster, lock=counting)
    tracker = TrackingBackend(locked)
    tracker.begin()
    seen = read_only(tracker, "v1", "ConfigMap", "default", "a")
    assert ("key", "", "ConfigMap", "default", "a") in tracker.end().dependencies
    assert isinstance(seen, dict) and counting.taken >= 1
    seen["data"]["value"] = "mine"  # a private copy
    assert env.cluster.get("v1", "ConfigMap", "default", "a")["data"]["value"] == "one"  # type: ignore[index]


class ViewReader:
    """Reads ConfigMap `a` through `read_only` for each ConfigMap labelled `read: "yes"`."""

    name = "view-reader"

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.seen: list[tuple[str, str]] = []

    def watches(self) -> Sequence[tuple[str, str]]:
        return [("v1", "ConfigMap")]

    def reconcile(self, obj: Obj) -> float | None:
        if (obj["metadata"].get("labels") or {}).get("read") != "yes":
            return None
        source = read_only(self.backend, "v1", "ConfigMap", "default", "a")
        self.seen.append((obj["metadata"]["name"], str((source or {}).get("data", {})
                                                      .get("value"))))
        return None


def test_a_reconcile_that_read_through_a_view_is_offered_again_on_its_change(
        env: SimulatedEnvironment) -> None:
    tracker = TrackingBackend(env.cluster)
    reader = ViewReader(tracker)
    sched = _Scheduler(env.cluster, tracker, env.clock, frozenset([reader.name]))
    env.cluster.apply({**_config_map("reader"), "metadata": {
        "name": "reader", "namespace": "default", "labels": {"read": "yes"}}})
    env.cluster.apply(_config_map("other"))
    sched.run_round([reader])
    assert reader.seen == [("reader", "one")]
    sched.run_round([reader])
    env.cluster.apply(_config_map("other", "changed"))
    sched.run_round([reader])
    assert reader.seen == [("reader", "one")]  # nothing it read changed
    env.cluster.apply(_config_map("a", "two"))
    sched.run_round([reader])
    assert reader.seen == [("reader", "one"), ("reader", "two")]
