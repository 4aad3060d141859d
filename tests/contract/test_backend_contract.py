"""The `Backend` contract, run against every backend: the simulator's in-memory cluster, and
`KubernetesBackend` over HTTPS to `reconciler serve --controllers ecosystem` (started once per
session by `conftest.served_kubeconfig`; `RECONCILER_TEST_KUBECONFIG` names a real cluster
instead) twice: with informers (reads from watch-fed caches, the default) and without them
(every read a request, lists in pages of 2, so paging is exercised).

Every test works in a namespace of its own, created by the `ns` fixture and deleted after it, so
a real cluster is left as it was found and runs do not see each other's objects. The objects are
ones a real API server accepts as they are (a Deployment with a selector and a template, a
Service with ports), so a test passing here means the same thing on both backends.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from reconciler.apply.applier import Action, apply_object
from reconciler.backends.base import Backend
from reconciler.model.conflicts import ApplyConflict, FieldConflict
from reconciler.model.errors import NotFound, Rejected
from simulator.kube_common import MANUAL_STATUS_ANNOTATION


@pytest.fixture
def ns(backend: Backend) -> Iterator[str]:
    name = f"contract-{uuid.uuid4().hex[:10]}"
    backend.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    with contextlib.suppress(NotFound):
        backend.delete("v1", "Namespace", "", name)


def _cm(ns: str, name: str = "cfg", **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns}, "data": data}


def _deployment(ns: str, replicas: int) -> dict[str, Any]:
    labels = {"app": "web"}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": ns},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [
                                      {"name": "web", "image": "registry.example.com/web:1"}]}}}}


def test_kind_info_from_discovery(backend: Backend) -> None:
    deployments = backend.kind_info("apps/v1", "Deployment")
    assert (deployments.group, deployments.plural, deployments.namespaced) == (
        "apps", "deployments", True)
    assert backend.kind_info("v1", "Namespace").namespaced is False
    with pytest.raises(Rejected) as raised:
        backend.kind_info("example.com/v1", "Widget")
    assert raised.value.field == "kind"
    assert str(raised.value).startswith('no matches for kind "Widget" in version '
                                        '"example.com/v1"')


def test_apply_creates_then_updates_and_tracks_generation(backend: Backend, ns: str) -> None:
    created = backend.apply(_deployment(ns, 1))
    assert created["metadata"]["generation"] == 1 and created["metadata"]["uid"]
    updated = backend.apply(_deployment(ns, 2))
    assert updated["metadata"]["generation"] == 2
    assert updated["metadata"]["uid"] == created["metadata"]["uid"]
    assert backend.get("apps/v1", "Deployment", ns, "web") is not None


def test_apply_object_skips_objects_in_sync(backend: Backend, ns: str) -> None:
    assert apply_object(backend, _cm(ns, a="1")).action is Action.CREATED
    assert apply_object(backend, _cm(ns, a="1")).action is Action.UNCHANGED
    changed = apply_object(backend, _cm(ns, a="2"))
    assert (changed.action, changed.changed) == (Action.CONFIGURED, ("data.a",))


def test_status_only_through_the_subresource(backend: Backend, ns: str) -> None:
    live = backend.apply({**_cm(ns), "status": {"x": 1}})
    assert "status" not in live
    service = backend.apply({"apiVersion": "v1", "kind": "Service",
                             "metadata": {"name": "web", "namespace": ns},
                             "spec": {"ports": [{"port": 80}]},
                             "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}})
    assert not (service.get("status") or {}).get("loadBalancer"), "apply ignores status"
    # A stale resourceVersion must not make a status write fail.
    stale = {**service, "metadata": {**service["metadata"], "resourceVersion": "1"}}
    written = backend.update_status(
        {**stale, "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}})
    assert written["status"]["loadBalancer"]["ingress"][0]["ip"] == "192.0.2.10"
    assert written["spec"]["ports"][0]["port"] == 80


def test_field_managers_conflict_and_force(backend: Backend, ns: str) -> None:
    backend.apply(_cm(ns, a="1"), "reconciler")
    with pytest.raises(ApplyConflict) as raised:
        backend.apply(_cm(ns, a="2"), "someone-else")
    assert raised.value.conflicts == (FieldConflict(".data.a", "reconciler"),)
    assert backend.apply(_cm(ns, a="2"), "someone-else", force=True)["data"] == {"a": "2"}


def test_missing_namespace_unknown_kind_and_delete(backend: Backend, ns: str) -> None:
    with pytest.raises(NotFound):
        backend.apply(_cm(f"{ns}-missing"))
    with pytest.raises(Rejected):
        backend.apply({"apiVersion": "example.com/v1", "kind": "Widget",
                       "metadata": {"name": "w", "namespace": ns}})
    with pytest.raises(Rejected) as raised:
        backend.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    assert raised.value.field == "metadata.namespace"
    backend.apply(_cm(ns))
    backend.delete("v1", "ConfigMap", ns, "cfg")
    assert backend.get("v1", "ConfigMap", ns, "cfg") is None
    with pytest.raises(NotFound):
        backend.delete("v1", "ConfigMap", ns, "cfg")


def test_list_by_labels(backend: Backend, ns: str) -> None:
    backend.apply({**_cm(ns, "a"), "metadata": {"name": "a", "namespace": ns,
                                                "labels": {"app": "x"}}})
    backend.apply(_cm(ns, "b"))
    listed = backend.list("v1", "ConfigMap", ns, {"app": "x"})
    assert [o["metadata"]["name"] for o in listed] == ["a"]
    assert (listed[0]["apiVersion"], listed[0]["kind"]) == ("v1", "ConfigMap")
    everywhere = backend.list("v1", "ConfigMap", None, {"app": "x"})
    assert "a" in {o["metadata"]["name"] for o in everywhere if o["metadata"]["namespace"] == ns}


def test_the_same_event_counts_up(backend: Backend, ns: str) -> None:
    involved = backend.apply(_cm(ns))
    backend.emit_event(involved, "Normal", "Applied", "created")
    backend.emit_event(involved, "Normal", "Applied", "created")
    backend.emit_event(involved, "Warning", "Drifted", "data.a changed")
    uid = involved["metadata"]["uid"]
    mine = [e for e in backend.events() if e["involvedObject"].get("uid") == uid]
    assert sorted((e["reason"], e["count"]) for e in mine) == [("Applied", 2), ("Drifted", 1)]
    assert all(e["source"]["component"] == "reconciler" for e in mine)
    assert all(e["metadata"]["namespace"] == ns for e in mine)


# --- cases where the two backends must agree ------------------------------------------------


def test_force_moves_ownership(backend: Backend, ns: str) -> None:
    backend.apply(_cm(ns, a="1", b="1"), "reconciler")
    backend.apply(_cm(ns, a="2"), "someone-else", force=True)
    # .data.a is someone-else's now: the first manager conflicts on it, and only on it.
    with pytest.raises(ApplyConflict) as raised:
        backend.apply(_cm(ns, a="1", b="1"), "reconciler")
    assert raised.value.conflicts == (FieldConflict(".data.a", "someone-else"),)
    # Applying what the other manager has is no conflict (both own it).
    assert backend.apply(_cm(ns, a="2", b="1"), "reconciler")["data"] == {"a": "2", "b": "1"}


def test_reapply_removes_dropped_fields_but_not_others(backend: Backend, ns: str) -> None:
    backend.apply(_cm(ns, a="1", b="1"), "reconciler")
    backend.apply(_cm(ns, c="1"), "someone-else")
    live = backend.apply(_cm(ns, a="1"), "reconciler")
    # b was only ours: dropped; c is someone-else's: kept.
    assert live["data"] == {"a": "1", "c": "1"}
    assert backend.get("v1", "ConfigMap", ns, "cfg")["data"] == {"a": "1", "c": "1"}  # type: ignore[index]
    labelled = backend.apply({**_cm(ns, "l"), "metadata": {
        "name": "l", "namespace": ns, "labels": {"x": "1", "y": "2"}}})
    assert labelled["metadata"]["labels"] == {"x": "1", "y": "2"}
    relabelled = backend.apply({**_cm(ns, "l"), "metadata": {
        "name": "l", "namespace": ns, "labels": {"x": "1"}}})
    assert relabelled["metadata"]["labels"] == {"x": "1"}


def test_apply_leaves_status_and_status_leaves_generation(backend: Backend, ns: str) -> None:
    # The served simulator's cloud controller releases the load-balancer address of a Service
    # that is not `type: LoadBalancer` whenever one of its ticks lands between these writes; the
    # annotation (inert on a real cluster) tells it the status is this test's to write. Both
    # applies carry it, as the second would otherwise remove it (same field manager).
    manual = {MANUAL_STATUS_ANNOTATION: "true"}
    service = backend.apply({"apiVersion": "v1", "kind": "Service",
                             "metadata": {"name": "web", "namespace": ns, "annotations": manual},
                             "spec": {"ports": [{"port": 80}]}})
    ingress = {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}
    written = backend.update_status({**service, "status": ingress})
    assert written["status"] == ingress
    reapplied = backend.apply({"apiVersion": "v1", "kind": "Service",
                               "metadata": {"name": "web", "namespace": ns,
                                            "labels": {"app": "web"}, "annotations": manual},
                               "spec": {"ports": [{"port": 80}]}})
    assert reapplied["status"] == ingress, "an apply without status keeps it"
    got = backend.get("v1", "Service", ns, "web")
    assert got is not None and got["status"] == ingress
    # (A Deployment's status is also the workload controllers' to write, on a cluster that
    # runs them: only the write's own answer is checked.)
    deployment = backend.apply(_deployment(ns, 1))
    status = {"observedGeneration": 1, "replicas": 1}
    after = backend.update_status({**deployment, "status": status})
    assert after["metadata"]["generation"] == deployment["metadata"]["generation"]
    assert after["status"]["replicas"] == 1


def test_label_selector_lists(backend: Backend, ns: str) -> None:
    for name, labels in (("a", {"app": "x", "tier": "web"}), ("b", {"app": "x"}),
                         ("c", {"app": "y", "tier": "web"}), ("d", {})):
        backend.apply({**_cm(ns, name), "metadata": {"name": name, "namespace": ns,
                                                     "labels": labels}})

    def names(labels: dict[str, str] | None) -> list[str]:
        return sorted(o["metadata"]["name"] for o in backend.list("v1", "ConfigMap", ns, labels))

    assert names({"app": "x"}) == ["a", "b"]
    assert names({"app": "x", "tier": "web"}) == ["a"]
    assert names({"tier": "web"}) == ["a", "c"]
    assert names({"app": "z"}) == []
    assert names(None) == ["a", "b", "c", "d"]
    assert names({}) == ["a", "b", "c", "d"]
    assert backend.list("v1", "ConfigMap", f"{ns}-none") == []
    with pytest.raises(Rejected):
        backend.list("v1", "ConfigMap", ns, {"app": "x,y"})


def test_missing_objects_and_unknown_kinds(backend: Backend, ns: str) -> None:
    assert backend.get("v1", "ConfigMap", ns, "nothing") is None
    with pytest.raises(NotFound):
        backend.delete("v1", "ConfigMap", ns, "nothing")
    for call in (lambda: backend.get("example.com/v1", "Widget", ns, "w"),
                 lambda: backend.list("example.com/v1", "Widget", ns),
                 lambda: backend.delete("example.com/v1", "Widget", ns, "w"),
                 lambda: backend.kind_info("v1", "Widget")):
        with pytest.raises(Rejected) as raised:
            call()
        assert raised.value.field == "kind"


def test_cluster_scoped_objects_ignore_namespace(backend: Backend, ns: str) -> None:
    name = f"{ns}-extra"
    created = backend.apply({"apiVersion": "v1", "kind": "Namespace",
                             "metadata": {"name": name, "labels": {"contract": ns}}})
    try:
        assert "namespace" not in created["metadata"]
        assert backend.get("v1", "Namespace", "", name) is not None
        listed = backend.list("v1", "Namespace", None, {"contract": ns})
        assert [o["metadata"]["name"] for o in listed] == [name]
    finally:
        backend.delete("v1", "Namespace", "", name)


def test_events_count_per_object_reason_and_message(backend: Backend, ns: str) -> None:
    one = backend.apply(_cm(ns, "one"))
    two = backend.apply(_cm(ns, "two"))
    for _ in range(3):
        backend.emit_event(one, "Normal", "Applied", "created")
    backend.emit_event(two, "Normal", "Applied", "created")
    backend.emit_event(one, "Normal", "Applied", "configured")
    backend.emit_event(one, "Normal", "Applied", "created", source="other-component")
    uids = {one["metadata"]["uid"]: "one", two["metadata"]["uid"]: "two"}
    seen = sorted((uids[e["involvedObject"]["uid"]], e["message"], e["source"]["component"],
                   e["count"]) for e in backend.events()
                  if e["involvedObject"].get("uid") in uids)
    assert seen == [("one", "configured", "reconciler", 1),
                    ("one", "created", "other-component", 1),
                    ("one", "created", "reconciler", 3), ("two", "created", "reconciler", 1)]


CRD_GROUP = "contract.reconciler.dev"


def _crd(plural: str) -> dict[str, Any]:
    kind = plural.capitalize()[:-1]
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{CRD_GROUP}"},
        "spec": {"group": CRD_GROUP, "scope": "Namespaced",
                 "names": {"plural": plural, "singular": plural[:-1], "kind": kind,
                           "listKind": f"{kind}List"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "subresources": {"status": {}},
                               "schema": {"openAPIV3Schema": {
                                   "type": "object",
                                   "x-kubernetes-preserve-unknown-fields": True}}}]}}


def test_crd_kind_served_right_after_apply(backend: Backend, ns: str) -> None:
    plural = f"w{uuid.uuid4().hex[:8]}s"
    crd = _crd(plural)
    kind = crd["spec"]["names"]["kind"]
    api_version = f"{CRD_GROUP}/v1"
    with pytest.raises(Rejected):
        backend.kind_info(api_version, kind)
    backend.apply(crd)
    try:
        info = backend.kind_info(api_version, kind)
        assert (info.plural, info.namespaced) == (plural, True)
        obj = backend.apply({"apiVersion": api_version, "kind": kind,
                             "metadata": {"name": "one", "namespace": ns},
                             "spec": {"size": 1}, "status": {"ignored": True}})
        assert "status" not in obj
        written = backend.update_status({**obj, "status": {"ready": True}})
        assert written["status"] == {"ready": True} and written["spec"] == {"size": 1}
        assert [o["metadata"]["name"] for o in backend.list(api_version, kind, ns)] == ["one"]
    finally:
        backend.delete("apiextensions.k8s.io/v1", "CustomResourceDefinition", "",
                       f"{plural}.{CRD_GROUP}")
    # Once the CRD is gone its kind is no longer served (a real cluster may take a moment
    # while the CRD's objects are deleted; ours and the simulated one do it at once).
    with pytest.raises(Rejected):
        backend.kind_info(api_version, kind)


def test_many_objects_list_completely(backend: Backend, ns: str) -> None:
    for i in range(7):  # pages of 2 on the uncached backend
        backend.apply(_cm(ns, f"cm-{i}", i=str(i)))
    listed = backend.list("v1", "ConfigMap", ns)
    names = [o["metadata"]["name"] for o in listed if o["metadata"]["name"].startswith("cm-")]
    assert sorted(names) == [f"cm-{i}" for i in range(7)]
    assert all(o["data"]["i"] == o["metadata"]["name"][3:] for o in listed if "i" in o["data"])
