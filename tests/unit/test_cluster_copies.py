"""What the simulated cluster returns is the caller's own copy: mutating what `get`, `list`,
`apply`, `create`, `update_status`, `edit` or `all_objects` returned never reaches the store, nor
what another read returns, however many reads share one stored version's serialization; and a
read after any kind of write (apply, status, edit, rejected apply, delete and re-create, restore)
returns the new content, never a stale copy."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reconciler.model.conflicts import ApplyConflict
from reconciler.model.errors import Rejected
from simulator.clock import VirtualClock
from simulator.cluster import InMemoryCluster


@pytest.fixture
def cluster() -> InMemoryCluster:
    return InMemoryCluster(VirtualClock())


def _cm(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default", "labels": {"app": "x"}},
            "data": data}


def _deployment(name: str, replicas: int = 1) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [
                {"name": "app", "image": "app:1"}]}}}}


def _text(obj: dict[str, Any] | None) -> str:
    """The content as it is now (a comparison that no later change to `obj` can follow)."""
    assert obj is not None
    return json.dumps(obj, sort_keys=True)


def _scribble(obj: dict[str, Any]) -> None:
    """Change every level of an object a caller got back."""
    obj["metadata"]["labels"] = {"app": "changed"}
    obj["metadata"]["managedFields"][0]["manager"] = "someone"
    obj["metadata"]["managedFields"].append({})
    obj.setdefault("data", {})["key"] = "changed"
    obj["status"] = {"scribbled": True}
    obj["apiVersion"] = "v9"


def test_mutating_any_returned_object_never_reaches_the_store(
        cluster: InMemoryCluster) -> None:
    applied = cluster.apply(_cm("a", key="v"))
    stored = _text(applied)
    # Read the same version many times (its serialization is made once and shared) and change
    # every copy; each later read must still give the stored content.
    returned: list[dict[str, Any] | None] = [
        applied, cluster.get("v1", "ConfigMap", "default", "a"),
        cluster.get("v1", "ConfigMap", "default", "a"),
        *cluster.list("v1", "ConfigMap", "default"),
        *cluster.list("v1", "ConfigMap", labels={"app": "x"}),
        *[o for o in cluster.all_objects() if o["kind"] == "ConfigMap"]]
    assert len(returned) == 6
    for obj in returned:
        assert obj is not None and _text(obj) == stored
        _scribble(obj)
        assert _text(cluster.get("v1", "ConfigMap", "default", "a")) == stored
    assert [_text(o) for o in cluster.list("v1", "ConfigMap", labels={"app": "x"})] == [stored]
    assert cluster.list("v1", "ConfigMap", labels={"app": "changed"}) == []

    created = cluster.create(_cm("b", key="v"))
    kept = _text(created)
    _scribble(created)
    assert _text(cluster.get("v1", "ConfigMap", "default", "b")) == kept


def test_mutating_what_a_status_write_or_edit_returned_never_reaches_the_store(
        cluster: InMemoryCluster) -> None:
    cluster.apply(_deployment("d"))
    status: dict[str, Any] = {"replicas": 1,
                              "conditions": [{"type": "Available", "status": "True"}]}
    written = cluster.update_status({**_deployment("d"), "status": status})
    status["conditions"][0]["status"] = "False"  # the caller's own input, changed afterwards
    after_status = _text(written)
    assert written["status"]["conditions"][0]["status"] == "True"
    assert _text(cluster.get("apps/v1", "Deployment", "default", "d")) == after_status
    written["status"]["conditions"][0]["status"] = "Unknown"
    written["spec"]["replicas"] = 9
    assert _text(cluster.get("apps/v1", "Deployment", "default", "d")) == after_status

    edited = cluster.edit("apps/v1", "Deployment", "default", "d",
                          lambda obj: obj["spec"].update(replicas=2))
    after_edit = _text(edited)
    assert edited["spec"]["replicas"] == 2
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = "evil:1"
    assert _text(cluster.get("apps/v1", "Deployment", "default", "d")) == after_edit


def test_every_kind_of_write_is_seen_by_the_next_read(cluster: InMemoryCluster) -> None:
    def read() -> dict[str, Any]:
        got = cluster.get("apps/v1", "Deployment", "default", "d")
        assert got is not None
        return got

    cluster.apply(_deployment("d"))
    first = read()
    assert read() == first  # the same version, read twice

    cluster.apply(_deployment("d", replicas=3))
    assert read()["spec"]["replicas"] == 3
    assert read()["metadata"]["generation"] == 2

    cluster.update_status({**_deployment("d"), "status": {"replicas": 3}})
    assert read()["status"] == {"replicas": 3}
    assert cluster.list("apps/v1", "Deployment")[0]["status"] == {"replicas": 3}

    cluster.edit("apps/v1", "Deployment", "default", "d",
                 lambda obj: obj["metadata"].setdefault("labels", {}).update(tier="web"))
    assert read()["metadata"]["labels"] == {"tier": "web"}

    # A rejected apply changes the stored object while it is checked, then puts it back: reads
    # give what was stored before it.
    before = read()
    with pytest.raises(ApplyConflict):
        cluster.apply(_deployment("d", replicas=5), field_manager="other")
    with pytest.raises(Rejected):
        cluster.apply({**_deployment("d"), "metadata": {
            "name": "d", "namespace": "default", "labels": {"tier": "-bad-"}}})
    assert read() == before

    # Deleted and created again under the same name: the new object, not the old one.
    cluster.delete("apps/v1", "Deployment", "default", "d")
    assert cluster.get("apps/v1", "Deployment", "default", "d") is None
    cluster.apply(_deployment("d", replicas=7))
    again = read()
    assert again["spec"]["replicas"] == 7 and "status" not in again
    assert again["metadata"]["uid"] != first["metadata"]["uid"]

    # A restored snapshot replaces what was stored, even with the resourceVersion it had.
    snapshot = cluster.snapshot()
    assert read() == again
    for obj in snapshot["objects"]:
        if obj["kind"] == "Deployment":
            obj["spec"]["replicas"] = 4
    cluster.restore(snapshot)
    restored = read()
    assert restored["spec"]["replicas"] == 4 and "status" not in restored


def test_a_read_as_another_version_names_that_version_only_in_its_copy(
        cluster: InMemoryCluster) -> None:
    cluster.apply({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                   "metadata": {"name": "h", "namespace": "default"},
                   "spec": {"maxReplicas": 3, "scaleTargetRef": {
                       "apiVersion": "apps/v1", "kind": "Deployment", "name": "d"}}})
    v1 = cluster.get("autoscaling/v1", "HorizontalPodAutoscaler", "default", "h")
    v2 = cluster.get("autoscaling/v2", "HorizontalPodAutoscaler", "default", "h")
    assert v1 is not None and v2 is not None
    assert (v1["apiVersion"], v2["apiVersion"]) == ("autoscaling/v1", "autoscaling/v2")
    assert {**v1, "apiVersion": ""} == {**v2, "apiVersion": ""}


def test_views_select_record_and_refuse_as_list_does(cluster: InMemoryCluster) -> None:
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    for name, namespace, app in (("b", "default", "x"), ("a", "team", "x"), ("c", "default", "y"),
                                 ("a", "default", "x")):
        cluster.apply({**_cm(name), "metadata": {"name": name, "namespace": namespace,
                                                 "labels": {"app": app}}})
    namespaces: list[str | None] = [None, "default", "team"]
    selectors: list[dict[str, str] | None] = [None, {}, {"app": "x"}, {"app": "y"},
                                              {"app": "x", "tier": "web"}]
    for scope in namespaces:
        for labels in selectors:
            cluster.begin()
            listed = cluster.list("v1", "ConfigMap", scope, labels)
            list_reads = cluster.end()
            cluster.begin()
            viewed = cluster.views("v1", "ConfigMap", scope, labels)
            view_reads = cluster.end()
            assert [_text(v.copy()) for v in viewed] == [_text(o) for o in listed]
            assert view_reads == list_reads
    with pytest.raises(Rejected, match="unable to parse requirement"):
        cluster.views("v1", "ConfigMap", labels={"app": "-bad-"})
    view = cluster.views("v1", "ConfigMap", "team", {"app": "x"})[0]
    with pytest.raises(TypeError):
        view["metadata"]["labels"]["app"] = "y"


def test_what_a_written_object_shared_is_stored_as_separate_parts(
        cluster: InMemoryCluster) -> None:
    """A YAML alias makes two places of a manifest one object (`matchLabels: *labels`); the
    stored object must not: a later apply of one place changes that place only."""
    labels = {"app": "web"}
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": "d", "namespace": "default"},
                  "spec": {"selector": {"matchLabels": labels},
                           "template": {"metadata": {"labels": labels},
                                        "spec": {"containers": [{"name": "app",
                                                                 "image": "app:1"}]}}}}
    cluster.apply(deployment)
    changed = json.loads(json.dumps(deployment))
    changed["spec"]["template"]["metadata"]["labels"]["version"] = "v2"
    cluster.apply(changed)
    live = cluster.get("apps/v1", "Deployment", "default", "d")
    assert live is not None
    assert live["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    assert live["spec"]["template"]["metadata"]["labels"] == {"app": "web", "version": "v2"}
    # What a read returns shares nothing either.
    live["spec"]["selector"]["matchLabels"]["tier"] = "x"
    assert "tier" not in live["spec"]["template"]["metadata"]["labels"]


def test_serialized_versions_stay_within_their_budget(cluster: InMemoryCluster) -> None:
    table = cluster._objects
    table.blob_budget = 4_000  # a few ConfigMaps' worth
    for i in range(30):
        cluster.apply(_cm(f"c{i}", key="v" * 200))
        assert table._blob_bytes == sum(len(blob) for _, blob in table._blobs.values())
        assert table._blob_bytes <= table.blob_budget
    # Dropped versions are made again when read: every read still gives the stored content.
    for i in range(30):
        got = cluster.get("v1", "ConfigMap", "default", f"c{i}")
        assert got is not None and got["data"] == {"key": "v" * 200}
        assert table._blob_bytes <= table.blob_budget
    cluster.delete("v1", "ConfigMap", "default", "c29")
    assert table._blob_bytes == sum(len(blob) for _, blob in table._blobs.values())


def test_a_crd_status_does_not_share_the_spec_names_lists(cluster: InMemoryCluster) -> None:
    cluster.apply({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                   "metadata": {"name": "widgets.example.com"},
                   "spec": {"group": "example.com", "scope": "Namespaced",
                            "names": {"kind": "Widget", "plural": "widgets",
                                      "shortNames": ["wd"], "categories": ["all"]},
                            "versions": [{"name": "v1", "served": True, "storage": True}]}})
    crd = cluster.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", "",
                      "widgets.example.com")
    assert crd is not None
    assert crd["status"]["acceptedNames"]["shortNames"] == ["wd"]
    crd["spec"]["names"]["shortNames"].append("wdg")
    crd["spec"]["names"]["categories"].clear()
    assert crd["status"]["acceptedNames"]["shortNames"] == ["wd"]
    assert crd["status"]["acceptedNames"]["categories"] == ["all"]
