"""Unchanged stamped objects are not read again (issue 14): a Workload reconcile that finds a
stamped object at the resourceVersion its outputs and health were derived from reuses them (no
copy of the object is read), and keeps that resource's `status.resources[]` entry as the last
status write left it; each thing that can change what the owner must report defeats the reuse.

Reads are counted through a wrapper around the real simulated cluster (a `get` is a copy; a
version read through `resource_versions` is not), never a mock."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from reconciler.backends.base import FIELD_MANAGER, Forwarding, Ref, resource_versions
from reconciler.chains.blueprint import Blueprint
from reconciler.chains.realizer import OwnerContext, Realized, Realizer
from reconciler.engine.owner import WORKLOAD, OwnerController
from reconciler.model.errors import Transient
from reconciler.model.objects import Obj
from simulator.clock import VirtualClock
from simulator.cluster import InMemoryCluster
from simulator.environment import SimulatedEnvironment
from tests.manifests import widget_crd

API = "carto.run/v1alpha1"
GROUP = "reuse.reconciler.dev"
WIDGET_API = f"{GROUP}/v1"


class Counting(Forwarding):
    """The cluster, with its gets (each a copy) counted by kind."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.gets: dict[str, int] = {}

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        self.gets[kind] = self.gets.get(kind, 0) + 1
        return super().get(api_version, kind, namespace, name)

    def resource_versions(self, refs: Sequence[Ref]) -> tuple[str | None, ...]:
        return resource_versions(self.inner, refs)  # no copy: not a `get`


def _source_template(**spec: Any) -> Obj:
    return {"apiVersion": API, "kind": "ClusterSourceTemplate", "metadata": {"name": "source"},
            "spec": {"urlPath": ".status.url", "revisionPath": ".status.revision",
                     "healthRule": {"singleConditionType": "Ready"},
                     "template": {"apiVersion": WIDGET_API, "kind": "Widget",
                                  "metadata": {"name": "$(workload.metadata.name)$"},
                                  "spec": {"size": "$(params.size)$"}},
                     **spec}}


APP_TEMPLATE: Obj = {
    "apiVersion": API, "kind": "ClusterTemplate", "metadata": {"name": "app"},
    "spec": {"template": {"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": "$(workload.metadata.name)$-app"},
                          "data": {"url": "$(source.url)$"}}}}

CHAIN: Obj = {
    "apiVersion": API, "kind": "ClusterSupplyChain", "metadata": {"name": "chain"},
    "spec": {"selector": {"app": "x"},
             "params": [{"name": "size", "default": 1}],
             "resources": [
                 {"name": "source", "templateRef": {"kind": "ClusterSourceTemplate",
                                                    "name": "source"}},
                 {"name": "app", "templateRef": {"kind": "ClusterTemplate", "name": "app"},
                  "sources": [{"resource": "source", "name": "source"}]}]}}


class World:
    def __init__(self, chain: Obj | None = None) -> None:
        self.env = SimulatedEnvironment()
        self.cluster = self.env.cluster
        self.cluster.apply(widget_crd(GROUP))
        self.backend = Counting(self.cluster)
        # Without the no-op fast path: every offer is a full reconcile.
        self.controller = OwnerController(self.backend, self.env.clock, WORKLOAD,
                                          fast_path=False)
        self.cluster.apply(_source_template())
        self.cluster.apply(APP_TEMPLATE)
        self.cluster.apply(CHAIN if chain is None else chain)
        self.cluster.apply({"apiVersion": API, "kind": "Workload",
                            "metadata": {"name": "app", "namespace": "default",
                                         "labels": {"app": "x"}},
                            "spec": {}})

    def workload(self) -> Obj:
        found = self.cluster.get(API, "Workload", "default", "app")
        assert found is not None
        return found

    def widget(self) -> Obj:
        found = self.cluster.get(WIDGET_API, "Widget", "default", "app")
        assert found is not None
        return found

    def app(self) -> Obj:
        found = self.cluster.get("v1", "ConfigMap", "default", "app-app")
        assert found is not None
        return found

    def set_widget_status(self, url: str, ready: str = "True", message: str = "") -> None:
        self.cluster.update_status({**self.widget(), "status": {
            "url": url, "revision": "main@sha1:1",
            "conditions": [{"type": "Ready", "status": ready, "reason": "Built",
                            "message": message}]}})

    def offer(self) -> dict[str, int]:
        """Offer the Workload once; the gets it made, by kind."""
        before = dict(self.backend.gets)
        self.controller.reconcile(self.workload())
        return {k: v - before.get(k, 0) for k, v in self.backend.gets.items()
                if v != before.get(k, 0)}

    def entry(self, name: str) -> Obj:
        return next(r for r in self.workload()["status"]["resources"] if r["name"] == name)

    def healthy(self, name: str) -> Obj:
        return next(c for c in self.entry(name)["conditions"] if c["type"] == "Healthy")

    def events(self) -> list[tuple[str, str]]:
        return [(str(e.get("reason")), str(e.get("message"))) for e in self.cluster.events()]

    def ready(self) -> str:
        conds = self.workload()["status"]["conditions"]
        return str(next(c for c in conds if c["type"] == "Ready")["status"])


@pytest.fixture
def world() -> World:
    w = World()
    w.offer()  # stamps the Widget; its outputs are not there yet
    w.set_widget_status("https://example.com/a.tgz")
    w.offer()  # reads them; stamps the ConfigMap
    w.offer()  # derives the ConfigMap's (it was created on the last offer)
    assert w.ready() == "True"
    assert w.app()["data"]["url"] == "https://example.com/a.tgz"
    return w


def test_unchanged_objects_are_not_read_and_their_entries_are_kept(world: World) -> None:
    status, events = world.workload()["status"], world.events()
    reads = world.controller.realizer.skipped_reads
    kept = world.controller.kept_entries
    for _ in range(3):
        gets = world.offer()
        assert "Widget" not in gets and "ConfigMap" not in gets
    assert world.controller.realizer.skipped_reads == reads + 6
    assert world.controller.kept_entries == kept + 6
    assert world.workload()["status"] == status
    assert world.events() == events


def test_a_status_change_is_read_and_shown(world: World) -> None:
    events = len(world.events())
    world.set_widget_status("https://example.com/b.tgz", ready="False", message="build failed")
    gets = world.offer()
    assert gets.get("Widget") == 1
    entry = world.entry("source")
    assert [o["preview"].strip() for o in entry["outputs"] if o["name"] == "url"] == [
        "https://example.com/b.tgz"]
    assert world.healthy("source")["status"] == "False"
    assert world.healthy("source")["message"] == "build failed"
    assert world.app()["data"]["url"] == "https://example.com/b.tgz"
    reasons = [reason for reason, _ in world.events()[events:]]
    assert "ResourceOutputChanged" in reasons and "ResourceHealthyStatusChanged" in reasons
    assert world.ready() == "False"
    # ... and that new state is what the next reconcile reuses.
    assert "Widget" not in world.offer()
    assert world.healthy("source")["status"] == "False"


def _reapplied(world: World, change: Callable[[Obj], None]) -> None:
    """Edit the Widget with an apply by the reconciler's own field manager (no conflict: the
    owner's apply puts it back)."""
    live = world.widget()
    body = {k: v for k, v in live.items() if k != "status"}
    body["metadata"] = {k: v for k, v in live["metadata"].items()
                        if k in ("name", "namespace", "labels", "annotations", "ownerReferences")}
    change(body)
    world.cluster.apply(body, FIELD_MANAGER)


@pytest.mark.parametrize("edit", ["spec", "labels"])
def test_an_edited_object_is_read_and_put_back(world: World, edit: str) -> None:
    if edit == "spec":
        _reapplied(world, lambda o: o["spec"].update(size=42))
    else:
        _reapplied(world, lambda o: o["metadata"]["labels"].update(
            {"carto.run/resource-name": "tampered"}))
    assert world.offer().get("Widget") == 1
    assert world.widget()["spec"]["size"] == 1
    assert world.widget()["metadata"]["labels"]["carto.run/resource-name"] == "source"
    assert world.ready() == "True"


def test_a_deleted_object_is_stamped_again(world: World) -> None:
    world.cluster.delete(WIDGET_API, "Widget", "default", "app")
    world.offer()
    assert world.widget()["spec"]["size"] == 1  # created again: no status yet
    conds = {c["type"]: c for c in world.entry("source")["conditions"]}
    assert conds["ResourceSubmitted"]["status"] == "Unknown"
    assert "waiting to read value [.status.url]" in conds["ResourceSubmitted"]["message"]
    assert world.ready() == "Unknown"


def test_a_changed_health_rule_is_applied_to_the_unchanged_object(world: World) -> None:
    world.cluster.apply(_source_template(healthRule={"singleConditionType": "Succeeded"}))
    assert world.offer().get("Widget") == 1  # nothing to render: only the rule changed
    assert world.healthy("source")["reason"] == "SingleConditionNoResult"
    assert world.ready() == "Unknown"


def test_a_changed_output_path_is_read(world: World) -> None:
    world.cluster.apply(_source_template(urlPath=".status.revision"))
    assert world.offer().get("Widget") == 1
    assert world.app()["data"]["url"] == "main@sha1:1"


def test_changed_owner_params_are_stamped(world: World) -> None:
    workload = world.workload()
    workload["spec"]["params"] = [{"name": "size", "value": 3}]
    world.cluster.apply(workload)
    reads, kept = world.controller.realizer.skipped_reads, world.controller.kept_entries
    world.offer()
    assert world.widget()["spec"]["size"] == 3
    # Only the ConfigMap (its template reads no param) is reused; the owner moved, so no entry
    # is kept as it was.
    assert world.controller.realizer.skipped_reads == reads + 1
    assert world.controller.kept_entries == kept


def test_an_entry_someone_else_changed_is_built_again(world: World) -> None:
    """The kept entry is the one the last status write left: a status written since by someone
    else (the owner's resourceVersion moved) gets every entry built afresh."""
    workload = world.workload()
    expected = world.entry("source")
    stale = {**expected, "outputs": [{**o, "preview": "stale\n"} for o in expected["outputs"]]}
    workload["status"]["resources"] = [
        stale if r["name"] == "source" else r for r in workload["status"]["resources"]]
    world.cluster.update_status(workload)
    kept = world.controller.kept_entries
    assert "Widget" not in world.offer()  # the Widget itself is unchanged: not read
    assert world.controller.kept_entries == kept
    assert world.entry("source") == expected


def test_forgetting_an_owner_drops_what_was_kept(world: World) -> None:
    kept = world.controller.kept_entries
    assert world.controller.shown("default", "app") == 2
    world.controller.forget("default", "app")
    assert world.controller.shown("default", "app") == 0
    gets = world.offer()
    assert gets.get("Widget") == 1 and gets.get("ConfigMap") == 1
    assert world.controller.kept_entries == kept
    assert world.ready() == "True"


# --- a deployment template's outputs follow its deployment input -------------------------------


def _delivery() -> Blueprint:
    return Blueprint.of({
        "apiVersion": API, "kind": "ClusterDelivery", "metadata": {"name": "delivery"},
        "spec": {"selector": {"app": "x"}, "resources": [
            {"name": "source-provider",
             "templateRef": {"kind": "ClusterSourceTemplate", "name": "source"}},
            {"name": "deployer", "templateRef": {"kind": "ClusterDeploymentTemplate",
                                                 "name": "deploy"},
             "deployment": {"resource": "source-provider"}}]}})


DELIVERY_TEMPLATES: dict[tuple[str, str], Obj] = {
    ("ClusterSourceTemplate", "source"): {
        "apiVersion": API, "kind": "ClusterSourceTemplate",
        "metadata": {"name": "source", "resourceVersion": "1"},
        "spec": {"urlPath": ".data.url", "revisionPath": ".data.revision", "template": {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "$(deliverable.metadata.name)$-source"},
            "data": {"url": "$(deliverable.spec.source.url)$", "revision": "r1"}}}},
    # Its body reads nothing of the deployment: only its outputs (the input, passed on) do.
    ("ClusterDeploymentTemplate", "deploy"): {
        "apiVersion": API, "kind": "ClusterDeploymentTemplate",
        "metadata": {"name": "deploy", "resourceVersion": "1"},
        "spec": {"observedMatches": [], "template": {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "$(deliverable.metadata.name)$-deploy"},
            "data": {"deployed": "yes"}}}},
}


def test_a_deployment_templates_outputs_follow_its_deployment_input() -> None:
    cluster = InMemoryCluster(VirtualClock())
    backend = Counting(cluster)
    realizer = Realizer(backend, lambda kind, name: DELIVERY_TEMPLATES.get((kind, name)))
    owner: Obj = {"apiVersion": API, "kind": "Deliverable",
                  "metadata": {"name": "app", "namespace": "default", "uid": "uid-1",
                               "labels": {"app": "x"}},
                  "spec": {"source": {"url": "https://example.com/one.tgz"}}}

    def realize() -> list[Realized]:
        ctx = OwnerContext(owner, "deliverable", "delivery",
                           lambda res, tpl: {"carto.run/resource-name": res.name})
        results = realizer.realize(ctx, _delivery())
        assert [r.error for r in results] == [None, None]
        return results

    realize()
    again = realize()
    assert [r.reused for r in again] == [True, True]
    assert again[1].outputs == {"url": "https://example.com/one.tgz", "revision": "r1"}
    owner["spec"]["source"]["url"] = "https://example.com/two.tgz"
    moved = realize()
    # The deployer's object is unchanged (nothing of it was rendered anew), but what it passes
    # on is its new input.
    assert [str(r.action) for r in moved] == ["configured", "unchanged"]
    assert not moved[1].reused
    assert moved[1].outputs == {"url": "https://example.com/two.tgz", "revision": "r1"}


def test_a_cluster_scoped_object_is_stamped_without_a_namespace() -> None:
    """The API server clears the namespace of a cluster-scoped object, so the stamp (which
    forces the owner's) leaves it out: otherwise every later realize would find the object
    changed and apply it again. Once in sync it is reused, named without a namespace."""
    cluster = InMemoryCluster(VirtualClock())
    templates = {("ClusterTemplate", "ns"): {
        "apiVersion": API, "kind": "ClusterTemplate",
        "metadata": {"name": "ns", "resourceVersion": "1"},
        "spec": {"template": {"apiVersion": "v1", "kind": "Namespace",
                              "metadata": {"name": "$(workload.metadata.name)$-space"}}}}}
    backend = Counting(cluster)
    realizer = Realizer(backend, lambda kind, name: templates.get((kind, name)))
    chain = Blueprint.of({
        "apiVersion": API, "kind": "ClusterSupplyChain", "metadata": {"name": "sc"},
        "spec": {"selector": {"app": "x"}, "resources": [
            {"name": "space", "templateRef": {"kind": "ClusterTemplate", "name": "ns"}}]}})
    owner: Obj = {"apiVersion": API, "kind": "Workload",
                  "metadata": {"name": "app", "namespace": "default", "uid": "uid-1"}}
    ctx = OwnerContext(owner, "workload", "supply chain", lambda res, tpl: {})
    first = realizer.realize(ctx, chain)[0]
    assert first.error is None and first.stamped is not None
    assert str(first.action) == "created" and "namespace" not in first.stamped["metadata"]
    again = realizer.realize(ctx, chain)[0]
    assert str(again.action) == "unchanged" and again.reused
    assert again.stamped is not None and again.stamped["metadata"] == {
        k: first.stamped["metadata"][k] for k in ("name", "uid", "resourceVersion")}
    assert backend.gets.get("Namespace", 0) == 1  # the create's own read only


def test_a_blueprint_change_that_leaves_the_render_alone_rebuilds_the_kept_entry() -> None:
    """A kept `status.resources[]` entry also shows the blueprint's wiring (its `inputs`): a
    resource switched to another source with the same outputs renders and stamps the same
    object, but its entry must name the new input."""
    chain = copy.deepcopy(CHAIN)
    chain["spec"]["resources"].insert(1, {
        "name": "mirror", "templateRef": {"kind": "ClusterSourceTemplate", "name": "mirror"}})
    w = World(chain)
    mirror = _source_template()
    mirror["metadata"]["name"] = "mirror"
    mirror["spec"]["template"]["metadata"]["name"] = "$(workload.metadata.name)$-mirror"
    w.cluster.apply(mirror)
    w.offer()
    w.set_widget_status("https://example.com/a.tgz")
    copied = w.cluster.get(WIDGET_API, "Widget", "default", "app-mirror")
    assert copied is not None
    w.cluster.update_status({**copied, "status": w.widget()["status"]})
    for _ in range(3):
        w.offer()
    assert w.ready() == "True"
    assert w.entry("app").get("inputs") == [{"name": "source"}]
    config = w.app()
    chain["spec"]["resources"][2]["sources"] = [{"resource": "mirror", "name": "source"}]
    w.cluster.apply(chain)
    w.offer()
    assert w.ready() == "True"
    assert w.app()["metadata"]["resourceVersion"] == config["metadata"]["resourceVersion"]
    assert w.entry("app").get("inputs") == [{"name": "mirror"}]


def test_entries_of_a_reconcile_that_failed_are_not_kept(world: World) -> None:
    """A reconcile that fails after building its entries writes the previous ones back (the
    last good status): the retry must build them again, not keep what the failed one built."""
    world.set_widget_status("https://example.com/b.tgz")  # a new output: an Event to emit
    real = world.backend.emit_event
    refused: list[str] = []

    def emit_event(involved: Obj, type_: str, reason: str, message: str,
                   *rest: Any) -> None:
        if reason == "ResourceOutputChanged" and not refused:
            refused.append(reason)
            raise Transient("ServiceUnavailable", "events: the server is busy")
        real(involved, type_, reason, message, *rest)

    world.backend.emit_event = emit_event  # type: ignore[method-assign, assignment]
    with contextlib.suppress(Transient):  # the runner retries it
        world.offer()
    assert refused
    world.offer()  # the Widget has not changed since: its derivation is reused
    assert world.entry("source")["outputs"][0]["preview"].startswith("https://example.com/b.tgz")
