"""`simulate` with a Tekton PipelineRun whose step really runs against the source: the
GitRepository's artifact (served by no server: `simulate` writes the in-cluster URL) is found in
the process's artifact store, unpacked, and the step's exit status decides the Runnable."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler.loader import load_paths
from reconciler.simulation import SimulationResult, simulate
from tests.conftest import GitRepo
from tests.manifests import source_tester_chain

CHAIN = """\
apiVersion: v1
kind: ServiceAccount
metadata: {name: tester}
---
apiVersion: tekton.dev/v1
kind: Task
metadata: {name: check}
spec:
  params: [{name: source-url}, {name: source-revision}]
  results: [{name: report}]
  steps:
    - name: test
      image: busybox
      script: |
        echo "testing $(params.source-revision)"
        grep -q "answer = 42" app.py || { echo "expected answer = 42 in app.py"; exit 1; }
        printf passed > $(results.report.path)
---
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: unit-tests}
spec:
  params: [{name: source-url}, {name: source-revision}]
  tasks:
    - name: test
      taskRef: {name: check}
      params:
        - {name: source-url, value: $(params.source-url)}
        - {name: source-revision, value: $(params.source-revision)}
  results: [{name: report, value: $(tasks.test.results.report)}]
---
apiVersion: carto.run/v1alpha1
kind: ClusterRunTemplate
metadata: {name: tekton-source-tester}
spec:
  outputs:
    url: spec.params[?(@.name=="source-url")].value
    revision: spec.params[?(@.name=="source-revision")].value
    report: status.results[?(@.name=="report")].value
  template:
    apiVersion: tekton.dev/v1
    kind: PipelineRun
    metadata: {generateName: $(runnable.metadata.name)$-}
    spec:
      pipelineRef: {name: unit-tests}
      params:
        - {name: source-url, value: $(runnable.spec.inputs.source-url)$}
        - {name: source-revision, value: $(runnable.spec.inputs.source-revision)$}
---
apiVersion: carto.run/v1alpha1
kind: ClusterSourceTemplate
metadata: {name: source}
spec:
  urlPath: status.artifact.url
  revisionPath: status.artifact.revision
  template:
    apiVersion: source.toolkit.fluxcd.io/v1
    kind: GitRepository
    metadata: {name: $(workload.metadata.name)$-source}
    spec:
      url: $(workload.spec.source.git.url)$
      interval: 1m
      ref: $(workload.spec.source.git.ref)$
---
""" + source_tester_chain("__URL__")


def _of(result: SimulationResult, kind: str) -> list[dict[str, Any]]:
    return [o for o in result.objects if o["kind"] == kind]


def _cond(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == type_)


def _run(tmp_path: Path, url: str) -> SimulationResult:
    path = tmp_path / "chain.yaml"
    path.write_text(CHAIN.replace("__URL__", url))
    return simulate(load_paths([path]))


@pytest.mark.parametrize(("app", "passes"), [("answer = 42\n", True), ("answer = 41\n", False)],
                         ids=["passing", "failing"])
def test_the_step_runs_on_the_workloads_source_and_decides(
    tmp_path: Path, make_repo: Callable[..., GitRepo], serve_repo: Callable[[GitRepo], str],
    app: str, passes: bool, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RECONCILER_SIMULATOR_RUN_STEPS", raising=False)
    repo = make_repo("app", {"app.py": app})
    revision = repo.git("rev-parse", "HEAD")
    result = _run(tmp_path, serve_repo(repo))
    task_run = next(t for t in _of(result, "TaskRun")
                    if t["metadata"]["labels"]["tekton.dev/pipelineTask"] == "test")
    logs = json.loads(task_run["metadata"]["annotations"]["simulator.reconciler.dev/logs"])
    assert logs["test"].startswith(f"testing main@sha1:{revision}\n")
    runnable = next(r for r in _of(result, "Runnable") if r["metadata"]["name"] == "app-tests")
    ready = _cond(runnable, "Ready")
    if passes:
        assert result.ready, result.summary
        assert runnable["status"]["outputs"]["report"] == "passed"
        assert ready["status"] == "True"
    else:
        assert not result.ready
        assert logs["test"].endswith("expected answer = 42 in app.py\n")
        assert ready["status"] == "False"
        assert 'step "test" in task "test" exited with code 1' in ready["message"]
        assert "outputs" not in runnable["status"]


def test_with_steps_off_nothing_runs_and_the_annotations_decide(
    tmp_path: Path, make_repo: Callable[..., GitRepo], serve_repo: Callable[[GitRepo], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RECONCILER_SIMULATOR_RUN_STEPS", "false")
    repo = make_repo("app", {"app.py": "answer = 41\n"})  # the step would fail
    result = _run(tmp_path, serve_repo(repo))
    assert result.ready, result.summary
    assert not _of(result, "TaskRun"), "a PipelineRun without real steps creates no TaskRuns"
    run = _of(result, "PipelineRun")[0]
    assert _cond(run, "Succeeded")["status"] == "True"
