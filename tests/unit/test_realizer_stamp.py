"""Stamping leaves the template alone: the owner controller hands the realizer one kept copy of
each template for every owner, so nothing one owner's stamp writes may show up in the next."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest

from reconciler.chains.blueprint import Blueprint, BlueprintResource, Template
from reconciler.chains.realizer import OwnerContext, Realizer
from reconciler.model.crds import product_crds
from reconciler.model.objects import Obj
from simulator.clock import VirtualClock
from simulator.cluster import InMemoryCluster

API = "carto.run/v1alpha1"

CHAIN = Blueprint.of({
    "apiVersion": API, "kind": "ClusterSupplyChain", "metadata": {"name": "sc"},
    "spec": {"selector": {"app": "x"},
             "resources": [{"name": "cm", "templateRef": {"kind": "ClusterTemplate",
                                                          "name": "cm"}}]}})


def _template(body: Obj) -> Obj:
    return {"apiVersion": API, "kind": "ClusterTemplate",
            "metadata": {"name": "cm", "resourceVersion": "1"}, "spec": {"template": body}}


def _owner(namespace: str, name: str, uid: str) -> Obj:
    return {"apiVersion": API, "kind": "Workload",
            "metadata": {"name": name, "namespace": namespace, "uid": uid}, "spec": {}}


def _labels(name: str) -> Callable[[BlueprintResource, Template], dict[str, str]]:
    return lambda _resource, _template: {"carto.run/workload-name": name}


@pytest.mark.parametrize("body", [
    # Tags outside metadata: the rendered metadata is the template's own mapping.
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "labels": {"a": "b"}},
     "data": {"owner": "$(workload.metadata.name)$"}},
    # No tags at all: the render is the template itself.
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"k": "v"}},
], ids=["tags-outside-metadata", "no-tags"])
def test_stamping_for_several_owners_does_not_change_the_shared_template(body: Obj) -> None:
    cluster = InMemoryCluster(VirtualClock())
    for crd in product_crds():
        cluster.apply(crd)
    for namespace in ("team-a", "team-b"):
        cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    template = _template(body)
    pristine = copy.deepcopy(template)
    realizer = Realizer(cluster, lambda kind, name: template)
    stamped = []
    for namespace, name, uid in (("team-a", "one", "u-1"), ("team-b", "two", "u-2")):
        owner = _owner(namespace, name, uid)
        ctx = OwnerContext(owner, "workload", "supply chain", _labels(name))
        [result] = realizer.realize(ctx, CHAIN)
        assert result.error is None, result.error
        assert result.stamped is not None
        stamped.append(result.stamped)
    assert template == pristine
    second = stamped[1]["metadata"]
    assert second["namespace"] == "team-b"
    assert second["labels"]["carto.run/workload-name"] == "two"
    assert [ref["uid"] for ref in second["ownerReferences"]] == ["u-2"]
