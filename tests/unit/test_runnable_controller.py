"""The Runnable controller against the in-memory cluster: stamp once per inputs, outputs from
the newest success, conditions, retention, events."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.engine.runnable import (
    RunnableController,
    ready_of,
    runnable_conditions,
    runnable_settled,
)
from reconciler.model.conditions import Condition
from simulator.environment import SimulatedEnvironment

NS = "default"
CARTO = "carto.run/v1alpha1"

TEMPLATE: dict[str, Any] = {
    "apiVersion": CARTO, "kind": "ClusterRunTemplate", "metadata": {"name": "tpl"},
    "spec": {
        "template": {"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"generateName": "run-"},
                     "data": {"url": "$(runnable.spec.inputs.url)$"}},
        "outputs": {"url": "data.url"},
    },
}


def _runnable(url: str = "https://a", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": CARTO, "kind": "Runnable",
            "metadata": {"name": "r", "namespace": NS},
            "spec": {"runTemplateRef": {"name": "tpl"}, "inputs": {"url": url}, **spec}}


class World:
    def __init__(self) -> None:
        self.env = SimulatedEnvironment()
        self.cluster = self.env.cluster
        self.controller = RunnableController(self.cluster, self.env.clock)

    def reconcile(self) -> dict[str, Any]:
        runnable = self.cluster.get(CARTO, "Runnable", NS, "r")
        assert runnable is not None
        self.controller.reconcile(runnable)
        after = self.cluster.get(CARTO, "Runnable", NS, "r")
        assert after is not None
        return after

    def runs(self) -> list[dict[str, Any]]:
        return self.cluster.list("v1", "ConfigMap", NS,
                                 {"carto.run/runnable-name": "r"})

    def finish(self, run: dict[str, Any], status: str) -> None:
        self.cluster.update_status({**run, "status": {"conditions": [
            {"type": "Succeeded", "status": status, "reason": status, "message": "",
             "lastTransitionTime": "2026-01-01T00:00:00Z"}]}})


def _cond(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == type_)


@pytest.fixture
def world() -> World:
    w = World()
    w.cluster.apply(TEMPLATE)
    return w


def test_stamps_once_per_inputs(world: World) -> None:
    world.cluster.apply(_runnable("https://a"))
    world.reconcile()
    world.reconcile()
    assert len(world.runs()) == 1
    world.env.advance(5)
    world.cluster.apply(_runnable("https://b"))
    after = world.reconcile()
    runs = world.runs()
    assert sorted(r["data"]["url"] for r in runs) == ["https://a", "https://b"]
    assert after["status"]["observedGeneration"] == 2
    assert all(r["metadata"]["ownerReferences"][0]["name"] == "r" for r in runs)
    created = [e for e in world.cluster.events() if e["reason"] == "StampedObjectApplied"]
    assert len(created) == 2 and created[0]["message"].startswith("Created object [configmaps/run-")


def test_outputs_come_from_newest_succeeded_run(world: World) -> None:
    world.cluster.apply(_runnable("https://a"))
    first = world.reconcile()
    assert "outputs" not in first["status"]
    assert _cond(first, "StampedObjectCondition")["reason"] == "Unknown"
    world.finish(world.runs()[0], "True")
    after = world.reconcile()
    assert after["status"]["outputs"] == {"url": "https://a"}
    assert _cond(after, "Ready")["status"] == "True"

    world.env.advance(5)
    world.cluster.apply(_runnable("https://b"))
    running = world.reconcile()
    # The new run has not succeeded: the outputs of the last success stay.
    assert running["status"]["outputs"] == {"url": "https://a"}
    new_run = next(r for r in world.runs() if r["data"]["url"] == "https://b")
    world.finish(new_run, "False")
    failed = world.reconcile()
    assert failed["status"]["outputs"] == {"url": "https://a"}
    ready = _cond(failed, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "SucceededCondition")
    assert new_run["metadata"]["name"] in ready["message"]


@pytest.mark.parametrize(
    ("runnable", "setup", "reason", "fragment"),
    [
        ({**_runnable(), "spec": {"runTemplateRef": {"name": "missing"}}}, None,
         "RunTemplateNotFound", "unable to get run template [missing]"),
        (_runnable(serviceAccountName="builder"), None, "ServiceAccountNotFoundError",
         "failed to get service account [default/builder]"),
        ({**_runnable(), "spec": {"runTemplateRef": {"name": "tpl"}}}, None,
         "TemplateStampFailure", "unable to stamp object for run template [tpl]"),
        (_runnable(selector={"resource": {"apiVersion": "v1", "kind": "Secret"},
                             "matchingLabels": {"a": "b"}}), None,
         "TemplateStampFailure", "selector did not match any objects"),
        (_runnable(), {"apiVersion": CARTO, "kind": "ClusterRunTemplate",
                       "metadata": {"name": "tpl"},
                       "spec": {"template": {"apiVersion": "example.com/v1", "kind": "Nope",
                                             "metadata": {"generateName": "x-"}}}},
         "StampedObjectRejectedByAPIServer", "unable to apply object [default/x-] for run "
         "template [tpl]"),
    ],
    ids=["template-missing", "service-account-missing", "input-missing", "selector-empty",
         "kind-not-served"],
)
def test_failures_become_run_template_ready_false(
    world: World, runnable: dict[str, Any], setup: dict[str, Any] | None, reason: str,
    fragment: str,
) -> None:
    if setup is not None:
        world.cluster.apply(setup)
    world.cluster.apply(runnable)
    after = world.reconcile()
    cond = _cond(after, "RunTemplateReady")
    assert (cond["status"], cond["reason"]) == ("False", reason)
    assert fragment in cond["message"]
    assert _cond(after, "Ready")["reason"] == reason
    assert after["status"]["observedGeneration"] == 1


def test_unsatisfied_output_path_clears_outputs(world: World) -> None:
    world.cluster.apply({**TEMPLATE, "spec": {**TEMPLATE["spec"],
                                              "outputs": {"digest": "status.digest"}}})
    world.cluster.apply(_runnable())
    world.reconcile()
    run = world.runs()[0]
    world.finish(run, "True")
    after = world.reconcile()
    cond = _cond(after, "RunTemplateReady")
    assert cond["reason"] == "OutputPathNotSatisfied"
    assert cond["message"].startswith(
        f"waiting to read value from resource [configmaps/{run['metadata']['name']}] in "
        "namespace [default]")
    assert "failed to evaluate path [status.digest]" in cond["message"]
    assert "outputs" not in after["status"]


def test_template_with_fixed_name_rejects_a_second_different_run(world: World) -> None:
    world.cluster.apply({**TEMPLATE, "spec": {"template": {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fixed"},
        "data": {"url": "$(runnable.spec.inputs.url)$"}}}})
    world.cluster.apply(_runnable("https://a"))
    assert _cond(world.reconcile(), "RunTemplateReady")["status"] == "True"
    world.cluster.apply(_runnable("https://b"))
    cond = _cond(world.reconcile(), "RunTemplateReady")
    assert cond["reason"] == "StampedObjectRejectedByAPIServer"
    assert "already exists" in cond["message"]


def test_retention_policy_deletes_oldest_finished_runs(world: World) -> None:
    world.cluster.apply(_runnable("https://0", retentionPolicy={"maxSuccessfulRuns": 1,
                                                                 "maxFailedRuns": 1}))
    for i in range(3):
        world.cluster.apply(_runnable(f"https://{i}", retentionPolicy={
            "maxSuccessfulRuns": 1, "maxFailedRuns": 1}))
        world.reconcile()
        run = next(r for r in world.runs() if r["data"]["url"] == f"https://{i}")
        world.finish(run, "True")
        world.env.advance(2)
    after = world.reconcile()
    assert [r["data"]["url"] for r in world.runs()] == ["https://2"]
    assert after["status"]["outputs"] == {"url": "https://2"}
    removed = [e for e in world.cluster.events() if e["reason"] == "StampedObjectRemoved"]
    assert len(removed) == 2


def test_status_is_not_rewritten_when_nothing_changed(world: World) -> None:
    world.cluster.apply(_runnable())
    world.reconcile()
    before = world.cluster.revision
    world.reconcile()
    assert world.cluster.revision == before


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ([("A", "True", "Ready"), ("B", "True", "SucceededCondition")], ("True", "Ready")),
        ([("A", "True", "Ready"), ("B", "Unknown", "Unknown")], ("Unknown", "Unknown")),
        ([("A", "False", "RunTemplateNotFound"), ("B", "Unknown", "Unknown")],
         ("False", "RunTemplateNotFound")),
        ([("A", "True", "Ready"), ("B", "False", "SucceededCondition")],
         ("False", "SucceededCondition")),
    ],
    ids=["all-true", "unknown", "false-beats-unknown", "failed-run"],
)
def test_ready_of(conditions: list[tuple[str, str, str]], expected: tuple[str, str]) -> None:
    ready = ready_of([Condition(*c) for c in conditions])
    assert (ready.status, ready.reason) == expected


@pytest.mark.parametrize(
    ("run_status", "stamped_status", "settled"),
    [(None, "Unknown", True), ("Unknown", "Unknown", False), ("True", "True", True),
     ("False", "False", True)],
    ids=["no-condition-never-finishes", "running", "succeeded", "failed"],
)
def test_runnable_settled(run_status: str | None, stamped_status: str, settled: bool) -> None:
    run: dict[str, Any] = {"status": {"conditions": [] if run_status is None else [
        {"type": "Succeeded", "status": run_status}]}}
    conditions = runnable_conditions(None, run)
    assert conditions[1].status == stamped_status
    runnable = {"metadata": {"generation": 1}, "status": {
        "observedGeneration": 1,
        "conditions": [c.to_dict("2026-01-01T00:00:00Z") for c in conditions]}}
    assert runnable_settled(runnable) is settled
    assert runnable_settled({**runnable, "metadata": {"generation": 2}}) is False
