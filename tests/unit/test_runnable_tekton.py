"""The simulated Tekton controller that lets Runnable runs finish on the virtual clock."""

from __future__ import annotations

from typing import Any

import pytest

from simulator.environment import SimulatedEnvironment
from simulator.tekton import TektonRuns, TektonTiming

NS = "default"

PIPELINE = {"apiVersion": "tekton.dev/v1", "kind": "Pipeline",
            "metadata": {"name": "test", "namespace": NS},
            "spec": {"tasks": [{"name": "a"}, {"name": "b"}],
                     "results": [{"name": "digest", "value": "$(tasks.a.results.digest)"}]}}


def _pipeline_run(api_version: str = "tekton.dev/v1", annotations: dict[str, str] | None = None,
                  **spec: Any) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": "PipelineRun",
            "metadata": {"name": "run-1", "namespace": NS, "annotations": annotations or {}},
            "spec": spec or {"pipelineRef": {"name": "test"}}}


def _succeeded(obj: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == "Succeeded")


class Tekton:
    def __init__(self) -> None:
        self.env = SimulatedEnvironment()
        self.cluster = self.env.cluster
        self.controller = TektonRuns(self.cluster, self.env.clock, TektonTiming(20, 10))

    def step(self, kind: str = "PipelineRun", name: str = "run-1") -> tuple[dict[str, Any],
                                                                            float | None]:
        obj = self.cluster.get("tekton.dev/v1", kind, NS, name)
        assert obj is not None
        wake = self.controller.reconcile(obj)
        after = self.cluster.get("tekton.dev/v1", kind, NS, name)
        assert after is not None
        return after, wake


@pytest.fixture
def tekton() -> Tekton:
    return Tekton()


def test_pipeline_run_runs_then_succeeds_with_declared_results(tekton: Tekton) -> None:
    tekton.cluster.apply(PIPELINE)
    tekton.cluster.apply(_pipeline_run())
    running, wake = tekton.step()
    assert (_succeeded(running)["status"], _succeeded(running)["reason"]) == ("Unknown",
                                                                             "Running")
    assert wake == 20
    tekton.env.advance(20)
    done, wake = tekton.step()
    assert wake is None
    assert (_succeeded(done)["status"], _succeeded(done)["reason"]) == ("True", "Succeeded")
    assert _succeeded(done)["message"] == "Tasks Completed: 2 (Failed: 0, Cancelled 0), Skipped: 0"
    assert [r["name"] for r in done["status"]["results"]] == ["digest"]
    assert done["status"]["completionTime"]
    before = tekton.cluster.revision
    tekton.env.advance(100)
    tekton.step()
    assert tekton.cluster.revision == before, "a finished run never changes"


@pytest.mark.parametrize(
    ("run", "with_pipeline", "status", "reason", "fragment"),
    [
        (_pipeline_run(), False, "False", "CouldntGetPipeline",
         'pipelines.tekton.dev "test" not found'),
        (_pipeline_run(annotations={"simulator.reconciler.dev/outcome": "Failed",
                                    "simulator.reconciler.dev/duration": "0"}), True,
         "False", "Failed", "(Failed: 1"),
        (_pipeline_run(pipelineRef={"name": "test"}, status="Cancelled"), True,
         "False", "Cancelled", "was cancelled"),
        (_pipeline_run(annotations={"simulator.reconciler.dev/duration": "0"}), True,
         "True", "Succeeded", "Tasks Completed: 2"),
        (_pipeline_run(pipelineSpec={"tasks": [{"name": "x"}]},
                       pipelineRef=None), False, "Unknown", "Running", "Tasks Completed: 0"),
    ],
    ids=["missing-pipeline", "annotated-failure", "cancelled", "zero-duration", "inline-spec"],
)
def test_pipeline_run_outcomes(
    tekton: Tekton, run: dict[str, Any], with_pipeline: bool, status: str, reason: str,
    fragment: str,
) -> None:
    if with_pipeline:
        tekton.cluster.apply(PIPELINE)
    run["spec"] = {k: v for k, v in run["spec"].items() if v is not None}
    tekton.cluster.apply(run)
    after, _ = tekton.step()
    cond = _succeeded(after)
    assert (cond["status"], cond["reason"]) == (status, reason)
    assert fragment in cond["message"]


@pytest.mark.parametrize(
    ("api_version", "field"),
    [("tekton.dev/v1", "results"), ("tekton.dev/v1beta1", "pipelineResults")],
)
def test_results_field_follows_the_version_the_run_was_created_with(
    tekton: Tekton, api_version: str, field: str
) -> None:
    tekton.cluster.apply(PIPELINE)
    tekton.cluster.apply(_pipeline_run(api_version, annotations={
        "simulator.reconciler.dev/duration": "0",
        "simulator.reconciler.dev/results": '{"digest": "sha256:abc", "extra": 3}'}))
    done, _ = tekton.step()
    assert done["status"][field] == [{"name": "digest", "value": "sha256:abc"},
                                     {"name": "extra", "value": "3"}]


def test_task_run_with_missing_task_fails_and_with_inline_spec_succeeds(tekton: Tekton) -> None:
    tekton.cluster.apply({"apiVersion": "tekton.dev/v1", "kind": "TaskRun",
                          "metadata": {"name": "missing", "namespace": NS},
                          "spec": {"taskRef": {"name": "nope"}}})
    tekton.cluster.apply({"apiVersion": "tekton.dev/v1", "kind": "TaskRun",
                          "metadata": {"name": "inline", "namespace": NS},
                          "spec": {"taskSpec": {"steps": [{"name": "s"}],
                                                "results": [{"name": "out"}]}}})
    failed, _ = tekton.step("TaskRun", "missing")
    assert _succeeded(failed)["reason"] == "CouldntGetTask"
    _, wake = tekton.step("TaskRun", "inline")
    assert wake == 10
    tekton.env.advance(10)
    done, _ = tekton.step("TaskRun", "inline")
    assert _succeeded(done)["message"] == "All Steps have completed executing"
    assert done["status"]["results"][0]["name"] == "out"
