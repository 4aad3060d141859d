"""The `Backend` contract, run against every backend available here (today: the simulator's
in-memory cluster; a real API server joins through `BACKENDS` when one is reachable)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from reconciler.apply.applier import Action, apply_object
from reconciler.apply.conflicts import ApplyConflict
from reconciler.backends.base import Backend
from reconciler.model.errors import NotFound, Rejected
from simulator.clock import VirtualClock
from simulator.cluster import InMemoryCluster

BACKENDS: dict[str, Callable[[], Backend]] = {"simulator": lambda: InMemoryCluster(VirtualClock())}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> Backend:
    return BACKENDS[request.param]()


def _cm(name: str = "cfg", **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default"}, "data": data}


def test_apply_creates_then_updates_and_tracks_generation(backend: Backend) -> None:
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment",
              "metadata": {"name": "web", "namespace": "default"}, "spec": {"replicas": 1}}
    created = backend.apply(deploy)
    assert created["metadata"]["generation"] == 1 and created["metadata"]["uid"]
    updated = backend.apply({**deploy, "spec": {"replicas": 2}})
    assert updated["metadata"]["generation"] == 2
    assert updated["metadata"]["uid"] == created["metadata"]["uid"]


def test_apply_object_skips_objects_in_sync(backend: Backend) -> None:
    assert apply_object(backend, _cm(a="1")).action is Action.CREATED
    assert apply_object(backend, _cm(a="1")).action is Action.UNCHANGED
    changed = apply_object(backend, _cm(a="2"))
    assert (changed.action, changed.changed) == (Action.CONFIGURED, ("data.a",))


def test_status_only_through_the_subresource(backend: Backend) -> None:
    live = backend.apply({**_cm(), "status": {"x": 1}})
    assert "status" not in live
    written = backend.update_status({**live, "status": {"x": 2}})
    assert written["status"] == {"x": 2}


def test_field_managers_conflict_and_force(backend: Backend) -> None:
    backend.apply(_cm(a="1"), "reconciler")
    with pytest.raises(ApplyConflict):
        backend.apply(_cm(a="2"), "someone-else")
    assert backend.apply(_cm(a="2"), "someone-else", force=True)["data"] == {"a": "2"}


def test_missing_namespace_unknown_kind_and_delete(backend: Backend) -> None:
    with pytest.raises(NotFound):
        backend.apply({**_cm(), "metadata": {"name": "x", "namespace": "nope"}})
    with pytest.raises(Rejected):
        backend.apply({"apiVersion": "example.com/v1", "kind": "Widget",
                       "metadata": {"name": "w", "namespace": "default"}})
    backend.apply(_cm())
    backend.delete("v1", "ConfigMap", "default", "cfg")
    assert backend.get("v1", "ConfigMap", "default", "cfg") is None
    with pytest.raises(NotFound):
        backend.delete("v1", "ConfigMap", "default", "cfg")


def test_list_by_labels(backend: Backend) -> None:
    backend.apply({**_cm("a"), "metadata": {"name": "a", "namespace": "default",
                                            "labels": {"app": "x"}}})
    backend.apply(_cm("b"))
    assert [o["metadata"]["name"] for o in backend.list("v1", "ConfigMap", "default",
                                                        {"app": "x"})] == ["a"]
