"""The owner controller's no-op fast path (issue 14): a settled Workload offered again with
nothing changed is not rendered; any change to what its reconcile read renders it again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from reconciler.engine.owner import WORKLOAD, OwnerController
from reconciler.model.errors import Transient
from reconciler.model.objects import Obj
from simulator.environment import SimulatedEnvironment

API = "carto.run/v1alpha1"
VALUE = "$(workload.spec.params[0].value)$"


def _template(name: str, data: str) -> Obj:
    return {"apiVersion": API, "kind": "ClusterConfigTemplate", "metadata": {"name": name},
            "spec": {"configPath": ".data", "template": {
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "$(workload.metadata.name)$-" + name},
                "data": {"value": data}}}}


CHAIN: Obj = {
    "apiVersion": API, "kind": "ClusterSupplyChain", "metadata": {"name": "chain"},
    "spec": {"selector": {"app": "x"},
             "params": [{"name": "greeting", "default": "hi"}],
             "resources": [
                 {"name": "source", "templateRef": {"kind": "ClusterConfigTemplate",
                                                    "name": "source"}},
                 {"name": "sink", "templateRef": {"kind": "ClusterConfigTemplate",
                                                  "name": "sink"},
                  "configs": [{"resource": "source", "name": "src"}]}]}}


class World:
    def __init__(self, fast_path: bool = True) -> None:
        self.env = SimulatedEnvironment()
        self.cluster = self.env.cluster
        self.controller = OwnerController(self.cluster, self.env.clock, WORKLOAD,
                                          fast_path=fast_path)
        self.renders = 0
        real: Callable[..., Any] = self.controller.realizer.realize

        def counting(*args: Any, **kwargs: Any) -> Any:
            self.renders += 1
            return real(*args, **kwargs)

        self.controller.realizer.realize = counting  # type: ignore[method-assign]
        self.cluster.apply(_template("source", f"$(params.greeting)$ {VALUE}"))
        self.cluster.apply(_template("sink", "$(configs.src.config.value)$"))
        self.cluster.apply(CHAIN)
        self.cluster.apply({"apiVersion": API, "kind": "Workload",
                            "metadata": {"name": "app", "namespace": "default",
                                         "labels": {"app": "x"}},
                            "spec": {"params": [{"name": "value", "value": "one"}]}})

    def workload(self) -> Obj:
        found = self.cluster.get(API, "Workload", "default", "app")
        assert found is not None
        return found

    def offer(self) -> int:
        """Offer the Workload once; how many renders it took."""
        before = self.renders
        self.controller.reconcile(self.workload())
        return self.renders - before

    def settle(self) -> None:
        for _ in range(5):
            if self.offer() == 0:
                return
        raise AssertionError("the Workload never settled")

    def sink(self) -> Obj:
        found = self.cluster.get("v1", "ConfigMap", "default", "app-sink")
        assert found is not None
        return found

    def ready(self) -> str:
        conds = self.workload()["status"]["conditions"]
        return str(next(c for c in conds if c["type"] == "Ready")["status"])


@pytest.fixture
def world() -> World:
    w = World()
    w.settle()
    assert w.ready() == "True"
    assert w.sink()["data"]["value"] == "hi one"
    return w


def test_a_settled_workload_offered_again_is_not_rendered(world: World) -> None:
    assert [world.offer() for _ in range(3)] == [0, 0, 0]


def test_without_the_fast_path_every_offer_renders() -> None:
    w = World(fast_path=False)
    w.offer()
    assert [w.offer() for _ in range(3)] == [1, 1, 1]


def _edit_spec(w: World) -> None:
    obj = w.workload()
    obj["spec"]["params"][0]["value"] = "two"
    w.cluster.apply(obj)


def _edit_template(w: World) -> None:
    w.cluster.apply(_template("source", f"$(params.greeting)$ there {VALUE}"))


def _edit_blueprint_param(w: World) -> None:
    chain = w.cluster.get(API, "ClusterSupplyChain", "", "chain")
    assert chain is not None
    chain["spec"]["params"][0]["default"] = "hello"
    w.cluster.apply(chain)


def _edit_source_output(w: World) -> None:
    # The source's stamped ConfigMap edited out of band: its output (the sink's input) changed.
    live = w.cluster.get("v1", "ConfigMap", "default", "app-source")
    assert live is not None
    live["data"]["value"] = "tampered"
    w.cluster.apply(live)


def _drift_sink(w: World) -> None:
    live = w.sink()
    live["data"]["value"] = "drifted"
    w.cluster.apply(live)


def _request(w: World) -> None:
    obj = w.workload()
    obj["metadata"].setdefault("annotations", {})["reconcile.fluxcd.io/requestedAt"] = "now-1"
    w.cluster.apply(obj)


@pytest.mark.parametrize(
    ("change", "sink"),
    [(_edit_spec, "hi two"), (_edit_template, "hi there one"),
     (_edit_blueprint_param, "hello one"), (_edit_source_output, "hi one"),
     (_drift_sink, "hi one"), (_request, "hi one")],
    ids=["workload-spec", "template", "blueprint-param", "source-output", "drift",
         "requested-at"],
)
def test_any_change_to_what_the_reconcile_read_renders_again(
        world: World, change: Callable[[World], None], sink: str) -> None:
    change(world)
    assert world.offer() == 1
    world.settle()
    assert world.sink()["data"]["value"] == sink
    assert world.ready() == "True"
    assert world.offer() == 0


def test_a_new_requested_at_is_handled(world: World) -> None:
    _request(world)
    assert world.offer() == 1
    assert world.workload()["status"]["lastHandledReconcileAt"] == "now-1"


def test_a_failed_reconcile_never_takes_the_fast_path(world: World) -> None:
    real_list = world.cluster.list
    failures = 0

    def failing(*args: Any, **kwargs: Any) -> Any:
        nonlocal failures
        if failures < 2:
            failures += 1
            raise Transient("SourceUnavailable", "cannot list: connection reset")
        return real_list(*args, **kwargs)

    world.cluster.list = failing  # type: ignore[method-assign]
    with pytest.raises(Transient):
        world.controller.reconcile(world.workload())
    assert world.ready() == "False"
    world.cluster.list = real_list  # type: ignore[method-assign]
    # Nothing changed in the inputs since, but the last reconcile failed: render again.
    assert world.offer() == 1
    world.settle()
    assert world.ready() == "True"


def test_a_workload_that_is_not_ready_is_never_skipped() -> None:
    w = World()
    w.cluster.delete(API, "ClusterConfigTemplate", "", "sink")
    w.cluster.apply(_template("sink", "$(configs.src.config.value)$"))
    w.cluster.delete(API, "ClusterConfigTemplate", "", "sink")
    w.offer()
    w.offer()
    assert w.ready() != "True"
    assert w.controller._settled == {}
