"""The Runnable controller's steps, each on its own (table tests): a RunnableError stops the run
with RunTemplateReady=False and its reason, as Cartographer writes it; and a raised error keeps the
last good outputs and says why on Ready."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.engine.runnable import RunnableController, RunnableReconcile
from reconciler.model.conditions import find_condition
from reconciler.model.objects import Obj
from reconciler.runtime.controller import RECONCILE_ERROR
from reconciler.runtime.reconcile import DONE, Action
from simulator.environment import SimulatedEnvironment

NS = "default"
CARTO = "carto.run/v1alpha1"

TEMPLATE: Obj = {
    "apiVersion": CARTO, "kind": "ClusterRunTemplate", "metadata": {"name": "tpl"},
    "spec": {"template": {"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"generateName": "run-"},
                          "data": {"url": "$(runnable.spec.inputs.url)$"}},
             "outputs": {"url": "data.url"}},
}


def _runnable(**spec: Any) -> Obj:
    return {"apiVersion": CARTO, "kind": "Runnable",
            "metadata": {"name": "r", "namespace": NS},
            "spec": {"runTemplateRef": {"name": "tpl"}, "inputs": {"url": "https://a"}, **spec}}


@pytest.fixture
def env() -> SimulatedEnvironment:
    return SimulatedEnvironment()


def _controller(env: SimulatedEnvironment) -> RunnableController:
    return RunnableController(env.cluster, env.clock)


def _said(state: RunnableReconcile) -> tuple[str, str] | None:
    cond = state.conditions.get("RunTemplateReady")
    return None if cond is None else (cond.status, cond.reason)


@pytest.mark.parametrize(
    ("account", "exists", "action", "said"),
    [(None, False, Action.DONE, None), ("default", False, Action.DONE, None),
     ("builder", True, Action.DONE, None),
     ("builder", False, Action.STOP, ("False", "ServiceAccountNotFoundError"))],
    ids=["unset", "default", "exists", "missing"],
)
def test_check_service_account(env: SimulatedEnvironment, account: str | None, exists: bool,
                               action: Action, said: tuple[str, str] | None) -> None:
    if exists:
        env.cluster.apply({"apiVersion": "v1", "kind": "ServiceAccount",
                           "metadata": {"name": str(account), "namespace": NS}})
    spec = {"serviceAccountName": account} if account else {}
    state = RunnableReconcile(_runnable(**spec))
    assert _controller(env).check_service_account(state).action is action
    assert _said(state) == said


@pytest.mark.parametrize(("template", "action", "said"),
                         [(True, Action.DONE, None),
                          (False, Action.STOP, ("False", "RunTemplateNotFound"))],
                         ids=["exists", "missing"])
def test_get_run_template(env: SimulatedEnvironment, template: bool, action: Action,
                          said: tuple[str, str] | None) -> None:
    if template:
        env.cluster.apply(TEMPLATE)
    state = RunnableReconcile(_runnable())
    assert _controller(env).get_run_template(state).action is action
    assert _said(state) == said
    stamped = state.conditions.get("StampedObjectCondition")
    assert (stamped is None) == (action is Action.DONE)


def test_stamp_list_and_read_outputs(env: SimulatedEnvironment) -> None:
    env.cluster.apply(TEMPLATE)
    env.cluster.apply(_runnable())
    live = env.cluster.get(CARTO, "Runnable", NS, "r")
    assert live is not None
    controller = _controller(env)
    state = RunnableReconcile(live)
    for step in controller.steps:
        assert step(state) == DONE, step
    assert state.created and state.stamped is not None and len(state.runs) == 1
    assert _said(state) == ("True", "Ready")
    # No Succeeded condition on a ConfigMap: nothing succeeded, no outputs yet.
    assert state.outputs is None


def test_a_raised_error_keeps_the_outputs_and_says_why(env: SimulatedEnvironment) -> None:
    env.cluster.apply(TEMPLATE)
    env.cluster.apply(_runnable())
    live = env.cluster.get(CARTO, "Runnable", NS, "r")
    assert live is not None
    env.cluster.update_status({**live, "status": {"outputs": {"url": "https://a"}}})
    live = env.cluster.get(CARTO, "Runnable", NS, "r")
    assert live is not None
    controller = _controller(env)

    def crash(_state: RunnableReconcile) -> Any:
        raise KeyError("boom")

    controller.steps = (controller.check_service_account, crash)
    with pytest.raises(KeyError):
        controller.reconcile(live)
    after = env.cluster.get(CARTO, "Runnable", NS, "r")
    assert after is not None
    assert after["status"]["outputs"] == {"url": "https://a"}
    ready = find_condition(after["status"]["conditions"], "Ready")
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("False", RECONCILE_ERROR)
    assert "KeyError" in ready["message"]
