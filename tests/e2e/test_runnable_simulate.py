"""Runnables end to end in the simulator: a supply chain testing source with a Tekton
PipelineRun, typed inputs and `$(selected)$` as Cartographer's suite uses them, and the CLI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.loader import load_paths
from reconciler.simulation import SimulationResult, simulate
from tests.conftest import CliResult
from tests.manifests import source_tester_chain

# The `Test` kind Cartographer's suite stamps (test.run/v1alpha1), declared here so this test
# needs nothing beside the repository.
TEST_CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: tests.test.run
spec:
  group: test.run
  names: {kind: Test, listKind: TestList, plural: tests, singular: test}
  scope: Namespaced
  versions:
    - name: v1alpha1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
      subresources: {status: {}}
"""

SOURCE_TESTER = """\
apiVersion: v1
kind: ServiceAccount
metadata: {name: tester}
---
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: unit-tests}
spec:
  params: [{name: source-url}, {name: source-revision}]
  tasks: [{name: test, taskRef: {name: go-test, kind: ClusterTask}}]
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
    metadata:
      generateName: $(runnable.metadata.name)$-
      annotations:
        simulator.reconciler.dev/results: '{"report": "ok"}'
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
  urlPath: data.url
  revisionPath: data.revision
  template:
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: $(workload.metadata.name)$-source}
    data: {url: $(workload.spec.source.git.url)$, revision: "abc123"}
---
""" + source_tester_chain("https://example.com/app.git")


def _objects(result: SimulationResult, kind: str) -> list[dict[str, Any]]:
    return [o for o in result.objects if o["kind"] == kind]


def _one(result: SimulationResult, kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in _objects(result, kind) if name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def _cond(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == type_)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "input.yaml"
    path.write_text(text)
    return path


def test_supply_chain_waits_for_the_pipeline_run_then_passes_its_outputs_on(
    tmp_path: Path,
) -> None:
    result = simulate(load_paths([_write(tmp_path, SOURCE_TESTER)]))
    assert result.ready, result.summary
    run = _one(result, "PipelineRun")
    assert run["metadata"]["name"].startswith("app-tests-")
    assert run["metadata"]["labels"]["carto.run/runnable-name"] == "app-tests"
    assert _cond(run, "Succeeded")["status"] == "True"
    runnable = _one(result, "Runnable", "app-tests")
    assert runnable["status"]["outputs"] == {
        "url": "https://example.com/app.git", "revision": "abc123", "report": "ok"}
    assert _cond(runnable, "Ready")["status"] == "True"
    # The workload only became Ready once the PipelineRun had run its virtual 20 seconds.
    assert result.report.virtual_seconds >= 20


def test_a_failing_run_leaves_the_workload_waiting_with_the_reason(tmp_path: Path) -> None:
    failing = SOURCE_TESTER.replace(
        "simulator.reconciler.dev/results: '{\"report\": \"ok\"}'",
        "simulator.reconciler.dev/outcome: Failed")
    result = simulate(load_paths([_write(tmp_path, failing)]))
    assert not result.ready
    runnable = _one(result, "Runnable", "app-tests")
    ready = _cond(runnable, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "SucceededCondition")
    assert "Failed" in ready["message"]
    assert "outputs" not in runnable["status"]


@pytest.mark.parametrize(
    ("runnable_spec", "template_spec", "selectable", "expected"),
    [
        (
            {"inputs": {"some-object": {"nested": "hi"}, "some-list": [{"val": "first"}],
                        "some-int": 3, "some-string": "silly"}},
            {"object": "$(runnable.spec.inputs.some-object)$",
             "list": "$(runnable.spec.inputs.some-list)$",
             "int": "$(runnable.spec.inputs.some-int)$",
             "string": "$(runnable.spec.inputs.some-string)$"},
            [],
            {"object": {"nested": "hi"}, "list": [{"val": "first"}], "int": 3,
             "string": "silly"},
        ),
        (
            {"inputs": {"url": "its-a-source-url"},
             "selector": {"resource": {"apiVersion": "test.run/v1alpha1", "kind": "Test"},
                          "matchingLabels": {"group": "dev", "stage": "production"}}},
            {"from-selected": "$(selected.spec.value.answer)$",
             "from-runnable": "$(runnable.spec.inputs.url)$"},
            [("testing", "polo-testing"), ("production", "polo-production")],
            {"from-selected": "polo-production", "from-runnable": "its-a-source-url"},
        ),
    ],
    ids=["typed-inputs", "multi-label-selector"],
)
def test_run_template_context(
    tmp_path: Path, runnable_spec: dict[str, Any], template_spec: dict[str, Any],
    selectable: list[tuple[str, str]], expected: dict[str, Any],
) -> None:
    docs: list[dict[str, Any]] = [
        {"apiVersion": "carto.run/v1alpha1", "kind": "ClusterRunTemplate",
         "metadata": {"name": "tpl"},
         "spec": {"template": {"apiVersion": "test.run/v1alpha1", "kind": "Test",
                               "metadata": {"generateName": "stamped-"},
                               "spec": {"value": template_spec}}}},
        {"apiVersion": "carto.run/v1alpha1", "kind": "Runnable", "metadata": {"name": "r"},
         "spec": {"runTemplateRef": {"name": "tpl"}, **runnable_spec}},
    ]
    docs += [{"apiVersion": "test.run/v1alpha1", "kind": "Test",
              "metadata": {"name": f"dummy-{stage}",
                           "labels": {"group": "dev", "stage": stage}},
              "spec": {"value": {"answer": answer}}} for stage, answer in selectable]
    path = _write(tmp_path, yaml.safe_dump_all(docs))
    crd = tmp_path / "crds" / "test.yaml"
    crd.parent.mkdir()
    crd.write_text(TEST_CRD)
    result = simulate(load_paths([crd, path]))
    stamped = [t for t in _objects(result, "Test")
               if t["metadata"]["name"].startswith("stamped-")]
    assert [t["spec"]["value"] for t in stamped] == [expected]
    assert _cond(_one(result, "Runnable"), "RunTemplateReady")["status"] == "True"


def test_cli_reports_the_runnable_and_its_run(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    out = cli("simulate", str(_write(tmp_path, SOURCE_TESTER)), "-o", "json")
    assert out.code == 0, out.stderr
    objects = out.json()["objects"]
    runnable = next(o for o in objects if o["kind"] == "Runnable")
    assert runnable["status"]["outputs"]["report"] == "ok"
    assert any(o["kind"] == "PipelineRun" for o in objects)
