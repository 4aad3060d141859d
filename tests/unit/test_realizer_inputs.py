"""Resource inputs: a resource is stamped only once every resource it consumes has produced its
outputs (Cartographer's early-stamp regressions), and a pass-through resource reports
ResourceSubmitted and Ready but no Healthy condition (Cartographer evaluates health only for a
resource with a template)."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.engine.owner import WORKLOAD, OwnerController
from reconciler.model.crds import product_crds
from reconciler.model.objects import Obj
from simulator.clock import VirtualClock
from simulator.cluster import InMemoryCluster

API = "carto.run/v1alpha1"


def _source_template(name: str, data: dict[str, str]) -> Obj:
    return {"apiVersion": API, "kind": "ClusterSourceTemplate", "metadata": {"name": name},
            "spec": {"urlPath": ".data.url", "revisionPath": ".data.revision",
                     "template": {"apiVersion": "v1", "kind": "ConfigMap",
                                  "metadata": {"name": name}, "data": data}}}


def _config_map_template(name: str, value: str) -> Obj:
    return {"apiVersion": API, "kind": "ClusterTemplate", "metadata": {"name": name},
            "spec": {"template": {"apiVersion": "v1", "kind": "ConfigMap",
                                  "metadata": {"name": name}, "data": {"value": value}}}}


def _run(objects: list[Obj], resources: list[dict[str, Any]]) -> tuple[InMemoryCluster, Obj]:
    cluster = InMemoryCluster(VirtualClock())
    for crd in product_crds():
        cluster.apply(crd)
    for obj in objects:
        cluster.apply(obj)
    cluster.apply({"apiVersion": API, "kind": "ClusterSupplyChain", "metadata": {"name": "sc"},
                   "spec": {"selector": {"app": "x"}, "resources": resources}})
    cluster.apply({"apiVersion": API, "kind": "Workload",
                   "metadata": {"name": "app", "namespace": "default", "labels": {"app": "x"}},
                   "spec": {}})
    controller = OwnerController(cluster, VirtualClock(), WORKLOAD)
    owner = cluster.get(API, "Workload", "default", "app")
    assert owner is not None
    controller.reconcile(owner)
    live = cluster.get(API, "Workload", "default", "app")
    assert live is not None
    return cluster, live


def _resource(live: Obj, name: str) -> dict[str, Any]:
    found = next(r for r in live["status"]["resources"] if r["name"] == name)
    assert isinstance(found, dict)
    return found


SOURCE = {"name": "first", "templateRef": {"kind": "ClusterSourceTemplate", "name": "first"}}
CONSUMER = {"name": "second", "templateRef": {"kind": "ClusterTemplate", "name": "second"},
            "sources": [{"resource": "first", "name": "source"}]}


@pytest.mark.parametrize(
    ("first_data", "second_stamped", "second_submitted"),
    [
        # The producer's outputs are missing: the consumer must not be stamped, even though its
        # template never interpolates the input.
        ({"other": "x"}, False, "Unknown"),
        ({"url": "https://example.com", "revision": "r1"}, True, "True"),
    ],
    ids=["producer-without-outputs", "producer-with-outputs"],
)
def test_a_resource_waits_for_the_outputs_it_consumes(
    first_data: dict[str, str], second_stamped: bool, second_submitted: str,
) -> None:
    cluster, live = _run(
        [_source_template("first", first_data), _config_map_template("second", "thing")],
        [SOURCE, CONSUMER])
    assert (cluster.get("v1", "ConfigMap", "default", "second") is not None) is second_stamped
    submitted = _resource(live, "second")["conditions"][0]
    assert (submitted["type"], submitted["status"]) == ("ResourceSubmitted", second_submitted)
    if not second_stamped:
        assert submitted["reason"] == "MissingValueAtPath"
        assert "[first]" in submitted["message"]
        assert "resource [second] in supply chain [sc]" in submitted["message"]


def test_a_pass_through_has_no_healthy_condition() -> None:
    passing = {"name": "tester", "sources": [{"resource": "first", "name": "my-source"}],
               "templateRef": {"kind": "ClusterSourceTemplate",
                               # Cartographer's webhook wants at least two options.
                               "options": [{"passThrough": "my-source",
                                            "selector": {"matchLabels": {"app": "x"}}},
                                           {"name": "first",
                                            "selector": {"matchLabels": {"app": "y"}}}]}}
    _, live = _run([_source_template("first", {"url": "u", "revision": "r"})],
                   [SOURCE, passing])
    conditions = [(c["type"], c["status"], c["reason"])
                  for c in _resource(live, "tester")["conditions"]]
    assert conditions == [("ResourceSubmitted", "True", "PassThrough"),
                          ("Ready", "True", "Ready")]
    owner = {c["type"]: (c["status"], c["reason"]) for c in live["status"]["conditions"]}
    assert owner["ResourcesHealthy"] == ("True", "HealthyConditionRule")
    assert owner["Ready"] == ("True", "Ready")


@pytest.mark.parametrize("reference", ["owner", "workload"])
def test_templates_reach_the_owner_as_owner_and_by_kind(reference: str) -> None:
    template = _config_map_template("named", f"$({reference}.metadata.name)$")
    cluster, _ = _run([template], [{"name": "named",
                                    "templateRef": {"kind": "ClusterTemplate",
                                                    "name": "named"}}])
    stamped = cluster.get("v1", "ConfigMap", "default", "named")
    assert stamped is not None and stamped["data"] == {"value": "app"}
