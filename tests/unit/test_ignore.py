"""Ignore rules (Argo CD's ignoreDifferences): pointers, jq paths, managers; diff and apply."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.diff.changeset import ChangeAction, plan_object
from reconciler.diff.ignore import IgnoreRule, IgnoreRuleError, ignored_paths, respect

DESIRED: dict[str, Any] = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "prod", "annotations": {"a/b": "desired"}},
    "spec": {"replicas": 1, "template": {"spec": {"containers": [
        {"name": "app", "image": "app:1"}, {"name": "sidecar", "image": "proxy:1"}]}}},
}
LIVE: dict[str, Any] = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "prod", "annotations": {"a/b": "live"},
                 "managedFields": [{"manager": "hpa", "operation": "Update", "fieldsV1": {
                     "f:spec": {"f:replicas": {}}}}]},
    "spec": {"replicas": 5, "template": {"spec": {"containers": [
        {"name": "app", "image": "app:1"}, {"name": "sidecar", "image": "proxy:2"}]}}},
}

RULES = [
    ("json pointer", {"jsonPointers": ["/spec/replicas", "/spec/template/spec/containers/1/image",
                                       "/metadata/annotations/a~1b"]}),
    ("jq paths", {"jqPathExpressions": [
        ".spec.replicas", '.spec.template.spec.containers[] | select(.name == "sidecar") | .image',
        '.metadata.annotations["a/b"]']}),
    ("managers plus jq", {"managedFieldsManagers": ["hpa"], "jqPathExpressions": [
        ".spec.template.spec.containers[1].image", '.metadata.annotations."a/b"']}),
]


@pytest.mark.parametrize("raw", [r[1] for r in RULES], ids=[r[0] for r in RULES])
def test_ignored_fields_do_not_read_as_drift(raw: dict[str, Any]) -> None:
    assert plan_object(DESIRED, LIVE).action is ChangeAction.CONFIGURED
    rule = IgnoreRule.parse({"kind": "Deployment", **raw})
    assert plan_object(DESIRED, LIVE, [rule]).action is ChangeAction.UNCHANGED


@pytest.mark.parametrize("raw", [r[1] for r in RULES], ids=[r[0] for r in RULES])
def test_apply_carries_live_values_of_ignored_fields(raw: dict[str, Any]) -> None:
    rule = IgnoreRule.parse(raw)
    body = respect(DESIRED, LIVE, ignored_paths([rule], DESIRED, LIVE))
    assert body["spec"]["replicas"] == 5
    assert body["spec"]["template"]["spec"]["containers"][1]["image"] == "proxy:2"
    assert body["metadata"]["annotations"]["a/b"] == "live"
    assert DESIRED["spec"]["replicas"] == 1  # the input is not changed


@pytest.mark.parametrize(("selector", "matches"), [
    ({"kind": "Deployment"}, True), ({"group": "apps", "kind": "Deployment"}, True),
    ({"group": "", "kind": "Deployment", "name": "web"}, True), ({"kind": "StatefulSet"}, False),
    ({"name": "w*"}, True), ({"namespace": "dev"}, False), ({"namespace": "pr*"}, True),
])
def test_rule_selection(selector: dict[str, str], matches: bool) -> None:
    rule = IgnoreRule.parse({**selector, "jsonPointers": ["/spec/replicas"]})
    assert bool(ignored_paths([rule], DESIRED, LIVE)) is matches


@pytest.mark.parametrize(("raw", "message"), [
    ({"jsonPointers": ["spec/replicas"]}, "must start with '/'"),
    ({"jqPathExpressions": [".spec | length"]}, "cannot read"),
    ({"jqPathExpressions": ["spec"]}, "must start with '.'"),
    ({"jsonPointer": ["/x"]}, "unknown field"),
])
def test_bad_rules_say_what_is_wrong(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(IgnoreRuleError, match=message):
        IgnoreRule.parse(raw, "Kustomization/x: spec.ignoreDifferences[0]")
