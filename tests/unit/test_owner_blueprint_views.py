"""The owner controller parses its blueprints once per version: while the blueprint kind's
version is unchanged it selects from the blueprints it listed last (no list, no parse); a
created, edited or deleted blueprint is seen at once, and only the blueprints that changed are
parsed again. Each template is looked up once per reconcile, and afresh by the next."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.engine.owner import WORKLOAD, OwnerController
from reconciler.model.conditions import find_condition
from reconciler.model.objects import Obj
from simulator.environment import SimulatedEnvironment

API = "carto.run/v1alpha1"


def _template(name: str,
              value: str = "$(params.greeting)$ $(workload.spec.params[0].value)$") -> Obj:
    return {"apiVersion": API, "kind": "ClusterConfigTemplate", "metadata": {"name": name},
            "spec": {"configPath": ".data", "template": {
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "$(workload.metadata.name)$-" + name},
                "data": {"value": value}}}}


def _chain(name: str, selector: dict[str, str], *templates: str) -> Obj:
    # Params at both levels, so rendering reads them from the blueprint every reconcile shares.
    return {"apiVersion": API, "kind": "ClusterSupplyChain", "metadata": {"name": name},
            "spec": {"selector": selector, "params": [{"name": "greeting", "default": "hi"}],
                     "resources": [
                         {"name": t, "templateRef": {"kind": "ClusterConfigTemplate", "name": t},
                          "params": [{"name": "tier", "value": {"level": [1, 2]}}]}
                         for t in templates]}}


def _assert_views_unchanged(w: World) -> None:
    """The blueprints the controller keeps are still exactly the live ones: rendering from them
    changed nothing in them."""
    snapshot = w.controller._blueprints
    assert snapshot is not None
    for view in snapshot.views:
        live = w.cluster.get(API, "ClusterSupplyChain", "", view.blueprint.name)
        assert live is not None and view.blueprint.obj == live


class World:
    def __init__(self, fast_path: bool) -> None:
        self.env = SimulatedEnvironment()
        self.cluster = self.env.cluster
        self.controller = OwnerController(self.cluster, self.env.clock, WORKLOAD,
                                          fast_path=fast_path)
        self.lists = 0
        real = self.cluster.list

        def counting(api_version: str, kind: str, *args: Any, **kwargs: Any) -> Any:
            if kind == "ClusterSupplyChain":
                self.lists += 1
            return real(api_version, kind, *args, **kwargs)

        self.cluster.list = counting  # type: ignore[method-assign]
        for name in ("one", "two"):
            self.cluster.apply(_template(name))
        self.cluster.apply(_chain("chain-a", {"app": "a"}, "one"))
        self.cluster.apply(_chain("chain-b", {"app": "b"}, "two"))
        for name, app in (("app", "a"), ("other", "b")):
            self.cluster.apply({"apiVersion": API, "kind": "Workload",
                                "metadata": {"name": name, "namespace": "default",
                                             "labels": {"app": app}},
                                "spec": {"params": [{"name": "value", "value": name}]}})

    def reconcile(self, name: str = "app") -> Obj:
        found = self.cluster.get(API, "Workload", "default", name)
        assert found is not None
        self.controller.reconcile(found)
        after = self.cluster.get(API, "Workload", "default", name)
        assert after is not None
        return after


def _chosen(workload: Obj) -> str | None:
    ref = workload["status"].get("supplyChainRef")
    return None if ref is None else str(ref["name"])


def _ready(workload: Obj) -> tuple[str, str]:
    cond = find_condition(workload["status"]["conditions"], "Ready")
    assert cond is not None
    return str(cond["status"]), str(cond["reason"])


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path", "no-fast-path"])
def test_blueprints_are_listed_and_parsed_again_only_when_one_changed(fast_path: bool) -> None:
    w = World(fast_path)
    assert _chosen(w.reconcile("app")) == "chain-a"
    assert _chosen(w.reconcile("other")) == "chain-b"
    assert w.lists == 1  # the second owner selected from the first one's list
    for _ in range(2):
        w.reconcile("app")
        w.reconcile("other")
    assert w.lists == 1
    _assert_views_unchanged(w)
    cm = w.cluster.get("v1", "ConfigMap", "default", "app-one")
    assert cm is not None and cm["data"]["value"] == "hi app"
    snapshot = w.controller._blueprints
    assert snapshot is not None
    parsed = {v.blueprint.name: v.blueprint for v in snapshot.views}

    # An edited blueprint is used at once; the one that did not change is not parsed again.
    w.cluster.apply(_chain("chain-a", {"app": "a"}, "one", "two"))
    workload = w.reconcile("app")
    assert w.lists == 2
    assert [r["name"] for r in workload["status"]["resources"]] == ["one", "two"]
    snapshot = w.controller._blueprints
    assert snapshot is not None
    now = {v.blueprint.name: v.blueprint for v in snapshot.views}
    assert now["chain-b"] is parsed["chain-b"]
    assert now["chain-a"] is not parsed["chain-a"]
    _assert_views_unchanged(w)

    # A new blueprint that is more specific takes over; a deleted one is forgotten.
    w.cluster.apply(_chain("chain-a2", {"app": "a", "tier": "x"}, "one"))
    relabelled = w.cluster.get(API, "Workload", "default", "app")
    assert relabelled is not None
    relabelled["metadata"]["labels"]["tier"] = "x"
    w.cluster.apply(relabelled)
    assert _chosen(w.reconcile("app")) == "chain-a2"
    w.cluster.delete(API, "ClusterSupplyChain", "", "chain-a2")
    w.cluster.delete(API, "ClusterSupplyChain", "", "chain-a")
    assert _ready(w.reconcile("app")) == ("False", "SupplyChainNotFound")
    snapshot = w.controller._blueprints
    assert snapshot is not None
    assert [v.blueprint.name for v in snapshot.views] == ["chain-b"]


def test_each_template_is_looked_up_once_per_reconcile_and_afresh_by_the_next() -> None:
    w = World(fast_path=False)
    w.reconcile("app")
    cluster_get = w.cluster.get
    gets: list[str] = []

    def counting_get(api_version: str, kind: str, namespace: str, name: str) -> Any:
        if kind == "ClusterConfigTemplate":
            gets.append(name)
        return cluster_get(api_version, kind, namespace, name)

    versions = w.cluster.resource_versions
    reads: list[tuple[str, ...]] = []

    def counting_versions(refs: Any) -> Any:
        reads.extend(tuple(r) for r in refs if r[1] == "ClusterConfigTemplate")
        return versions(refs)

    w.cluster.get = counting_get  # type: ignore[method-assign]
    w.cluster.resource_versions = counting_versions  # type: ignore[method-assign]
    w.reconcile("app")
    # The blueprint's check and the realizer both needed it: one read.
    assert reads == [(API, "ClusterConfigTemplate", "", "one")]
    assert gets == []  # the kept copy of that version
    # An edit between reconciles is seen by the next one.
    w.cluster.apply(_template("one", "edited $(workload.spec.params[0].value)$"))
    w.reconcile("app")
    assert gets == ["one"]
    cm = cluster_get("v1", "ConfigMap", "default", "app-one")
    assert cm is not None and cm["data"]["value"] == "edited app"
    # Outside a reconcile, a lookup reads the live template, never a reconcile's memo.
    w.cluster.apply(_template("one", "again"))
    found = w.controller._template("ClusterConfigTemplate", "one")
    assert found is not None and found["spec"]["template"]["data"]["value"] == "again"
