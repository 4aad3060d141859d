"""ClusterDeploymentTemplate completion (observedMatches / observedCompletion) and blueprint
readiness (TemplatesReady)."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.chains.deployment import deployment_outputs
from reconciler.chains.errors import ResourceError
from reconciler.engine.blueprints import blueprint_ready, templates_ready
from reconciler.model.conditions import FALSE, TRUE, UNKNOWN

DEPLOYMENT = {"url": "https://git.example/ops", "revision": "abc"}


def _stamped(value: dict[str, Any], status: dict[str, Any] | None = None,
             generation: int = 2) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "test.run/v1alpha1", "kind": "Test",
                           "metadata": {"name": "t", "generation": generation},
                           "spec": {"value": value}}
    if status is not None:
        obj["status"] = status
    return obj


MATCHES = {"observedMatches": [{"input": "spec.value.in", "output": "spec.value.out"}]}
COMPLETION = {"observedCompletion": {
    "succeeded": {"key": "status.conditions[?(@.type=='Ready')].status", "value": "True"},
    "failed": {"key": "status.conditions[?(@.type=='Ready')].status", "value": "False"}}}


def _ready(status: str, observed: int = 2) -> dict[str, Any]:
    return {"observedGeneration": observed, "conditions": [{"type": "Ready", "status": status}]}


@pytest.mark.parametrize(
    ("spec", "stamped", "reason", "status", "message"),
    [
        (MATCHES, _stamped({"in": "a", "out": "a"}), None, None, None),
        (MATCHES, _stamped({"in": "a", "out": "b"}), "ConditionNotMet", UNKNOWN,
         "resource [deployer] condition not met: input [spec.value.in] and output "
         "[spec.value.out] do not match: a != b"),
        (MATCHES, _stamped({"in": "a"}), "ConditionNotMet", UNKNOWN,
         "resource [deployer] condition not met: could not find value on output "
         "[spec.value.out]: jsonpath returned empty list: spec.value.out"),
        (COMPLETION, _stamped({}, _ready("True")), None, None, None),
        (COMPLETION, _stamped({}, _ready("False")), "FailedConditionMet", FALSE,
         "resource [deployer] failed condition met: deployment failure condition "
         "[status.conditions[?(@.type=='Ready')].status] was: False"),
        (COMPLETION, _stamped({}, _ready("Unknown")), "ConditionNotMet", UNKNOWN,
         "resource [deployer] condition not met: deployment success condition "
         "[status.conditions[?(@.type=='Ready')].status] was: Unknown, expected: True"),
        (COMPLETION, _stamped({}, _ready("True", observed=1)), "ConditionNotMet", UNKNOWN,
         "resource [deployer] condition not met: status.observedGeneration does not equal "
         "metadata.generation: 1 != 2"),
        (COMPLETION, _stamped({}, None), "TemplateStampFailure", FALSE,
         "resource [deployer] cannot satisfy observedCompletion without observedGeneration "
         "in object status"),
    ],
)
def test_deployment_outputs(spec: dict[str, Any], stamped: dict[str, Any], reason: str | None,
                            status: str | None, message: str | None) -> None:
    if reason is None:
        assert deployment_outputs("deployer", spec, stamped, DEPLOYMENT) == DEPLOYMENT
        return
    with pytest.raises(ResourceError) as exc:
        deployment_outputs("deployer", spec, stamped, DEPLOYMENT)
    assert (exc.value.reason, exc.value.status, str(exc.value)) == (reason, status, message)


def _blueprint(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "ClusterDelivery", "metadata": {"name": "d"},
            "spec": {"resources": list(resources)}}


EXISTING = {("ClusterSourceTemplate", "src"), ("ClusterDeploymentTemplate", "deploy")}


@pytest.mark.parametrize(
    ("resources", "status", "message"),
    [
        ([{"name": "a", "templateRef": {"kind": "ClusterSourceTemplate", "name": "src"}}],
         TRUE, ""),
        ([{"name": "a", "templateRef": {"kind": "ClusterSourceTemplate", "name": "nope"}},
          {"name": "b", "templateRef": {"kind": "ClusterDeploymentTemplate", "name": "x"}}],
         FALSE, "did not find the template of the resource(s) [a, b]"),
        ([{"name": "opts", "templateRef": {"kind": "ClusterSourceTemplate", "options": [
            {"name": "src", "selector": {}}, {"passThrough": "in", "selector": {}}]}}],
         TRUE, ""),
        ([{"name": "opts", "templateRef": {"kind": "ClusterSourceTemplate", "options": [
            {"name": "src", "selector": {}}, {"name": "gone", "selector": {}}]}}],
         FALSE, "did not find the template of the resource(s) [opts]"),
    ],
)
def test_templates_ready(resources: list[dict[str, Any]], status: str, message: str) -> None:
    cond = templates_ready(_blueprint(*resources), lambda k, n: (k, n) in EXISTING)
    assert (cond.type, cond.status, cond.message) == ("TemplatesReady", status, message)
    ready = blueprint_ready(cond)
    assert ready.type == "Ready" and ready.status == status
    assert ready.reason == ("Ready" if status == TRUE else "TemplatesNotFound")
