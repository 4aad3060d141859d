"""The `Backend` contract, run against every backend: the simulator's in-memory cluster always,
and `KubernetesBackend` when `RECONCILER_TEST_KUBECONFIG` names the kubeconfig of a reachable
cluster (skipped otherwise: no API server can run on the machines CI has).

Every test works in a namespace of its own, created by the `ns` fixture and deleted after it, so
a real cluster is left as it was found and runs do not see each other's objects. The objects are
ones a real API server accepts as they are (a Deployment with a selector and a template, a
Service with ports), so a test passing here means the same thing on both backends.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.apply.applier import Action, apply_object
from reconciler.apply.conflicts import ApplyConflict, FieldConflict
from reconciler.backends.base import Backend
from reconciler.backends.kubernetes import connect
from reconciler.model.errors import NotFound, Rejected
from simulator.clock import VirtualClock
from simulator.cluster import InMemoryCluster

KUBECONFIG_VARIABLE = "RECONCILER_TEST_KUBECONFIG"


def _simulator() -> Backend:
    return InMemoryCluster(VirtualClock())


def _kubernetes() -> Backend:
    kubeconfig = os.environ.get(KUBECONFIG_VARIABLE)
    if not kubeconfig:
        pytest.skip(f"{KUBECONFIG_VARIABLE} is not set: the KubernetesBackend contract needs a "
                    "reachable API server (set it to a kubeconfig of a disposable cluster)")
    return connect(Path(kubeconfig))


BACKENDS: dict[str, Callable[[], Backend]] = {"simulator": _simulator,
                                              "kubernetes": _kubernetes}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> Backend:
    return BACKENDS[request.param]()


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
