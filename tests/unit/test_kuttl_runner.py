"""Running kuttl tests in the simulator: steps, assertions, errors, status, TestStep, reports."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from reconciler.kuttl import TestResult, discover, run_test, run_tests
from reconciler.kuttl.junit import junit_xml
from reconciler.kuttl.report import failure_details, result_line, summary_line
from tests.unit.kuttl_helpers import CONFIGMAP, GREETER_CHAIN, GREETER_WORKLOAD, write_tree

SETTINGS_BLUE = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  colour: blue
"""
SETTINGS_RED = SETTINGS_BLUE.replace("blue", "red")
ANY_BLUE = "apiVersion: v1\nkind: ConfigMap\ndata:\n  colour: blue\n"
GREETING = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: hello-greeting
data:
  greeting: hello hello
---
apiVersion: carto.run/v1alpha1
kind: Workload
metadata:
  name: hello
status:
  conditions:
    - type: SupplyChainReady
      status: "True"
    - type: ResourcesSubmitted
      status: "True"
    - type: ResourcesHealthy
      status: "True"
    - type: Ready
      status: "True"
"""
WIDGET_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets}
  versions: [{name: v1, served: true, storage: true}]
"""
WIDGET_WITH_STATUS = """
apiVersion: example.com/v1
kind: Widget
metadata:
  name: gadget
spec:
  size: 3
status:
  phase: Built
"""


def _run(tmp_path: Path, files: dict[str, str], timeout: float = 30) -> TestResult:
    write_tree(tmp_path / "group" / "case", files)
    (case,) = discover([tmp_path / "group" / "case"], timeout=timeout)
    return run_test(case)


@pytest.mark.parametrize(
    "files",
    [
        {"00-configmap.yaml": CONFIGMAP, "00-assert.yaml": SETTINGS_BLUE},
        {"00-configmap.yaml": CONFIGMAP, "00-assert.yaml": ANY_BLUE},
        {"00-configmap.yaml": CONFIGMAP, "00-errors.yaml": SETTINGS_RED},
        {"00-configmap.yaml": CONFIGMAP, "01-errors.yaml": ANY_BLUE.replace("blue", "red")},
        {"00-configmap.yaml": CONFIGMAP,
         "01-recolour.yaml": SETTINGS_RED, "01-assert.yaml": SETTINGS_RED},
        {"00-chain.yaml": GREETER_CHAIN, "01-workload.yaml": GREETER_WORKLOAD,
         "01-assert.yaml": GREETING},
        {"00-crd.yaml": WIDGET_CRD, "01-widget.yaml": WIDGET_WITH_STATUS,
         "01-assert.yaml": WIDGET_WITH_STATUS},
        {"00-configmap.yaml": CONFIGMAP,
         "01-delete.yaml": "apiVersion: kuttl.dev/v1beta1\nkind: TestStep\ndelete:\n"
                           "  - apiVersion: v1\n    kind: ConfigMap\n    name: settings\n",
         "01-errors.yaml": SETTINGS_BLUE},
        # The product's CRDs are installed with the cluster: a cluster-scoped assert, no apply.
        {"00-assert.yaml": "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
                           "metadata:\n  name: clustersupplychains.carto.run\n"
                           "spec:\n  scope: Cluster\n"},
    ],
    ids=["named-assert", "nameless-assert", "errors-absent", "errors-nameless-absent",
         "second-step-updates", "supply-chain-stamps", "status-applied", "teststep-delete",
         "cluster-scoped-assert"],
)
def test_passing_tests(tmp_path: Path, files: dict[str, str]) -> None:
    result = _run(tmp_path, files)
    assert result.passed, failure_details(result.failure) if result.failure else ""
    assert result.namespace == "kuttl-test-group-case"


def test_assert_that_never_matches_fails_with_readable_differences(tmp_path: Path) -> None:
    result = _run(tmp_path, {"00-configmap.yaml": CONFIGMAP, "00-assert.yaml": SETTINGS_RED},
                  timeout=10)
    assert result.failure is not None
    assert result.failure.step == "00-configmap"
    assert "not true after" in result.failure.summary
    details = failure_details(result.failure)
    assert 'data.colour: expected "red", got "blue"' in details
    assert "ConfigMap settings (00-assert.yaml:1): does not match" in details
    assert "--- expected (00-assert.yaml:1)" in details
    assert "--- live ConfigMap settings" in details
    assert result_line(result).startswith("FAIL group/case (")


def test_missing_object_fails_and_shows_the_owners_conditions(tmp_path: Path) -> None:
    workload = GREETER_WORKLOAD.replace("greeter", "nobody")
    result = _run(tmp_path, {"00-chain.yaml": GREETER_CHAIN, "01-workload.yaml": workload,
                             "01-assert.yaml": GREETING})
    assert result.failure is not None
    details = failure_details(result.failure)
    assert "ConfigMap hello-greeting (01-assert.yaml:1): not found in namespace" in details
    assert "conditions in the test namespace:" in details
    assert "Workload hello: Ready=False SupplyChainNotFound" in details


def test_errors_object_that_exists_fails_the_step(tmp_path: Path) -> None:
    result = _run(tmp_path, {"00-configmap.yaml": CONFIGMAP, "00-errors.yaml": ANY_BLUE})
    assert result.failure is not None
    assert "any ConfigMap (00-errors.yaml:1): exists and matches the errors file" in \
        failure_details(result.failure)


def test_timeout_is_virtual_time(tmp_path: Path) -> None:
    """A chain that never becomes ready waits out the whole timeout, in no real time."""
    result = _run(tmp_path, {"00-configmap.yaml": CONFIGMAP, "00-assert.yaml": SETTINGS_RED},
                  timeout=3600)
    assert result.failure is not None
    assert result.virtual_seconds <= 3600


def test_test_assert_timeout_applies_to_its_step(tmp_path: Path) -> None:
    result = _run(tmp_path, {
        "00-chain.yaml": GREETER_CHAIN,
        "00-workload.yaml": GREETER_WORKLOAD.replace("greeter", "nobody"),
        "00-assert.yaml": GREETING + "---\napiVersion: kuttl.dev/v1beta1\nkind: TestAssert\n"
                                     "timeout: 2\n"})
    assert result.failure is not None
    assert "(timeout 2s;" in result.failure.summary


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"00-bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n"},
         "00-bad.yaml:4"),
        ({"00-widget.yaml": "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n"},
         'rejected by the cluster: no matches for kind "Widget"'),
    ],
    ids=["validation", "unserved-kind"],
)
def test_unusable_step_fails_that_test_with_a_message(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    result = _run(tmp_path, files)
    assert result.failure is not None
    assert message in result.failure.summary


def test_suite_runs_each_test_in_a_fresh_cluster(tmp_path: Path) -> None:
    """The second test asserts the first test's ConfigMap is absent: nothing leaks."""
    write_tree(tmp_path, {
        "kuttl-test.yaml": "apiVersion: kuttl.dev/v1beta1\nkind: TestSuite\ntestDirs: [suite]\n"
                           "timeout: 5\n",
        "suite/a/00-configmap.yaml": CONFIGMAP,
        "suite/a/00-assert.yaml": SETTINGS_BLUE,
        "suite/b/00-other.yaml": SETTINGS_RED.replace("settings", "other"),
        "suite/b/00-errors.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                                  "  name: settings\n  namespace: kuttl-test-suite-a\n",
    })
    seen: list[str] = []
    results = run_tests(discover([tmp_path]), on_result=lambda r: seen.append(r.name))
    assert seen == ["suite/a", "suite/b"]
    assert all(r.passed for r in results), [failure_details(r.failure) for r in results
                                            if r.failure]
    assert summary_line(results) == "2 passed, 0 failed"


def test_junit_xml_has_a_testcase_per_test_and_failures(tmp_path: Path) -> None:
    write_tree(tmp_path, {
        "g/ok/00-configmap.yaml": CONFIGMAP, "g/ok/00-assert.yaml": SETTINGS_BLUE,
        "g/bad/00-configmap.yaml": CONFIGMAP, "g/bad/00-assert.yaml": SETTINGS_RED,
    })
    results = run_tests(discover([tmp_path / "g"], timeout=1))
    suite = ET.fromstring(junit_xml(results))
    assert suite.tag == "testsuite"
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {"ok", "bad"}
    assert cases["bad"].get("classname") == "g"
    failure = cases["bad"].find("failure")
    assert failure is not None
    assert "data.colour" in (failure.text or "")
    assert cases["ok"].find("failure") is None
