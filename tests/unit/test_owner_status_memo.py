"""The owner controller keeps a resource's stored `status.resources[]` entry when it would make
it again from the same inputs (`engine/owner.StatusMemo`): statuses and events are exactly
those made afresh, whatever changes (the stamped object, the owner, its status written by
someone else, a server that stores the status otherwise than it was written), and what is
remembered goes with the owner."""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import pytest

from reconciler.backends.base import Backend, Forwarding
from reconciler.chains.status import resource_status, status_inputs
from reconciler.engine import owner as owner_module
from reconciler.engine.owner import WORKLOAD, OwnerController
from reconciler.model.objects import Obj, deep_copy
from simulator.environment import SimulatedEnvironment

API = "carto.run/v1alpha1"

SOURCE: Obj = {
    "apiVersion": API, "kind": "ClusterConfigTemplate", "metadata": {"name": "source"},
    "spec": {
        "configPath": ".data",
        # Healthy follows an annotation someone else sets on the stamped object.
        "healthRule": {"multiMatch": {
            "healthy": {"matchFields": [{"key": "metadata.annotations.ready",
                                         "operator": "In", "values": ["yes"]}]},
            "unhealthy": {"matchFields": [{"key": "metadata.annotations.ready",
                                           "operator": "In", "values": ["no"]}]}}},
        "template": {"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": "$(workload.metadata.name)$-source"},
                     "data": {"value": "$(workload.spec.params[0].value)$"}}}}
SINK: Obj = {
    "apiVersion": API, "kind": "ClusterConfigTemplate", "metadata": {"name": "sink"},
    "spec": {"configPath": ".data",
             "template": {"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": "$(workload.metadata.name)$-sink"},
                          "data": {"copy": "$(configs.src.config.value)$"}}}}
CHAIN: Obj = {
    "apiVersion": API, "kind": "ClusterSupplyChain", "metadata": {"name": "chain"},
    "spec": {"selector": {"app": "x"},
             "resources": [
                 {"name": "source", "templateRef": {"kind": "ClusterConfigTemplate",
                                                    "name": "source"}},
                 {"name": "sink", "templateRef": {"kind": "ClusterConfigTemplate",
                                                  "name": "sink"},
                  "configs": [{"resource": "source", "name": "src"}]}]}}
WORKLOAD_OBJ: Obj = {
    "apiVersion": API, "kind": "Workload",
    "metadata": {"name": "app", "namespace": "default", "labels": {"app": "x"}},
    "spec": {"params": [{"name": "value", "value": "one"}]}}


class PrunesDigests(Forwarding):
    """A server that stores a status otherwise than it was written (as a CRD schema that
    prunes a field would): output digests are not kept (so an output looks new to every
    reconcile, and its event is emitted again each time)."""

    def update_status(self, obj: Obj) -> Obj:
        status = deep_copy(obj["status"])
        for entry in status.get("resources") or []:
            for out in entry.get("outputs") or []:
                out.pop("digest", None)
        return self.inner.update_status({**obj, "status": status})


class World:
    def __init__(self, remember: bool, wrap: Callable[[Backend], Backend] | None) -> None:
        self.env = SimulatedEnvironment()
        self.cluster = self.env.cluster
        backend = wrap(self.cluster) if wrap is not None else self.cluster
        self.controller = OwnerController(backend, self.env.clock, WORKLOAD, fast_path=False)
        self.controller.remember_statuses = remember
        for obj in (SOURCE, SINK, CHAIN, WORKLOAD_OBJ):
            self.cluster.apply(deep_copy(obj))

    def workload(self) -> Obj:
        found = self.cluster.get(API, "Workload", "default", "app")
        assert found is not None
        return found

    def offer(self) -> None:
        self.env.advance(5)  # every write and transition at its own time
        self.controller.reconcile(self.workload())

    def annotate(self, value: str | None) -> None:
        """Someone else sets (or removes) the annotation Healthy follows."""
        annotations = {} if value is None else {"ready": value}
        self.cluster.apply({"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": "app-source", "namespace": "default",
                                         "annotations": annotations}}, field_manager="someone")

    def set_param(self, value: str) -> None:
        self.cluster.apply({**deep_copy(WORKLOAD_OBJ),
                            "spec": {"params": [{"name": "value", "value": value}]}})

    def tamper(self) -> None:
        """Someone else writes the owner's status: the source entry says something else."""
        live = self.workload()
        entry = live["status"]["resources"][0]
        entry["conditions"] = [{**c, "message": "edited", "status": "False"}
                               for c in entry["conditions"]]
        entry["outputs"] = []
        self.cluster.update_status(live)

    def seen(self) -> tuple[Obj, list[tuple[Any, ...]]]:
        events = sorted((e["reason"], e["message"], e.get("count"))
                        for e in self.cluster.events())
        return self.workload()["status"], events


Act = Callable[[World], object]
OFFER: Act = World.offer

STEPS: list[tuple[str, list[Act]]] = [
    ("first offers", [OFFER, OFFER, OFFER]),
    ("settled offer", [OFFER]),
    ("stamped object turns healthy", [lambda w: w.annotate("yes"), OFFER]),
    ("offered again", [OFFER]),
    ("owner's spec changed", [lambda w: w.set_param("two"), OFFER, OFFER]),
    ("status written by someone else", [World.tamper, OFFER]),
    ("offered again", [OFFER]),
    ("stamped object turns unhealthy", [lambda w: w.annotate("no"), OFFER]),
    ("annotation removed", [lambda w: w.annotate(None), OFFER, OFFER]),
]


@pytest.mark.parametrize("wrap", [None, PrunesDigests], ids=["stored-as-written", "pruned"])
def test_statuses_and_events_are_those_made_afresh(
        wrap: Callable[[Backend], Backend] | None) -> None:
    kept, fresh = World(True, wrap), World(False, wrap)
    healthy_seen = set()
    for step, acts in STEPS:
        for act in acts:
            act(kept)
            act(fresh)
        assert kept.seen() == fresh.seen(), step
        status, _ = kept.seen()
        healthy_seen.add(next(c["status"] for c in status["resources"][0]["conditions"]
                              if c["type"] == "Healthy"))
    # The scenario moved the source's health through every state, and back.
    assert healthy_seen == {"True", "False", "Unknown"}


def test_a_resource_made_from_the_same_inputs_is_not_made_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    w = World(True, None)
    for _ in range(3):
        w.offer()
    made: list[str] = []
    real = resource_status

    def counting(realized: Any, *args: Any) -> Any:
        made.append(realized.resource.name)
        return real(realized, *args)

    monkeypatch.setattr(owner_module, "resource_status", counting)
    before = w.workload()["status"]
    w.offer()
    assert made == []
    assert w.workload()["status"] == before
    w.annotate("yes")  # the source's stamped object changed: that entry only is made again
    w.offer()
    assert made == ["source"]


def test_what_is_remembered_goes_with_the_owner() -> None:
    w = World(True, None)
    for _ in range(3):
        w.offer()
    memo = w.controller._statuses[("default", "app")]
    assert sorted(memo.by_resource) == ["sink", "source"]
    w.controller.forget("default", "app")
    assert w.controller._statuses == {}


def test_outputs_are_remembered_as_values_nothing_can_change_afterwards() -> None:
    w = World(True, None)
    for _ in range(3):
        w.offer()
    realized = w.controller.realizer.realize
    captured: list[Any] = []

    def capture(*args: Any, **kwargs: Any) -> Any:
        found = realized(*args, **kwargs)
        captured.extend(found)
        return found

    w.controller.realizer.realize = capture  # type: ignore[method-assign]
    w.offer()
    source = next(r for r in captured if r.resource.name == "source")
    assert isinstance(source.outputs["config"], dict)
    before = status_inputs(source, None)
    # An output read from an object shared with the store changes when that object does.
    source.outputs["config"]["value"] = "changed in place"
    assert status_inputs(source, None) != before
    # One that is not plain data is not remembered at all.
    source.outputs["config"] = MappingProxyType({"value": "one"})
    assert status_inputs(source, None) is None
