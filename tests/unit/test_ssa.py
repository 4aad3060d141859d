"""Server-side apply field ownership in the simulated cluster: managers, conflicts, force,
field removal, and `kubectl edit` taking ownership."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.model.conflicts import ApplyConflict
from simulator.clock import VirtualClock
from simulator.cluster import InMemoryCluster


def _cm(**data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cfg", "namespace": "default"}, "data": data}


def _managers(obj: dict[str, Any]) -> dict[str, Any]:
    return {e["manager"]: e["fieldsV1"] for e in obj["metadata"]["managedFields"]}


@pytest.fixture
def cluster() -> InMemoryCluster:
    return InMemoryCluster(VirtualClock())


def test_two_managers_own_their_own_fields(cluster: InMemoryCluster) -> None:
    cluster.apply(_cm(a="1"), "reconciler")
    live = cluster.apply(_cm(b="2"), "other")
    assert live["data"] == {"a": "1", "b": "2"}
    assert _managers(live) == {"reconciler": {"f:data": {"f:a": {}}},
                               "other": {"f:data": {"f:b": {}}}}


@pytest.mark.parametrize(("second", "force", "conflict", "data", "owners"), [
    ({"a": "1"}, False, False, {"a": "1"}, {"reconciler": {"f:a": {}}, "other": {"f:a": {}}}),
    ({"a": "2"}, False, True, {"a": "1"}, {"reconciler": {"f:a": {}}}),
    ({"a": "2"}, True, False, {"a": "2"}, {"other": {"f:a": {}}}),
], ids=["same value is shared", "different value conflicts", "force takes ownership"])
def test_conflicts_and_force(cluster: InMemoryCluster, second: dict[str, str], force: bool,
                             conflict: bool, data: dict[str, str],
                             owners: dict[str, Any]) -> None:
    cluster.apply(_cm(a="1"), "reconciler")
    if conflict:
        with pytest.raises(ApplyConflict) as info:
            cluster.apply(_cm(**second), "other", force=force)
        assert [(c.path, c.manager) for c in info.value.conflicts] == [(".data.a", "reconciler")]
        assert ".data.a (owned by reconciler)" in str(info.value)
    else:
        cluster.apply(_cm(**second), "other", force=force)
    live = cluster.get("v1", "ConfigMap", "default", "cfg")
    assert live is not None and live["data"] == data
    assert {m: f["f:data"] for m, f in _managers(live).items()} == owners


@pytest.mark.parametrize(("other_owns", "remaining"), [
    (False, {"a": "1"}), (True, {"a": "1", "b": "2"}),
], ids=["dropped field removed", "dropped field kept while another manager owns it"])
def test_field_dropped_from_next_apply(cluster: InMemoryCluster, other_owns: bool,
                                       remaining: dict[str, str]) -> None:
    cluster.apply(_cm(a="1", b="2"), "reconciler")
    if other_owns:
        cluster.apply(_cm(b="2"), "other")
    live = cluster.apply(_cm(a="1"), "reconciler")
    assert live["data"] == remaining


def test_list_items_are_owned_by_merge_key(cluster: InMemoryCluster) -> None:
    def deploy(*containers: dict[str, str]) -> dict[str, Any]:
        return {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "default"},
                "spec": {"template": {"spec": {"containers": list(containers)}}}}

    cluster.apply(deploy({"name": "app", "image": "app:1"}, {"name": "old", "image": "x"}))
    cluster.apply(deploy({"name": "mesh", "image": "proxy"}), "injector")
    live = cluster.apply(deploy({"name": "app", "image": "app:2"}))
    names = [c["name"] for c in live["spec"]["template"]["spec"]["containers"]]
    assert names == ["app", "mesh"]
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "app:2"
    assert live["metadata"]["generation"] == 3


def test_edit_takes_ownership_so_the_next_apply_conflicts(cluster: InMemoryCluster) -> None:
    cluster.apply(_cm(a="1"), "reconciler")
    cluster.edit("v1", "ConfigMap", "default", "cfg", lambda o: o["data"].update(a="edited"))
    live = cluster.get("v1", "ConfigMap", "default", "cfg")
    assert live is not None and _managers(live) == {"kubectl-edit": {"f:data": {"f:a": {}}}}
    with pytest.raises(ApplyConflict):
        cluster.apply(_cm(a="1"), "reconciler")
    healed = cluster.apply(_cm(a="1"), "reconciler", force=True)
    assert healed["data"] == {"a": "1"}
    assert set(_managers(healed)) == {"reconciler"}


def test_unchanged_apply_does_not_bump_resource_version(cluster: InMemoryCluster) -> None:
    first = cluster.apply(_cm(a="1"))
    again = cluster.apply(_cm(a="1"))
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]


def test_secret_string_data_is_stored_as_data(cluster: InMemoryCluster) -> None:
    live = cluster.apply({"apiVersion": "v1", "kind": "Secret",
                          "metadata": {"name": "s", "namespace": "default"},
                          "stringData": {"k": "v"}})
    assert live["data"] == {"k": "dg=="} and "stringData" not in live


def test_a_map_emptied_by_dropped_fields_goes_too(cluster: InMemoryCluster) -> None:
    """Dropping every field under `data` (or `metadata.labels`) removes the map itself, so a
    validator that asks "is this field set?" sees it gone, as after kube-apiserver's apply."""
    first = _cm(a="1")
    first["metadata"]["labels"] = {"team": "x"}
    cluster.apply(first, "reconciler")
    second = _cm()
    del second["data"]
    live = cluster.apply(second, "reconciler")
    assert "data" not in live and "labels" not in live["metadata"]


def test_a_map_another_manager_still_has_fields_in_stays(cluster: InMemoryCluster) -> None:
    cluster.apply(_cm(a="1"), "reconciler")
    cluster.apply(_cm(b="2"), "other")
    second = _cm()
    del second["data"]
    assert cluster.apply(second, "reconciler")["data"] == {"b": "2"}


def test_switching_a_template_to_jinja2_is_accepted() -> None:
    from simulator.environment import SimulatedEnvironment

    cluster = SimulatedEnvironment().cluster
    template: dict[str, Any] = {
        "apiVersion": "carto.run/v1alpha1", "kind": "ClusterTemplate",
        "metadata": {"name": "t"},
        "spec": {"template": {"apiVersion": "v1", "kind": "ConfigMap",
                              "metadata": {"name": "a"}}}}
    cluster.apply(template)
    template["spec"] = {"jinja2": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"}
    assert set(cluster.apply(template)["spec"]) == {"jinja2"}
