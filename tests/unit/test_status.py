"""What the owner controller writes: blueprint selection conditions, mirrored blueprint readiness,
orphan removal with its event, and the blueprint's own status."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.engine.blueprints import BlueprintController
from reconciler.engine.owner import DELIVERABLE, WORKLOAD, OwnerController, OwnerKind
from reconciler.model.conditions import find_condition
from reconciler.model.crds import product_crds
from reconciler.model.objects import Obj
from simulator.clock import VirtualClock
from simulator.cluster import InMemoryCluster

API = "carto.run/v1alpha1"


def _cluster() -> tuple[InMemoryCluster, VirtualClock]:
    clock = VirtualClock()
    cluster = InMemoryCluster(clock)
    for crd in product_crds():
        cluster.apply(crd)
    return cluster, clock


def _template(name: str, cm: str) -> Obj:
    return {"apiVersion": API, "kind": "ClusterTemplate", "metadata": {"name": name},
            "spec": {"template": {"apiVersion": "v1", "kind": "ConfigMap",
                                  "metadata": {"name": cm}, "data": {"k": "v"}}}}


def _chain(name: str, selector: dict[str, str], *templates: str,
           kind: str = "ClusterSupplyChain") -> Obj:
    return {"apiVersion": API, "kind": kind, "metadata": {"name": name},
            "spec": {"selector": selector, "resources": [
                {"name": f"r-{t}", "templateRef": {"kind": "ClusterTemplate", "name": t}}
                for t in templates]}}


def _owner(labels: dict[str, str], kind: str = "Workload") -> Obj:
    return {"apiVersion": API, "kind": kind,
            "metadata": {"name": "app", "namespace": "default", "labels": labels}, "spec": {}}


def _reconcile(cluster: InMemoryCluster, clock: VirtualClock, kind: OwnerKind) -> Obj:
    controller = OwnerController(cluster, clock, kind)
    owner = cluster.get(API, kind.kind, "default", "app")
    assert owner is not None
    controller.reconcile(owner)
    live = cluster.get(API, kind.kind, "default", "app")
    assert live is not None
    return live


def _cond(obj: Obj, type_: str) -> dict[str, Any]:
    found = find_condition(obj["status"]["conditions"], type_)
    assert found is not None
    return dict(found)


@pytest.mark.parametrize("kind", [WORKLOAD, DELIVERABLE], ids=lambda k: k.kind)
@pytest.mark.parametrize(
    ("labels", "chains", "reason", "message"),
    [
        ({}, [], "{missing}", "{owner} has no labels to match to {words}"),
        ({"a": "1", "b": "2"}, [], "{notfound}",
         "no {words} found where full selector is satisfied by labels: map[a:1 b:2]"),
        ({"a": "1"}, [{"a": "1"}, {"a": "1"}], "{multiple}",
         "{owner} may only match a single {words}'s selector"),
    ],
)
def test_selection_conditions(kind: OwnerKind, labels: dict[str, str],
                              chains: list[dict[str, str]], reason: str, message: str) -> None:
    cluster, clock = _cluster()
    for i, selector in enumerate(chains):
        cluster.apply(_chain(f"c{i}", selector, kind=kind.blueprint_kind))
    cluster.apply(_owner(labels, kind.kind))
    owner = _reconcile(cluster, clock, kind)
    fmt = {"missing": kind.labels_missing_reason, "notfound": kind.not_found_reason,
           "multiple": kind.multiple_reason, "owner": kind.kind.lower(),
           "words": kind.blueprint_words}
    cond = _cond(owner, kind.blueprint_condition)
    assert (cond["status"], cond["reason"], cond["message"]) == (
        "False", reason.format(**fmt), message.format(**fmt))
    assert _cond(owner, "Ready")["reason"] == reason.format(**fmt)


def test_owner_mirrors_blueprint_not_ready_and_blueprint_writes_its_status() -> None:
    cluster, clock = _cluster()
    cluster.apply(_chain("chain", {"app": "x"}, "missing-template"))
    cluster.apply(_owner({"app": "x"}))
    owner = _reconcile(cluster, clock, WORKLOAD)
    expected = ("False", "TemplatesNotFound",
                "did not find the template of the resource(s) [r-missing-template]")
    cond = _cond(owner, "SupplyChainReady")
    assert (cond["status"], cond["reason"], cond["message"]) == expected

    chain = cluster.get(API, "ClusterSupplyChain", "", "chain")
    assert chain is not None
    BlueprintController(cluster, clock, "ClusterSupplyChain").reconcile(chain)
    chain = cluster.get(API, "ClusterSupplyChain", "", "chain")
    assert chain is not None
    for type_ in ("TemplatesReady", "Ready"):
        cond = _cond(chain, type_)
        assert (cond["status"], cond["reason"], cond["message"]) == expected


def test_resource_removed_from_chain_deletes_its_object_with_an_event() -> None:
    cluster, clock = _cluster()
    cluster.apply(_template("one", "cm-one"))
    cluster.apply(_template("two", "cm-two"))
    cluster.apply(_chain("chain", {"app": "x"}, "one", "two"))
    cluster.apply(_owner({"app": "x"}))
    owner = _reconcile(cluster, clock, WORKLOAD)
    assert _cond(owner, "Ready")["status"] == "True"
    labels = cluster.get("v1", "ConfigMap", "default", "cm-two")["metadata"]["labels"]  # type: ignore[index]
    assert labels["carto.run/workload-name"] == "app"
    assert labels["carto.run/resource-name"] == "r-two"
    assert labels["carto.run/template-lifecycle"] == "mutable"

    cluster.apply(_chain("chain", {"app": "x"}, "one"))
    owner = _reconcile(cluster, clock, WORKLOAD)
    assert cluster.get("v1", "ConfigMap", "default", "cm-two") is None
    assert cluster.get("v1", "ConfigMap", "default", "cm-one") is not None
    assert [r["name"] for r in owner["status"]["resources"]] == ["r-one"]
    removed = [e["message"] for e in cluster.events() if e["reason"] == "StampedObjectRemoved"]
    assert removed == ["Deleted object [configmaps/cm-two]"]
    applied = [e["message"] for e in cluster.events() if e["reason"] == "StampedObjectApplied"]
    assert applied == ["Created object [configmaps/cm-one]", "Created object [configmaps/cm-two]"]


def test_cluster_template_that_stamped_nothing_is_not_healthy_yet() -> None:
    cluster, clock = _cluster()
    broken = _template("broken", "$(workload.spec.missing)$")
    cluster.apply(broken)
    cluster.apply(_chain("chain", {"a": "1"}, "broken"))
    cluster.apply(_owner({"a": "1"}))
    live = _reconcile(cluster, clock, WORKLOAD)
    resource = live["status"]["resources"][0]
    healthy = find_condition(resource["conditions"], "Healthy")
    assert healthy is not None
    assert (healthy["status"], healthy["reason"]) == ("Unknown", "NoStampedObject")
    assert _cond(live, "ResourcesHealthy")["status"] == "Unknown"
    assert _cond(live, "ResourcesSubmitted")["reason"] == "TemplateStampFailure"
