"""Inventory and prune: every guard, and failed deletes staying in the inventory."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.apply.inventory import Inventory, ObjectRef
from reconciler.apply.prune import PRUNE_ANNOTATION, prune
from reconciler.model.errors import BackendError
from simulator.clock import VirtualClock
from simulator.cluster import InMemoryCluster

LABELS = {"kustomize.toolkit.fluxcd.io/name": "app"}


def _cm(name: str, labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default",
                            "labels": LABELS if labels is None else labels}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}


def _inv(*names: str) -> Inventory:
    return Inventory.of(ObjectRef("", "ConfigMap", "default", n) for n in names)


class FailingDeletes(InMemoryCluster):
    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        if name == "stuck":
            raise BackendError("admission webhook denied the request")
        super().delete(api_version, kind, namespace, name)


@pytest.fixture
def cluster() -> FailingDeletes:
    c = FailingDeletes(VirtualClock())
    c.apply(_cm("keep"))
    c.apply(_cm("stale"))
    c.apply(_cm("foreign", labels={"kustomize.toolkit.fluxcd.io/name": "someone-else"}))
    c.apply(_cm("opted-out", annotations={PRUNE_ANNOTATION: "disabled"}))
    c.apply(_cm("stuck"))
    return c


def _exists(cluster: InMemoryCluster, name: str) -> bool:
    return cluster.get("v1", "ConfigMap", "default", name) is not None


CASES = [
    ("stale object pruned", _inv("keep", "stale"), _inv("keep"), True, False, ["stale"], None),
    ("not after a failed fetch/render/apply", _inv("keep", "stale"), _inv("keep"), False, False,
     [], "did not complete"),
    ("empty render refused", _inv("keep", "stale"), _inv(), True, False, [], "no objects"),
    ("empty render allowed explicitly", _inv("keep", "stale"), _inv(), True, True,
     ["keep", "stale"], None),
    ("only the previous inventory", _inv("keep"), _inv("keep"), True, False, [], None),
    ("owner labels required", _inv("keep", "foreign"), _inv("keep"), True, False, [], None),
    ("opt-out annotation", _inv("keep", "opted-out"), _inv("keep"), True, False, [], None),
    ("already gone", _inv("keep", "ghost"), _inv("keep"), True, False, [], None),
]


@pytest.mark.parametrize(("previous", "current", "complete", "allow_empty", "deleted", "refused"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_prune_guards(cluster: FailingDeletes, previous: Inventory, current: Inventory,
                      complete: bool, allow_empty: bool, deleted: list[str],
                      refused: str | None) -> None:
    result = prune(cluster, previous, current, LABELS, applied_all=complete,
                   allow_empty=allow_empty)
    assert sorted(r.name for r in result.deleted) == deleted
    for name in ("keep", "stale", "foreign", "opted-out"):
        assert _exists(cluster, name) is (name not in deleted)
    if refused:
        assert result.refused is not None and refused in result.refused
        assert set(previous) <= set(result.inventory)
    else:
        assert result.refused is None


def test_failed_delete_stays_in_the_inventory(cluster: FailingDeletes) -> None:
    result = prune(cluster, _inv("keep", "stuck", "stale"), _inv("keep"), LABELS,
                   applied_all=True)
    assert [r.name for r in result.deleted] == ["stale"]
    assert [(r.name, "webhook" in why) for r, why in result.failed] == [("stuck", True)]
    assert sorted(r.name for r in result.inventory) == ["keep", "stuck"]


def test_inventory_round_trips_through_status() -> None:
    inv = Inventory.of([ObjectRef("apps", "Deployment", "prod", "web", "v1"),
                        ObjectRef("", "Namespace", "", "prod", "v1")])
    status = {"inventory": inv.to_status()}
    assert status["inventory"]["entries"][0] == {"id": "_prod__Namespace", "v": "v1"}
    assert Inventory.from_status(status) == inv
    assert not Inventory.from_status({"inventory": {"entries": [{"id": "bad"}]}})
