"""The simulated Tekton controller with steps that really run: TaskRun status, steps and logs,
PipelineRuns creating their TaskRuns as Tekton does, the virtual clock, and the off switch."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from reconciler.model.limits import Limits
from simulator.environment import SimulatedEnvironment
from simulator.tekton import LOGS_ANNOTATION, TektonRuns, TektonTiming

NS = "default"
API = "tekton.dev/v1"


class Tekton:
    def __init__(self, **options: Any) -> None:
        self.env = SimulatedEnvironment()
        self.cluster = self.env.cluster
        self.controller = TektonRuns(self.cluster, self.env.clock, TektonTiming(20, 10),
                                     **options)
        self.cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found = self.cluster.get(API, kind, NS, name)
        assert found is not None, f"{kind} {name} not found"
        return found

    def settle(self, rounds: int = 50) -> float:
        """Reconcile every run until none changes, moving virtual time to the next wake-up;
        returns the virtual seconds that passed."""
        start = self.env.clock.now()
        for _ in range(rounds):
            before = self.cluster.revision
            wakes = [self.controller.reconcile(obj) for kind in ("PipelineRun", "TaskRun")
                     for obj in self.cluster.list(API, kind)]
            if self.cluster.revision != before:
                continue
            due = [w for w in wakes if w is not None]
            if not due:
                return self.env.clock.now() - start
            self.env.advance(max(min(due), 0.001))
        raise AssertionError("runs did not settle")


def _succeeded(obj: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == "Succeeded")


def _task(name: str, steps: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Task", "metadata": {"name": name, "namespace": NS},
            "spec": {"steps": steps, **spec}}


def _task_run(name: str, spec: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "TaskRun",
            "metadata": {"name": name, "namespace": NS, **metadata}, "spec": spec}


@pytest.fixture
def tekton() -> Tekton:
    return Tekton(run_steps=True)


def test_a_failing_step_fails_the_task_run_with_steps_and_logs(tekton: Tekton) -> None:
    tekton.cluster.apply(_task("test", [
        {"name": "prepare", "image": "alpine",
         "script": "sleep 1\necho preparing $(params.what)"},
        {"name": "test", "image": "alpine", "script": "echo '1 failed'; exit 1"},
        {"name": "report", "image": "alpine", "script": "echo report"}],
        params=[{"name": "what", "default": "nothing"}]))
    tekton.cluster.apply(_task_run("tr", {"taskRef": {"name": "test"},
                                          "params": [{"name": "what", "value": "the app"}]}))
    assert tekton.settle() == 10, "the virtual duration, however long the steps took"
    run = tekton.get("TaskRun", "tr")
    assert (run["status"]["startTime"], run["status"]["completionTime"]) == (
        "2026-01-01T00:00:00Z", "2026-01-01T00:00:10Z"), "deterministic, as simulate needs"
    cond = _succeeded(run)
    assert (cond["status"], cond["reason"]) == ("False", "Failed")
    assert cond["message"] == 'step "test" in task "test" exited with code 1'
    assert [(s["name"], s["container"], s["terminated"]["exitCode"], s["terminated"]["reason"])
            for s in run["status"]["steps"]] == [("prepare", "step-prepare", 0, "Completed"),
                                                 ("test", "step-test", 1, "Error"),
                                                 ("report", "step-report", 1, "Skipped")]
    logs = json.loads(run["metadata"]["annotations"][LOGS_ANNOTATION])
    assert logs == {"prepare": "preparing the app\n", "test": "1 failed\n", "report": ""}
    assert run["status"]["completionTime"]
    before = tekton.cluster.revision
    tekton.env.advance(100)
    tekton.settle()
    assert tekton.cluster.revision == before, "a finished run never changes"


def test_a_succeeding_task_run_reports_the_results_its_steps_wrote(tekton: Tekton) -> None:
    tekton.cluster.apply(_task_run("tr", {"taskSpec": {
        "results": [{"name": "digest"}],
        "steps": [{"name": "build", "command": ["sh", "-c"],
                   "args": ["printf sha256:1234 > $(results.digest.path)"]}]}}))
    tekton.settle()
    run = tekton.get("TaskRun", "tr")
    assert (_succeeded(run)["status"], _succeeded(run)["reason"]) == ("True", "Succeeded")
    assert run["status"]["results"] == [{"name": "digest", "value": "sha256:1234"}]


def test_a_timeout_fails_with_tektons_reason(tekton: Tekton) -> None:
    tekton.cluster.apply(_task_run("tr", {"timeout": "1s", "taskSpec": {
        "steps": [{"name": "hang", "script": "sleep 30"}]}}))
    tekton.settle()
    cond = _succeeded(tekton.get("TaskRun", "tr"))
    assert (cond["status"], cond["reason"]) == ("False", "TaskRunTimeout")
    assert 'failed to finish within "0m1s"' in cond["message"]


def test_the_timeout_is_capped_by_the_limit() -> None:
    tekton = Tekton(run_steps=True, limits=Limits(task_run_seconds_max=1))
    tekton.cluster.apply(_task_run("tr", {"timeout": "1h", "taskSpec": {
        "steps": [{"name": "hang", "script": "sleep 30"}]}}))
    tekton.settle()
    assert _succeeded(tekton.get("TaskRun", "tr"))["reason"] == "TaskRunTimeout"


PIPELINE = {
    "apiVersion": API, "kind": "Pipeline", "metadata": {"name": "ci", "namespace": NS},
    "spec": {
        "params": [{"name": "source-url"}, {"name": "source-revision", "default": "none"}],
        "results": [{"name": "checked", "value": "$(tasks.lint.results.summary)"}],
        "tasks": [
            # Declared first, but it uses lint's result: it runs second.
            {"name": "test", "taskRef": {"name": "test"},
             "params": [{"name": "summary", "value": "$(tasks.lint.results.summary)"}]},
            {"name": "lint", "taskRef": {"name": "lint"},
             "params": [{"name": "revision", "value": "$(params.source-revision)"}]},
        ],
    },
}


def _pipeline_tasks(tekton: Tekton, test_script: str) -> None:
    tekton.cluster.apply(PIPELINE)
    tekton.cluster.apply(_task("lint", [{"name": "lint", "script":
                                         "printf 'lint ok at %s' $(params.revision) "
                                         "> $(results.summary.path)"}],
                               params=[{"name": "revision"}], results=[{"name": "summary"}]))
    tekton.cluster.apply(_task("test", [{"name": "test", "script": test_script}],
                               params=[{"name": "summary"}]))
    tekton.cluster.apply({"apiVersion": API, "kind": "PipelineRun",
                          "metadata": {"name": "ci-run", "namespace": NS},
                          "spec": {"pipelineRef": {"name": "ci"},
                                   "params": [{"name": "source-revision", "value": "abc"}]}})


def test_a_pipeline_run_creates_its_task_runs_in_order_passing_results(tekton: Tekton) -> None:
    _pipeline_tasks(tekton, "echo \"after: $(params.summary)\"")
    assert tekton.settle() == 20, "two TaskRuns of 10 virtual seconds, one after the other"
    run = tekton.get("PipelineRun", "ci-run")
    cond = _succeeded(run)
    assert (cond["status"], cond["reason"]) == ("True", "Succeeded")
    assert cond["message"] == "Tasks Completed: 2 (Failed: 0, Cancelled 0), Skipped: 0"
    assert run["status"]["results"] == [{"name": "checked", "value": "lint ok at abc"}]
    assert [(c["name"], c["pipelineTaskName"]) for c in run["status"]["childReferences"]] == [
        ("ci-run-lint", "lint"), ("ci-run-test", "test")]
    child = tekton.get("TaskRun", "ci-run-test")
    labels = child["metadata"]["labels"]
    assert (labels["tekton.dev/pipelineRun"], labels["tekton.dev/pipelineTask"],
            labels["tekton.dev/pipeline"]) == ("ci-run", "test", "ci")
    owner = child["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "PipelineRun", "ci-run", run["metadata"]["uid"], True)
    assert child["spec"]["params"] == [{"name": "summary", "value": "lint ok at abc"}]
    assert json.loads(child["metadata"]["annotations"][LOGS_ANNOTATION]) == {
        "test": "after: lint ok at abc\n"}


def test_a_failing_task_fails_the_pipeline_run_and_names_step_and_task(tekton: Tekton) -> None:
    tekton.cluster.apply(PIPELINE)
    tekton.cluster.apply(_task("lint", [{"name": "flake8", "script": "echo E501; exit 2"}],
                               params=[{"name": "revision"}], results=[{"name": "summary"}]))
    tekton.cluster.apply(_task("test", [{"name": "test", "script": "true"}],
                               params=[{"name": "summary"}]))
    tekton.cluster.apply({"apiVersion": API, "kind": "PipelineRun",
                          "metadata": {"name": "ci-run", "namespace": NS},
                          "spec": {"pipelineRef": {"name": "ci"}}})
    tekton.settle()
    cond = _succeeded(tekton.get("PipelineRun", "ci-run"))
    assert (cond["status"], cond["reason"]) == ("False", "Failed")
    assert cond["message"] == ('Tasks Completed: 1 (Failed: 1, Cancelled 0), Skipped: 1: '
                               'step "flake8" in task "lint" exited with code 2')
    assert tekton.cluster.get(API, "TaskRun", NS, "ci-run-test") is None, "the rest never runs"


def test_a_pipeline_naming_a_missing_task_fails_as_tekton(tekton: Tekton) -> None:
    tekton.cluster.apply(PIPELINE)
    tekton.cluster.apply(_task("lint", [{"name": "l", "script": "true"}]))
    tekton.cluster.apply({"apiVersion": API, "kind": "PipelineRun",
                          "metadata": {"name": "ci-run", "namespace": NS},
                          "spec": {"pipelineRef": {"name": "ci"}}})
    tekton.settle()
    cond = _succeeded(tekton.get("PipelineRun", "ci-run"))
    assert (cond["status"], cond["reason"]) == ("False", "CouldntGetTask")
    assert 'tasks.tekton.dev "test" not found' in cond["message"]


def test_with_steps_off_the_annotations_decide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILER_SIMULATOR_RUN_STEPS", "false")
    tekton = Tekton()
    assert tekton.controller.run_steps is False
    tekton.cluster.apply(_task_run("tr", {"taskSpec": {"steps": [
        {"name": "s", "script": "exit 1"}]}}))
    tekton.cluster.apply(_task_run("annotated", {"taskSpec": {"steps": [
        {"name": "s", "script": "exit 0"}]}},
        annotations={"simulator.reconciler.dev/outcome": "Failed"}))
    tekton.settle()
    assert _succeeded(tekton.get("TaskRun", "tr"))["status"] == "True", "the script never ran"
    failed = tekton.get("TaskRun", "annotated")
    assert _succeeded(failed)["status"] == "False"
    assert LOGS_ANNOTATION not in (failed["metadata"].get("annotations") or {})


def test_serving_turns_steps_off_unless_asked_and_never_waits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RECONCILER_SIMULATOR_RUN_STEPS", raising=False)
    tekton = Tekton()
    assert tekton.controller.run_steps is True, "on by default for simulate"
    tekton.controller.configure_for_serving()
    assert tekton.controller.run_steps is False
    monkeypatch.setenv("RECONCILER_SIMULATOR_RUN_STEPS", "true")
    tekton.controller.configure_for_serving()
    assert tekton.controller.run_steps is True
    tekton.cluster.apply(_task_run("tr", {"taskSpec": {"steps": [
        {"name": "s", "script": "sleep 2"}]}},
        annotations={"simulator.reconciler.dev/duration": "0"}))
    wake = tekton.controller.reconcile(tekton.get("TaskRun", "tr"))
    assert wake == 1.0, "still running: asks again later instead of waiting"
    assert _succeeded(tekton.get("TaskRun", "tr"))["reason"] == "Running"
    for _ in range(600):  # the step sleeps 2 s; it finishes on its own thread meanwhile
        if tekton.controller.reconcile(tekton.get("TaskRun", "tr")) is None:
            break
        time.sleep(0.1)
    assert _succeeded(tekton.get("TaskRun", "tr"))["reason"] == "Succeeded"


def test_reconciler_serve_configures_tekton_for_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    from simulator.apiserver.runtime import ServedCluster

    monkeypatch.delenv("RECONCILER_SIMULATOR_RUN_STEPS", raising=False)
    with ServedCluster([], controllers="ecosystem") as served:
        env = served.running.env
        assert env is not None
        tekton = next(c for c in env.controllers if isinstance(c, TektonRuns))
        assert (tekton.run_steps, tekton.wait_for_steps, tekton.allow_local_git) == (
            False, False, False)


def test_cancelling_a_run_kills_its_running_step(tekton: Tekton, tmp_path: Path) -> None:
    pid_file = tmp_path / "step.pid"
    tekton.cluster.apply(_task_run("tr", {"taskSpec": {"steps": [
        {"name": "hang", "script": f"echo $$ > {pid_file}.tmp\nmv {pid_file}.tmp {pid_file}\n"
                                   "exec sleep 60"}]}}))
    assert tekton.controller.reconcile(tekton.get("TaskRun", "tr")) == 10
    for _ in range(100):  # the step starts on its own thread
        if pid_file.exists():
            break
        time.sleep(0.05)
    pid = int(pid_file.read_text())
    assert _alive(pid)
    run = tekton.get("TaskRun", "tr")
    tekton.cluster.apply({**run, "spec": {**run["spec"], "status": "TaskRunCancelled"}})
    assert tekton.controller.reconcile(tekton.get("TaskRun", "tr")) is None
    assert _succeeded(tekton.get("TaskRun", "tr"))["reason"] == "Cancelled"
    for _ in range(100):  # killed within a quarter second of the cancel, on the job's thread
        if not _alive(pid):
            break
        time.sleep(0.05)
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _hanging_step(pid_file: Path) -> dict[str, Any]:
    return {"name": "hang", "script": f"echo $$ > {pid_file}.tmp\nmv {pid_file}.tmp {pid_file}\n"
                                      "exec sleep 60"}


def _started_pid(pid_file: Path) -> int:
    for _ in range(200):  # the step starts on its own thread
        if pid_file.exists():
            break
        time.sleep(0.05)
    return int(pid_file.read_text())


def _gone(pid: int) -> bool:
    for _ in range(100):  # killed within a quarter second of the deletion, on the job's thread
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_deleting_a_task_run_kills_its_running_step(tekton: Tekton, tmp_path: Path) -> None:
    pid_file = tmp_path / "step.pid"
    tekton.cluster.apply(_task_run("tr", {"taskSpec": {"steps": [_hanging_step(pid_file)]}}))
    tekton.controller.reconcile(tekton.get("TaskRun", "tr"))
    pid = _started_pid(pid_file)
    assert _alive(pid)
    tekton.cluster.delete(API, "TaskRun", NS, "tr")
    tekton.settle()
    assert _gone(pid), "the deleted TaskRun's step is still running"
    assert not tekton.controller._jobs


def test_deleting_a_pipeline_run_kills_its_task_runs_step(tekton: Tekton, tmp_path: Path) -> None:
    pid_file = tmp_path / "step.pid"
    tekton.cluster.apply({"apiVersion": API, "kind": "PipelineRun",
                          "metadata": {"name": "pr", "namespace": NS},
                          "spec": {"pipelineSpec": {"tasks": [
                              {"name": "hang",
                               "taskSpec": {"steps": [_hanging_step(pid_file)]}}]}}})
    tekton.controller.reconcile(tekton.get("PipelineRun", "pr"))
    tekton.controller.reconcile(tekton.get("TaskRun", "pr-hang"))
    pid = _started_pid(pid_file)
    tekton.cluster.delete(API, "PipelineRun", NS, "pr")  # its TaskRun goes with it
    assert tekton.cluster.get(API, "TaskRun", NS, "pr-hang") is None
    assert _gone(pid), "the deleted PipelineRun's step is still running"


def test_a_job_whose_run_is_gone_is_stopped_even_unnoticed(tmp_path: Path) -> None:
    """A backend without deletion notices: the next job started prunes the jobs of runs that
    no longer exist (a run recreated under the same name is another run: another uid)."""
    tekton = Tekton(run_steps=True)
    tekton.cluster._listeners.clear()  # as a backend that tells no one of deletions
    pid_file = tmp_path / "step.pid"
    tekton.cluster.apply(_task_run("tr", {"taskSpec": {"steps": [_hanging_step(pid_file)]}}))
    tekton.controller.reconcile(tekton.get("TaskRun", "tr"))
    pid = _started_pid(pid_file)
    tekton.cluster.delete(API, "TaskRun", NS, "tr")
    tekton.cluster.apply(_task_run("tr", {"taskSpec": {"steps": [
        {"name": "quick", "script": "true"}]}}))
    tekton.settle()
    assert _gone(pid), "the deleted TaskRun's step is still running"
    assert _succeeded(tekton.get("TaskRun", "tr"))["status"] == "True"
