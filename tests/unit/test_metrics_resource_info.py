"""reconciler_resource_info: one series per managed object, from its changes, never stale; and
the registry's process metrics and absent `_created` series."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.exposition import generate_latest

from reconciler.model.conditions import Condition, merge_conditions
from reconciler.model.errors import BackendError
from reconciler.model.objects import Obj
from reconciler.observability.metrics import ReconcilerMetrics
from reconciler.observability.resource_info import ResourceInfo, info_labels
from simulator.environment import SimulatedEnvironment

CARTO = "carto.run/v1alpha1"
STAMP = "2026-01-01T00:00:00Z"


def _ready(status: str) -> dict[str, Any]:
    return {"conditions": merge_conditions([], [Condition("Ready", status, "Test", "")], STAMP)}


def _workload(name: str, namespace: str = "default") -> Obj:
    return {"apiVersion": CARTO, "kind": "Workload",
            "metadata": {"name": name, "namespace": namespace}, "spec": {}}


def _series(metrics: ReconcilerMetrics) -> list[dict[str, str]]:
    """Every reconciler_resource_info sample's labels (each value asserted to be 1)."""
    found = []
    for family in metrics.registry.collect():
        if family.name == "reconciler_resource_info":
            for sample in family.samples:
                assert sample.value == 1.0
                found.append(dict(sample.labels))
    return found


@pytest.mark.parametrize(("obj", "labels"), [
    ({"kind": "Workload", "spec": {}}, ("Unknown", "false", "")),
    ({"kind": "Workload", "status": _ready("True")}, ("True", "false", "")),
    ({"kind": "Workload", "status": _ready("False")}, ("False", "false", "")),
    ({"kind": "Workload", "status": _ready("Weird")}, ("Unknown", "false", "")),
    ({"kind": "Workload", "status": {"conditions": "not a list"}}, ("Unknown", "false", "")),
    ({"kind": "GitRepository", "spec": {"suspend": True},
      "status": {**_ready("True"), "artifact": {"revision": "main@sha1:abc"}}},
     ("True", "true", "main@sha1:abc")),
    ({"kind": "Kustomization", "spec": {"suspend": False},
      "status": {**_ready("False"), "lastAppliedRevision": "main@sha1:def"}},
     ("False", "false", "main@sha1:def")),
    ({"kind": "Receiver", "spec": {"suspend": "yes"}}, ("Unknown", "false", "")),
])
def test_labels_of_an_object(obj: Obj, labels: tuple[str, str, str]) -> None:
    assert info_labels(obj) == labels


def test_tracked_cluster_objects_follow_their_changes_without_stale_series() -> None:
    env = SimulatedEnvironment()
    before = env.cluster.apply(_workload("early"))
    env.cluster.update_status({**before, "status": _ready("True")})
    metrics = ReconcilerMetrics()
    # Objects already there are listed once; later ones come as changes.
    assert metrics.resource_info.track(env.cluster) == 1
    env.cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    created = env.cluster.apply(_workload("late", "team"))
    env.cluster.apply({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "not-managed", "namespace": "default"}})
    assert sorted(_series(metrics), key=lambda s: s["name"]) == [
        {"kind": "Workload", "name": "early", "namespace": "default", "ready": "True",
         "suspended": "false", "revision": ""},
        {"kind": "Workload", "name": "late", "namespace": "team", "ready": "Unknown",
         "suspended": "false", "revision": ""},
    ]

    # A label change replaces the series: the old label set is gone at once.
    env.cluster.update_status({**created, "status": _ready("False")})
    late = [s for s in _series(metrics) if s["name"] == "late"]
    assert [s["ready"] for s in late] == ["False"]

    env.cluster.delete(CARTO, "Workload", "team", "late")
    assert [s["name"] for s in _series(metrics)] == ["early"]
    assert len(metrics.resource_info) == 1


def test_cluster_scoped_blueprints_have_an_empty_namespace() -> None:
    info = ResourceInfo()
    info.observe({"apiVersion": CARTO, "kind": "ClusterSupplyChain",
                  "metadata": {"name": "web"}, "status": _ready("True")})
    info.observe({"apiVersion": "kpack.io/v1alpha2", "kind": "Image",
                  "metadata": {"name": "img", "namespace": "default"}})
    info.observe({"apiVersion": "other.example/v1", "kind": "Workload",
                  "metadata": {"name": "same-kind-other-group", "namespace": "default"}})
    family = next(iter(info.collect()))
    assert [dict(s.labels) for s in family.samples] == [
        {"kind": "ClusterSupplyChain", "name": "web", "namespace": "", "ready": "True",
         "suspended": "false", "revision": ""}]


class KeyedSource:
    """KubernetesBackend's shape: a key listener, and reads answered from a cache."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], Obj] = {}
        self.listeners: list[Any] = []
        self.gets = 0
        self.failing = False

    def add_change_listener(self, listener: Any) -> None:
        self.listeners.append(listener)

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        self.gets += 1
        if self.failing:
            raise BackendError("cache not synced")
        return self.objects.get((kind, namespace, name))

    def list(self, api_version: str, kind: str) -> list[Obj]:
        if kind == "Kustomization":
            raise BackendError("the server could not find the requested resource")
        return [o for (k, _, _), o in self.objects.items() if k == kind]

    def put(self, obj: Obj) -> None:
        meta = obj["metadata"]
        self.objects[(obj["kind"], meta["namespace"], meta["name"])] = obj
        self.changed(obj["kind"], meta["namespace"], meta["name"])

    def changed(self, kind: str, namespace: str, name: str) -> None:
        group = "carto.run" if kind == "Workload" else ""
        for listener in self.listeners:
            listener(group, kind, namespace, name)


def test_key_notifications_are_read_back_at_scrape_time_only_for_changed_keys() -> None:
    source = KeyedSource()
    source.objects[("Workload", "default", "a")] = _workload("a")
    metrics = ReconcilerMetrics()
    assert metrics.resource_info.track(source) == 1  # a kind not served is skipped
    assert source.listeners and source.gets == 0

    source.put({**_workload("b"), "status": _ready("True")})
    source.changed("ConfigMap", "default", "x")  # not managed: never read
    assert source.gets == 0  # nothing is read under the informer's lock
    assert {s["name"]: s["ready"] for s in _series(metrics)} == {"a": "Unknown", "b": "True"}
    assert source.gets == 1
    _series(metrics)
    assert source.gets == 1  # nothing changed: nothing read

    del source.objects[("Workload", "default", "a")]
    source.changed("Workload", "default", "a")
    source.failing = True
    source.put(_workload("c"))
    assert {s["name"] for s in _series(metrics)} == {"a", "b"}  # unreadable: tried again later
    source.failing = False
    assert {s["name"] for s in _series(metrics)} == {"b", "c"}


def test_registry_has_process_metrics_and_no_created_series() -> None:
    metrics = ReconcilerMetrics()
    metrics.observe_reconcile("workload-controller", "success", 0.01)
    metrics.workqueues.for_queue("workload-controller").added()
    metrics.ticks_total.labels(result="ok").inc()
    text = generate_latest(metrics.registry).decode()
    assert "_created" not in text
    get = metrics.registry.get_sample_value
    assert get("python_info", {"implementation": "CPython", "major": "3",
                               "minor": str(__import__("sys").version_info.minor),
                               "patchlevel": str(__import__("sys").version_info.micro),
                               "version": __import__("platform").python_version()}) == 1.0
    assert "python_gc_objects_collected_total" in text
    if "process_cpu_seconds_total" not in text:  # ProcessCollector reads /proc
        pytest.skip("no /proc here: ProcessCollector exports nothing")
    assert (get("process_resident_memory_bytes") or 0) > 0
    assert (get("process_start_time_seconds") or 0) > 0
