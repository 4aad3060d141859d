"""The owner controller's steps (Workload, Deliverable), each on its own (table tests), and how a
whole reconcile ends on the status, including the issue-10 bug: a Ready Workload whose reconcile
fails never turns Ready=Unknown with an empty reason; it keeps its outputs and says why."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.engine.owner import WORKLOAD, OwnerController, Run
from reconciler.model.conditions import find_condition
from reconciler.model.errors import Transient
from reconciler.model.objects import Obj
from reconciler.runtime.controller import RECONCILE_ERROR
from reconciler.runtime.reconcile import DONE, Action
from simulator.environment import SimulatedEnvironment

API = "carto.run/v1alpha1"


def _template(name: str) -> Obj:
    return {"apiVersion": API, "kind": "ClusterConfigTemplate", "metadata": {"name": name},
            "spec": {"configPath": ".data", "template": {
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "$(workload.metadata.name)$-" + name},
                "data": {"value": "$(workload.spec.params[0].value)$"}}}}


def _chain(name: str, selector: dict[str, str], *templates: str) -> Obj:
    return {"apiVersion": API, "kind": "ClusterSupplyChain", "metadata": {"name": name},
            "spec": {"selector": selector, "resources": [
                {"name": t, "templateRef": {"kind": "ClusterConfigTemplate", "name": t}}
                for t in templates]}}


def _workload(labels: dict[str, str], value: str = "one") -> Obj:
    return {"apiVersion": API, "kind": "Workload",
            "metadata": {"name": "app", "namespace": "default", "labels": labels},
            "spec": {"params": [{"name": "value", "value": value}]}}


class World:
    def __init__(self) -> None:
        self.env = SimulatedEnvironment()
        self.cluster = self.env.cluster
        # Each reconcile here runs the steps: the no-op fast path (which may skip one whose
        # inputs did not change) has its own tests, in test_owner_fastpath.py.
        self.controller = OwnerController(self.cluster, self.env.clock, WORKLOAD,
                                          fast_path=False)

    def workload(self) -> Obj:
        found = self.cluster.get(API, "Workload", "default", "app")
        assert found is not None
        return found

    def reconcile(self) -> Obj:
        self.controller.reconcile(self.workload())
        return self.workload()


@pytest.fixture
def world() -> World:
    return World()


def _said(run: Run, type_: str) -> tuple[str, str] | None:
    cond = run.conditions.get(type_)
    return None if cond is None else (cond.status, cond.reason)


@pytest.mark.parametrize(
    ("labels", "selectors", "action", "said"),
    [
        ({}, [], Action.STOP, ("False", "WorkloadLabelsMissing")),
        ({"app": "x"}, [], Action.STOP, ("False", "SupplyChainNotFound")),
        ({"app": "x"}, [{"app": "x"}, {"app": "x"}], Action.STOP,
         ("False", "MultipleSupplyChainMatches")),
        ({"app": "x"}, [{"app": "x"}, {"app": "y"}], Action.DONE, None),
    ],
    ids=["no-labels", "none-matches", "several-match", "one-matches"],
)
def test_select_blueprint(world: World, labels: dict[str, str],
                          selectors: list[dict[str, str]], action: Action,
                          said: tuple[str, str] | None) -> None:
    for i, selector in enumerate(selectors):
        world.cluster.apply(_chain(f"c{i}", selector, "settings"))
    run = Run(_workload(labels))
    assert world.controller.select_blueprint(run).action is action
    assert _said(run, "SupplyChainReady") == said
    assert (run.blueprint is not None) == (action is Action.DONE)


@pytest.mark.parametrize(("template", "action", "said"),
                         [(True, Action.DONE, ("True", "Ready")),
                          (False, Action.STOP, ("False", "TemplatesNotFound"))],
                         ids=["templates-exist", "template-missing"])
def test_check_blueprint(world: World, template: bool, action: Action,
                         said: tuple[str, str]) -> None:
    if template:
        world.cluster.apply(_template("settings"))
    world.cluster.apply(_chain("chain", {"app": "x"}, "settings"))
    run = Run(_workload({"app": "x"}))
    assert world.controller.select_blueprint(run) == DONE
    assert world.controller.check_blueprint(run).action is action
    assert _said(run, "SupplyChainReady") == said


@pytest.mark.parametrize(("params", "submitted"),
                         [([{"name": "value", "value": "one"}], ("True",
                                                                 "ResourceSubmissionComplete")),
                          ([], ("False", "TemplateStampFailure"))],
                         ids=["stamps", "stamp-fails"])
def test_realize_sets_resources_submitted_and_healthy(
    world: World, params: list[dict[str, str]], submitted: tuple[str, str]
) -> None:
    world.cluster.apply(_template("settings"))
    world.cluster.apply(_chain("chain", {"app": "x"}, "settings"))
    world.cluster.apply({**_workload({"app": "x"}), "spec": {"params": params}})
    run = Run(world.workload())
    for step in (world.controller.select_blueprint, world.controller.check_blueprint,
                 world.controller.realize):
        assert step(run) == DONE
    assert _said(run, "ResourcesSubmitted") == submitted
    assert run.conditions.get("ResourcesHealthy") is not None
    assert [r["name"] for r in run.resources] == ["settings"]


def test_remove_orphans_deletes_what_no_resource_stamps_any_more(world: World) -> None:
    world.cluster.apply(_template("one"))
    world.cluster.apply(_template("two"))
    world.cluster.apply(_chain("chain", {"app": "x"}, "one", "two"))
    world.cluster.apply(_workload({"app": "x"}))
    assert world.reconcile()["status"]["resources"]
    world.cluster.apply(_chain("chain", {"app": "x"}, "one"))
    run = Run(world.workload())
    for step in world.controller.steps:
        assert step(run) == DONE
    assert world.cluster.get("v1", "ConfigMap", "default", "app-two") is None
    assert world.cluster.get("v1", "ConfigMap", "default", "app-one") is not None


# --- how a reconcile ends ----------------------------------------------------------------------


def _cond(obj: Obj, type_: str) -> dict[str, Any]:
    found = find_condition(obj["status"]["conditions"], type_)
    assert found is not None, obj["status"]
    return dict(found)


def _ready_world(world: World) -> Obj:
    world.cluster.apply(_template("settings"))
    world.cluster.apply(_chain("chain", {"app": "x"}, "settings"))
    world.cluster.apply(_workload({"app": "x"}))
    ready = world.reconcile()
    assert _cond(ready, "Ready")["status"] == "True"
    assert ready["status"]["resources"][0]["outputs"]
    return ready


@pytest.mark.parametrize(
    ("error", "reason"),
    [(Transient("SourceUnavailable", "cannot read: connection reset"), "SourceUnavailable"),
     (KeyboardInterrupt(), RECONCILE_ERROR),
     (KeyError("boom"), RECONCILE_ERROR)],
    ids=["transient", "interrupted", "crash"],
)
def test_a_ready_workload_that_fails_is_never_unknown_without_a_reason(
    world: World, error: BaseException, reason: str
) -> None:
    before = _ready_world(world)
    # A new blueprint, so the controller lists its blueprints again (and that list fails).
    world.cluster.apply(_chain("other", {"app": "y"}, "settings"))
    real_list = world.cluster.list

    def failing(*_args: Any, **_kwargs: Any) -> Any:
        raise error

    world.cluster.list = failing  # type: ignore[method-assign]
    with pytest.raises(type(error)):
        world.controller.reconcile(world.workload())
    world.cluster.list = real_list  # type: ignore[method-assign]
    after = world.workload()
    ready = _cond(after, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", reason)
    assert ready["message"]
    assert _cond(after, "ResourcesSubmitted")["reason"] == reason
    assert after["status"]["resources"] == before["status"]["resources"]
    assert [c["type"] for c in after["status"]["conditions"]] == [
        "SupplyChainReady", "ResourcesSubmitted", "ResourcesHealthy", "Ready"]
    assert find_condition(after["status"]["conditions"], "Reconciling") is None


def test_a_stop_keeps_the_last_resources_and_says_why(world: World) -> None:
    before = _ready_world(world)
    world.cluster.delete(API, "ClusterSupplyChain", "", "chain")
    after = world.reconcile()
    assert [(c["type"], c["status"], c["reason"]) for c in after["status"]["conditions"]] == [
        ("SupplyChainReady", "False", "SupplyChainNotFound"),
        ("Ready", "False", "SupplyChainNotFound")]
    assert after["status"]["resources"] == before["status"]["resources"]
