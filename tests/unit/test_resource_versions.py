"""Versions without copies (`backends.base.resource_versions` / `kind_versions`), what the
owner's no-op fast path compares: on the simulated cluster, through read tracking and the
daemon's lock, and the fallback through `get`/`list` for a backend without them."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import pytest

from reconciler.backends.base import Forwarding, kind_versions, resource_versions
from reconciler.daemon.locked import LockedBackend
from reconciler.engine.tracking import TrackingBackend
from reconciler.ha.gate import LeaderGatedBackend
from reconciler.model.errors import Rejected
from reconciler.model.objects import Obj
from simulator.cluster import InMemoryCluster
from simulator.environment import SimulatedEnvironment

API = "carto.run/v1alpha1"


def _config_map(name: str, value: str = "one", namespace: str = "default") -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace}, "data": {"value": value}}


@pytest.fixture
def cluster() -> InMemoryCluster:
    c = SimulatedEnvironment().cluster
    c.apply(_config_map("a"))
    c.apply(_config_map("b"))
    c.apply({"apiVersion": API, "kind": "ClusterSupplyChain", "metadata": {"name": "chain"},
             "spec": {"selector": {"app": "x"}, "resources": []}})
    return c


REFS = (("v1", "ConfigMap", "default", "a"), ("v1", "ConfigMap", "default", "missing"),
        ("v1", "Namespace", "ignored-for-a-cluster-scoped-kind", "default"))


def test_the_stored_versions_themselves_and_nothing_written(cluster: InMemoryCluster) -> None:
    revision = cluster.revision
    versions = resource_versions(cluster, REFS)
    stored = cluster.stored(("", "ConfigMap", "default", "a"))
    namespace = cluster.stored(("", "Namespace", "", "default"))
    assert stored is not None and namespace is not None
    # The stored strings, not copies; None for what does not exist; the namespace a
    # cluster-scoped kind was named with is ignored, as `get` ignores it.
    assert versions[0] is stored["metadata"]["resourceVersion"]
    assert versions[1] is None
    assert versions[2] is namespace["metadata"]["resourceVersion"]
    assert versions == tuple(
        (o or {}).get("metadata", {}).get("resourceVersion") for o in
        (cluster.get(*ref) for ref in REFS))
    assert cluster.revision == revision


def test_a_version_changes_with_its_object_only(cluster: InMemoryCluster) -> None:
    before = resource_versions(cluster, REFS)
    cluster.apply(_config_map("b", "two"))
    assert resource_versions(cluster, REFS) == before
    cluster.apply(_config_map("a", "two"))
    after = resource_versions(cluster, REFS)
    assert after[0] != before[0] and after[1:] == before[1:]
    cluster.apply(_config_map("missing"))
    assert resource_versions(cluster, REFS)[1] is not None
    cluster.delete("v1", "ConfigMap", "default", "a")
    assert resource_versions(cluster, REFS)[0] is None


def test_an_unserved_kind_is_refused_as_get_refuses_it(cluster: InMemoryCluster) -> None:
    with pytest.raises(Rejected):
        cluster.get("example.dev/v1", "Widget", "default", "a")
    with pytest.raises(Rejected):
        resource_versions(cluster, [("example.dev/v1", "Widget", "default", "a")])
    with pytest.raises(Rejected):
        kind_versions(cluster, "example.dev/v1", "Widget")


def test_a_kind_version_changes_with_any_object_of_the_kind(cluster: InMemoryCluster) -> None:
    revision = cluster.revision
    chains = kind_versions(cluster, API, "ClusterSupplyChain")
    assert cluster.revision == revision
    cluster.apply(_config_map("a", "other kind"))
    assert kind_versions(cluster, API, "ClusterSupplyChain") == chains
    cluster.apply({"apiVersion": API, "kind": "ClusterSupplyChain", "metadata": {"name": "two"},
                   "spec": {"selector": {"app": "y"}, "resources": []}})
    created = kind_versions(cluster, API, "ClusterSupplyChain")
    assert created != chains
    live = cluster.get(API, "ClusterSupplyChain", "", "chain")
    assert live is not None
    live["spec"]["selector"] = {"app": "z"}
    cluster.apply(live)
    changed = kind_versions(cluster, API, "ClusterSupplyChain")
    assert changed != created
    cluster.delete(API, "ClusterSupplyChain", "", "two")
    assert kind_versions(cluster, API, "ClusterSupplyChain") not in (chains, created, changed)


def test_reads_are_recorded_as_get_and_list_record_them(cluster: InMemoryCluster) -> None:
    cluster.begin()
    for ref in REFS:
        cluster.get(*ref)
    cluster.list(API, "ClusterSupplyChain")
    by_get = cluster.end().dependencies
    cluster.begin()
    resource_versions(cluster, REFS)
    kind_versions(cluster, API, "ClusterSupplyChain")
    assert cluster.end().dependencies == by_get
    assert ("key", "", "Namespace", "", "default") in by_get


def test_through_read_tracking(cluster: InMemoryCluster) -> None:
    tracker = TrackingBackend(cluster)
    tracker.begin()
    for ref in REFS:
        tracker.get(*ref)
    tracker.list(API, "ClusterSupplyChain")
    by_get = tracker.end().dependencies
    revision = cluster.revision
    tracker.begin()
    versions = resource_versions(tracker, REFS)
    chains = kind_versions(tracker, API, "ClusterSupplyChain")
    assert tracker.end().dependencies == by_get
    assert versions == resource_versions(cluster, REFS)
    assert versions[0] is cluster.stored(("", "ConfigMap", "default", "a"))["metadata"][  # type: ignore[index]
        "resourceVersion"]
    assert chains == kind_versions(cluster, API, "ClusterSupplyChain")
    assert cluster.revision == revision


class CountingLock(contextlib.AbstractContextManager[Any]):
    """A lock that only counts how often it was taken."""

    def __init__(self) -> None:
        self.taken = 0

    def __enter__(self) -> None:
        self.taken += 1

    def __exit__(self, *exc: object) -> None:
        return None


def test_through_the_daemons_lock(cluster: InMemoryCluster) -> None:
    counting = CountingLock()
    locked = LockedBackend(cluster, lock=counting)
    revision = cluster.revision
    versions = resource_versions(locked, REFS)
    assert counting.taken == 1
    assert versions == resource_versions(cluster, REFS)
    assert versions[0] is cluster.stored(("", "ConfigMap", "default", "a"))["metadata"][  # type: ignore[index]
        "resourceVersion"]
    assert kind_versions(locked, API, "ClusterSupplyChain") == kind_versions(
        cluster, API, "ClusterSupplyChain")
    assert counting.taken == 2
    # The daemon's stack: tracking over the lock over the cluster.
    tracker = TrackingBackend(locked)
    tracker.begin()
    assert resource_versions(tracker, REFS) == versions
    assert ("key", "", "ConfigMap", "default", "a") in tracker.end().dependencies
    assert cluster.revision == revision


class OnlyGetAndList:
    """A backend with no version reads of its own: `get` and `list` only (counted)."""

    def __init__(self, inner: InMemoryCluster) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        self.calls.append("get")
        return self.inner.get(api_version, kind, namespace, name)

    def list(self, api_version: str, kind: str, namespace: str | None = None,
             labels: Mapping[str, str] | None = None) -> list[Obj]:
        self.calls.append("list")
        return self.inner.list(api_version, kind, namespace, labels)


def test_a_backend_without_them_is_read_with_get_and_list(cluster: InMemoryCluster) -> None:
    plain = OnlyGetAndList(cluster)
    assert resource_versions(plain, REFS) == resource_versions(cluster, REFS)  # type: ignore[arg-type]
    assert plain.calls == ["get"] * len(REFS)
    chains = kind_versions(plain, API, "ClusterSupplyChain")  # type: ignore[arg-type]
    assert plain.calls[-1] == "list"
    cluster.apply({"apiVersion": API, "kind": "ClusterSupplyChain", "metadata": {"name": "two"},
                   "spec": {"selector": {"app": "y"}, "resources": []}})
    assert kind_versions(plain, API, "ClusterSupplyChain") != chains  # type: ignore[arg-type]


class Faulty(Forwarding):
    """A wrapper that changes reads: every `get` and `list` fails."""

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        raise Rejected("the read is refused")

    def list(self, api_version: str, kind: str, namespace: str | None = None,
             labels: Mapping[str, str] | None = None) -> list[Obj]:
        raise Rejected("the list is refused")


def test_a_wrapper_that_changes_reads_is_read_through_never_around(
        cluster: InMemoryCluster) -> None:
    faulty = Faulty(cluster)
    with pytest.raises(Rejected, match="read is refused"):
        resource_versions(faulty, REFS)
    with pytest.raises(Rejected, match="list is refused"):
        kind_versions(faulty, API, "ClusterSupplyChain")
    # A wrapper that leaves reads alone goes to the inner backend's own, copy-free reads.
    assert resource_versions(Forwarding(cluster), REFS)[0] is cluster.stored(
        ("", "ConfigMap", "default", "a"))["metadata"]["resourceVersion"]  # type: ignore[index]


def test_a_crd_change_is_seen_by_the_cached_kind(cluster: InMemoryCluster) -> None:
    crd: Obj = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.dev"},
        "spec": {"group": "example.dev", "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": {
                                   "type": "object",
                                   "x-kubernetes-preserve-unknown-fields": True}}}]}}
    cluster.apply(crd)
    cluster.apply({"apiVersion": "example.dev/v1", "kind": "Widget",
                   "metadata": {"name": "w", "namespace": "default"}})
    ref = [("example.dev/v1", "Widget", "default", "w")]
    assert resource_versions(cluster, ref)[0] is not None
    # v1 no longer served: refused as `get` refuses it, not answered from a cached kind.
    crd["spec"]["versions"] = [{**crd["spec"]["versions"][0], "name": "v2"}]
    cluster.apply(crd)
    with pytest.raises(Rejected):
        cluster.get(*ref[0])
    with pytest.raises(Rejected):
        resource_versions(cluster, ref)


def test_through_the_leader_gate_reads_are_not_gated(cluster: InMemoryCluster) -> None:
    standby = LeaderGatedBackend(cluster, lambda: False)
    versions = resource_versions(standby, REFS)
    assert versions[0] is cluster.stored(("", "ConfigMap", "default", "a"))["metadata"][  # type: ignore[index]
        "resourceVersion"]
    assert kind_versions(standby, API, "ClusterSupplyChain") == kind_versions(
        cluster, API, "ClusterSupplyChain")
