"""The realizer's per-resource skip (issue 14): a mutable resource whose render inputs, stamp
and live object are what they were when it was last found in sync is neither rendered nor
applied again, and each of the things that can change defeats the skip.

Counted through a wrapper around the real simulated cluster (renders through the realizer's
own counters, applies and reads through the wrapper), never a mock."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from reconciler.backends.base import FIELD_MANAGER, Forwarding, Ref, resource_versions
from reconciler.chains.blueprint import Blueprint, BlueprintResource, Template
from reconciler.chains.realizer import (
    MAX_RECORDED_OWNERS,
    OwnerContext,
    Realized,
    Realizer,
)
from reconciler.model.crds import product_crds
from reconciler.model.objects import Obj
from simulator.clock import VirtualClock
from simulator.cluster import InMemoryCluster
from tests.manifests import widget_crd

API = "carto.run/v1alpha1"
GROUP = "skip.reconciler.dev"
WIDGET_API = f"{GROUP}/v1"


class Counting(Forwarding):
    """The cluster, with its applies, gets (each a copy) and version reads (no copy)
    counted."""

    def __init__(self, inner: InMemoryCluster) -> None:
        super().__init__(inner)
        self.applies = 0
        self.gets = 0
        self.versions = 0

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        self.gets += 1
        return super().get(api_version, kind, namespace, name)

    def resource_versions(self, refs: Sequence[Ref]) -> tuple[str | None, ...]:
        self.versions += len(refs)
        return resource_versions(self.inner, refs)

    def apply(self, obj: Obj, field_manager: str = FIELD_MANAGER, force: bool = False) -> Obj:
        self.applies += 1
        return super().apply(obj, field_manager, force)


def _widget_crd() -> Obj:
    return widget_crd(GROUP)


WIDGET: Obj = {"apiVersion": WIDGET_API, "kind": "Widget",
          "metadata": {"name": "$(workload.metadata.name)$"},
          "spec": {"size": "$(params.size)$", "source": "$(sources.source.url)$",
                   "greeting": "hello $(workload.metadata.name)$"}}
CONFIG_MAP: Obj = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "$(workload.metadata.name)$-settings"},
              "data": {"value": "$(workload.spec.env[0].value)$"}}


def _chain() -> Blueprint:
    return Blueprint.of({
        "apiVersion": API, "kind": "ClusterSupplyChain", "metadata": {"name": "sc"},
        "spec": {"selector": {"app": "x"},
                 "params": [{"name": "size", "default": 1}],
                 "resources": [
                     {"name": "source", "templateRef": {"kind": "ClusterSourceTemplate",
                                                        "name": "source"}},
                     {"name": "widget", "templateRef": {"kind": "ClusterTemplate",
                                                        "name": "widget"},
                      "sources": [{"resource": "source", "name": "source"}]},
                     {"name": "settings", "templateRef": {"kind": "ClusterTemplate",
                                                          "name": "settings"}},
                 ]}})


class World:
    def __init__(self) -> None:
        self.cluster = InMemoryCluster(VirtualClock())
        for crd in (*product_crds(), _widget_crd()):
            self.cluster.apply(crd)
        self.backend = Counting(self.cluster)
        self.templates: dict[tuple[str, str], Obj] = {}
        self.set_template("ClusterSourceTemplate", "source", {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "$(workload.metadata.name)$-source"},
            "data": {"url": "https://example.com/$(workload.metadata.name)$.tgz"}},
            urlPath=".data.url")
        self.set_template("ClusterTemplate", "widget", WIDGET)
        self.set_template("ClusterTemplate", "settings", CONFIG_MAP)
        self.realizer = Realizer(self.backend, lambda kind, name: self.templates.get((kind, name)))
        self.owner: Obj = {
            "apiVersion": API, "kind": "Workload",
            "metadata": {"name": "app", "namespace": "default", "uid": "uid-1",
                         "labels": {"app": "x"}},
            "spec": {"env": [{"name": "A", "value": "one"}]}}
        self.labels: dict[str, str] = {}

    def set_template(self, kind: str, name: str, body: Obj | None = None, jinja2: str = "",
                     **spec: Any) -> None:
        version = str(int((self.templates.get((kind, name)) or {}).get(
            "metadata", {}).get("resourceVersion", "0")) + 1)
        content: dict[str, Any] = {**spec}
        if jinja2:
            content["jinja2"] = jinja2
        else:
            content["template"] = body
        self.templates[(kind, name)] = {"apiVersion": API, "kind": kind,
                                        "metadata": {"name": name, "resourceVersion": version},
                                        "spec": content}

    def realize(self) -> list[Realized]:
        ctx = OwnerContext(self.owner, "workload", "supply chain",
                           lambda res, tpl: {"carto.run/workload-name": "app",
                                             "carto.run/resource-name": res.name,
                                             **self.labels})
        results = self.realizer.realize(ctx, _chain())
        for result in results:
            assert result.error is None, result.error
        return results

    def counts(self) -> tuple[int, int]:
        return self.realizer.skipped_renders, self.backend.applies

    def widget(self) -> Obj:
        found = self.cluster.get(WIDGET_API, "Widget", "default", "app")
        assert found is not None
        return found


@pytest.fixture
def world() -> World:
    w = World()
    first = w.realize()
    assert [r.action for r in first] == ["created"] * 3
    return w


def _actions(results: list[Realized]) -> list[str]:
    return [str(r.action) for r in results]


def test_an_unchanged_resource_is_neither_rendered_nor_applied(world: World) -> None:
    applies, gets = world.backend.applies, world.backend.gets
    first_stamped = world.widget()
    results = world.realize()
    assert _actions(results) == ["unchanged"] * 3
    assert world.realizer.skipped_renders == 3 and world.realizer.skipped_applies == 3
    assert world.backend.applies == applies
    # Each object is at the version its outputs were read from: none is read again, and the
    # result names the object (no copy of it) with the outputs read then.
    assert world.backend.gets == gets and all(r.reused for r in results)
    m = first_stamped["metadata"]
    assert results[1].stamped == {"apiVersion": WIDGET_API, "kind": "Widget", "metadata": {
        "name": "app", "namespace": "default", "uid": m["uid"],
        "resourceVersion": m["resourceVersion"]}}
    assert results[0].outputs is not None
    assert results[0].outputs["url"] == "https://example.com/app.tgz"


def test_a_status_write_does_not_defeat_the_skip(world: World) -> None:
    """A status write moves the resourceVersion, not the generation: still in sync."""
    live = world.widget()
    version = live["metadata"]["resourceVersion"]
    world.cluster.update_status({**live, "status": {"ready": True}})
    assert world.widget()["metadata"]["resourceVersion"] != version
    applies = world.backend.applies
    results = world.realize()
    assert _actions(results) == ["unchanged"] * 3
    assert world.backend.applies == applies
    assert world.realizer.skipped_applies == 3
    assert results[1].stamped is not None and results[1].stamped["status"] == {"ready": True}


def test_a_changed_template_is_rendered_and_applied(world: World) -> None:
    world.set_template("ClusterTemplate", "widget",
                       {**WIDGET, "spec": {**WIDGET["spec"], "colour": "blue"}})
    results = world.realize()
    assert _actions(results) == ["unchanged", "configured", "unchanged"]
    assert world.widget()["spec"]["colour"] == "blue"
    assert world.realizer.skipped_renders == 2


def test_a_changed_input_output_is_rendered_and_applied(world: World) -> None:
    world.set_template("ClusterSourceTemplate", "source", {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "$(workload.metadata.name)$-source"},
        "data": {"url": "https://example.com/$(workload.metadata.name)$-v2.tgz"}},
        urlPath=".data.url")
    results = world.realize()
    # The source's own template changed; the widget's only input, its output, changed with it.
    assert _actions(results) == ["configured", "configured", "unchanged"]
    assert world.widget()["spec"]["source"] == "https://example.com/app-v2.tgz"


@pytest.mark.parametrize("change", ["param", "spec", "labels"])
def test_a_changed_owner_is_rendered_and_applied(world: World, change: str) -> None:
    if change == "param":
        world.owner["spec"]["params"] = [{"name": "size", "value": 3}]
        expected = ["unchanged", "configured", "unchanged"]
    elif change == "spec":
        world.owner["spec"]["env"] = [{"name": "A", "value": "two"}]
        expected = ["unchanged", "unchanged", "configured"]
    else:
        world.labels = {"carto.run/extra": "yes"}  # what the owner stamps on every object
        expected = ["configured"] * 3
    results = world.realize()
    assert _actions(results) == expected
    if change == "param":
        assert world.widget()["spec"]["size"] == 3
    if change == "labels":
        assert world.widget()["metadata"]["labels"]["carto.run/extra"] == "yes"


def test_the_owners_status_alone_does_not_defeat_the_skip(world: World) -> None:
    """Nothing the templates read changed: the owner's status is no tag's value."""
    world.owner["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
    world.owner["metadata"]["resourceVersion"] = "99"
    applies = world.backend.applies
    assert _actions(world.realize()) == ["unchanged"] * 3
    assert world.backend.applies == applies and world.realizer.skipped_renders == 3


def _reapplied(world: World, kind: tuple[str, str, str], change: Any) -> None:
    """Change a stamped object with an apply by the realizer's own field manager (as an older
    version of the chain would have): no conflict, so the realizer's apply puts it back."""
    live = world.cluster.get(kind[0], kind[1], "default", kind[2])
    assert live is not None
    body = {k: v for k, v in live.items() if k != "status"}
    body["metadata"] = {k: v for k, v in live["metadata"].items()
                        if k in ("name", "namespace", "labels", "annotations", "ownerReferences")}
    change(body)
    world.cluster.apply(body, FIELD_MANAGER)


def test_a_spec_changed_by_someone_else_is_put_back(world: World) -> None:
    generation = world.widget()["metadata"]["generation"]
    _reapplied(world, (WIDGET_API, "Widget", "app"), lambda o: o["spec"].update(size=42))
    assert world.widget()["metadata"]["generation"] == generation + 1
    results = world.realize()
    assert _actions(results) == ["unchanged", "configured", "unchanged"]
    assert results[1].changed == ("spec.size",)
    assert world.widget()["spec"]["size"] == 1


def test_a_spec_edit_owned_by_another_manager_is_met_with_an_apply(world: World) -> None:
    """`kubectl edit` of a field the realizer owns: the apply is attempted (no skip) and meets
    the field conflict, as it did before the skip existed."""
    def edit(obj: Obj) -> None:
        obj["spec"]["size"] = 42

    world.cluster.edit(WIDGET_API, "Widget", "default", "app", edit)
    ctx = OwnerContext(world.owner, "workload", "supply chain",
                       lambda res, tpl: {"carto.run/workload-name": "app",
                                         "carto.run/resource-name": res.name})
    results = world.realizer.realize(ctx, _chain())
    assert results[1].error is not None and "conflict" in str(results[1].error).lower()
    assert results[0].error is None and results[2].error is None


def test_labels_changed_by_someone_else_defeat_the_skip(world: World) -> None:
    """A label change moves no generation, but labels are metadata an apply compares."""
    gets = world.backend.gets
    _reapplied(world, (WIDGET_API, "Widget", "app"), lambda o: o["metadata"]["labels"].update(
        {"carto.run/resource-name": "tampered"}))
    results = world.realize()
    assert _actions(results) == ["unchanged", "configured", "unchanged"]
    assert world.widget()["metadata"]["labels"]["carto.run/resource-name"] == "widget"
    assert world.realizer.skipped_applies == 2
    # Only the drifted one is read (a private copy: `get`), that read reused by the full
    # apply; the others are found at the version their outputs were read from.
    assert world.backend.gets == gets + 1


def test_an_edit_of_a_kind_without_generation_defeats_the_skip(world: World) -> None:
    """A ConfigMap keeps no generation: only its resourceVersion proves it unchanged."""
    _reapplied(world, ("v1", "ConfigMap", "app-settings"),
               lambda o: o["data"].update(value="tampered"))
    results = world.realize()
    assert _actions(results) == ["unchanged", "unchanged", "configured"]
    settings = world.cluster.get("v1", "ConfigMap", "default", "app-settings")
    assert settings is not None and settings["data"]["value"] == "one"


def test_a_deleted_object_is_created_again(world: World) -> None:
    world.cluster.delete(WIDGET_API, "Widget", "default", "app")
    results = world.realize()
    assert _actions(results) == ["unchanged", "created", "unchanged"]
    assert world.widget()["spec"]["size"] == 1


def test_a_recreated_object_with_the_same_generation_defeats_the_skip(world: World) -> None:
    """Deleted and created again by someone else: generation 1 again, another uid."""
    world.cluster.delete(WIDGET_API, "Widget", "default", "app")
    world.cluster.apply({"apiVersion": WIDGET_API, "kind": "Widget",
                         "metadata": {"name": "app", "namespace": "default",
                                      "labels": {"carto.run/workload-name": "app"}},
                         "spec": {"size": 7}}, FIELD_MANAGER)
    results = world.realize()
    assert results[1].action is not None and str(results[1].action) == "configured"
    assert world.widget()["spec"]["size"] == 1


def test_a_render_error_drops_the_record(world: World) -> None:
    world.owner["spec"]["env"] = []  # $(workload.spec.env[0].value)$ no longer evaluates
    ctx = OwnerContext(world.owner, "workload", "supply chain",
                       lambda res, tpl: {"carto.run/workload-name": "app",
                                         "carto.run/resource-name": res.name})
    failed = world.realizer.realize(ctx, _chain())
    assert failed[2].error is not None and "interpolate" in str(failed[2].error)
    assert world.realizer.recorded("default", "app") == 2
    # Back as it was: the settings resource is rendered and checked again (not skipped), and
    # found in sync.
    world.owner["spec"]["env"] = [{"name": "A", "value": "one"}]
    renders = world.realizer.skipped_renders
    assert _actions(world.realize()) == ["unchanged"] * 3
    assert world.realizer.skipped_renders == renders + 2


def test_a_failed_apply_drops_the_record(world: World) -> None:
    class Refusing(Counting):
        def apply(self, obj: Obj, field_manager: str = FIELD_MANAGER,
                  force: bool = False) -> Obj:
            from reconciler.model.errors import Rejected
            raise Rejected("refused")

    world.owner["spec"]["env"] = [{"name": "A", "value": "two"}]
    ctx = OwnerContext(world.owner, "workload", "supply chain",
                       lambda res, tpl: {"carto.run/workload-name": "app",
                                         "carto.run/resource-name": res.name})
    failed = world.realizer.realize(ctx, _chain(), Refusing(world.cluster))
    assert failed[2].error is not None
    assert world.realizer.recorded("default", "app") == 2


def test_a_jinja2_template_is_rendered_but_not_applied_again(world: World) -> None:
    world.set_template("ClusterTemplate", "settings", jinja2=(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ workload.metadata.name }}-j\n"
        "data:\n  value: {{ workload.spec.env[0].value }}\n"))
    assert _actions(world.realize()) == ["unchanged", "unchanged", "created"]
    renders, applies = world.counts()
    skipped = world.realizer.skipped_applies
    assert _actions(world.realize()) == ["unchanged"] * 3
    assert world.realizer.skipped_renders == renders + 2  # the Jinja2 one is rendered
    assert world.realizer.skipped_applies == skipped + 3  # ... but none is applied
    assert world.backend.applies == applies


def test_a_value_holding_a_tag_is_rendered_every_time(world: World) -> None:
    """A tag's value that holds a tag is stamped again from more of the context: no skip."""
    world.owner["spec"]["env"] = [{"name": "A", "value": "$(workload.metadata.name)$"}]
    assert _actions(world.realize())[2] == "configured"
    renders = world.realizer.skipped_renders
    assert _actions(world.realize()) == ["unchanged"] * 3
    assert world.realizer.skipped_renders == renders + 2


def test_records_are_dropped_with_their_owner_and_bounded(world: World) -> None:
    assert world.realizer.recorded("default", "app") == 3
    world.realizer.forget("default", "app")
    assert world.realizer.recorded("default", "app") == 0
    renders = world.realizer.skipped_renders
    assert _actions(world.realize()) == ["unchanged"] * 3
    assert world.realizer.skipped_renders == renders  # rendered again after the forget
    assert MAX_RECORDED_OWNERS > 0

    small = Realizer(world.backend, world.realizer.templates, max_owners=2)
    chain = _chain()
    for name in ("a", "b", "c"):
        owner = {**world.owner, "metadata": {**world.owner["metadata"], "name": name,
                                             "uid": f"uid-{name}"}}
        ctx = OwnerContext(owner, "workload", "supply chain", lambda res, tpl: {})
        assert all(r.error is None for r in small.realize(ctx, chain))
    assert [small.recorded("default", n) for n in ("a", "b", "c")] == [0, 3, 3]


def test_another_owner_with_the_same_name_is_not_skipped(world: World) -> None:
    """The owner was deleted and created again (another uid): its objects get the new
    ownerReference."""
    world.owner["metadata"]["uid"] = "uid-2"
    results = world.realize()
    assert _actions(results) == ["configured"] * 3
    assert [r["uid"] for r in world.widget()["metadata"]["ownerReferences"]] == ["uid-2"]


def test_templates_are_resources_of_the_blueprint() -> None:
    # Guard for the fixtures above: each resource names its template.
    assert [r.name for r in _chain().resources] == ["source", "widget", "settings"]
    assert isinstance(_chain().resources[0], BlueprintResource)
    assert Template("ClusterTemplate", "t", {"spec": {}}).lifecycle == "mutable"


def test_a_tag_that_does_not_parse_is_never_skipped(world: World) -> None:
    world.set_template("ClusterTemplate", "settings",
                       {**CONFIG_MAP, "data": {"value": "$(workload.metadata[)$"}})
    for _ in range(2):
        results = world.realizer.realize(
            OwnerContext(world.owner, "workload", "supply chain", lambda res, tpl: {}), _chain())
        assert results[2].error is not None and "settings" in str(results[2].error)
    assert world.realizer.recorded("default", "app") == 2



@pytest.mark.parametrize(("note", "a", "b"), [
    # two adjacent values make a tag: "$" + "(workload.spec.env[0].value)$"
    ("$(workload.spec.a)$$(workload.spec.b)$", "$", "(workload.spec.env[0].value)$"),
    # the literal text around a value completes it (no value holds "$")
    ("$$(workload.spec.a)$)$", "(workload.spec.env[0].value", "unused"),
    # an empty value between a literal "$" and "(": the literal text alone becomes a tag
    ("$$(workload.spec.a)$(workload.spec.env[0].value)$", "", "unused"),
], ids=["adjacent-values", "literal-around-a-value", "empty-value-between-literals"])
def test_a_tag_formed_across_a_strings_pieces_is_rendered_every_time(
        note: str, a: str, b: str) -> None:
    # Interpolation stamps a string's result again: the tag formed across its pieces reads a
    # value that no tag of the template names, so only a render can tell it changed.
    w = World()
    w.set_template("ClusterTemplate", "widget",
                   {**WIDGET, "spec": {**WIDGET["spec"], "note": note}})
    w.owner["spec"]["a"], w.owner["spec"]["b"] = a, b
    w.realize()
    assert w.widget()["spec"]["note"] == "one"
    w.owner["spec"]["env"][0]["value"] = "two"
    w.realize()
    assert w.widget()["spec"]["note"] == "two"


def test_an_object_being_deleted_never_proves_a_skip() -> None:
    # A deletion mark that changed nothing else the proof reads (an API server that keeps the
    # resourceVersion and generation in what it hands back, or a read of a cached copy): the
    # object is going away, so the realizer must not report it as realized and in sync.
    from reconciler.chains.realizer import _Applied

    live: Obj = {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "cm", "namespace": "ns", "uid": "u-1",
                              "resourceVersion": "7", "generation": 2,
                              "labels": {"a": "b"}}}
    record = _Applied.of(b"r", b"d", live, "owner-uid", live)
    assert record is not None and record.holds(live)
    deleting = {**live, "metadata": {**live["metadata"],
                                     "deletionTimestamp": "2026-12-01T00:00:00Z"}}
    assert not record.holds(deleting)
    assert _Applied.of(b"r", b"d", deleting, "owner-uid", deleting) is None
