"""Normalization and left-scoped comparison: what must never read as drift, and what must."""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

import pytest

from reconciler.diff.changeset import ChangeAction, plan_object
from reconciler.diff.compare import changed_paths, in_sync
from reconciler.diff.normalize import LAST_APPLIED, normalize
from reconciler.diff.quantity import parse_quantity


def _deploy(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"}, "spec": spec}


def _live(desired: dict[str, Any], **extra_meta: Any) -> dict[str, Any]:
    live = {**desired, "metadata": {**desired["metadata"], **extra_meta}}
    live["status"] = {"replicas": 1}
    return live


IN_SYNC = [
    ("server metadata", _deploy(replicas=1),
     _live(_deploy(replicas=1), uid="u", resourceVersion="7", generation=3,
           creationTimestamp="2024-01-01T00:00:00Z", managedFields=[{"manager": "x"}])),
    ("status is ignored", _deploy(replicas=1), {**_deploy(replicas=1), "status": {"x": 1}}),
    ("server defaults", _deploy(replicas=1),
     _deploy(replicas=1, strategy={"type": "RollingUpdate"}, revisionHistoryLimit=10)),
    ("cpu 1000m vs 1", _deploy(template={"spec": {"containers": [
        {"name": "a", "resources": {"limits": {"cpu": "1000m"}}}]}}),
     _deploy(template={"spec": {"containers": [
         {"name": "a", "resources": {"limits": {"cpu": "1"}}, "imagePullPolicy": "Always"}]}})),
    ("memory 1Gi vs 1024Mi", _deploy(template={"spec": {"containers": [
        {"name": "a", "resources": {"requests": {"memory": "1024Mi"}}}]}}),
     _deploy(template={"spec": {"containers": [
         {"name": "a", "resources": {"requests": {"memory": "1Gi"}}}]}})),
    ("integer cpu vs string", _deploy(template={"spec": {"containers": [
        {"name": "a", "resources": {"limits": {"cpu": 2}}}]}}),
     _deploy(template={"spec": {"containers": [
         {"name": "a", "resources": {"limits": {"cpu": "2"}}}]}})),
    ("Secret stringData vs data",
     {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"},
      "stringData": {"password": "hunter2"}},
     {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"},
      "data": {"password": base64.b64encode(b"hunter2").decode()}, "type": "Opaque"}),
    ("last-applied annotation in desired",
     {**_deploy(replicas=1), "metadata": {"name": "web", "namespace": "default",
                                          "annotations": {LAST_APPLIED: "{}"}}},
     _deploy(replicas=1)),
    ("empty declared map", _deploy(replicas=1, selector={}), _deploy(replicas=1)),
]

DRIFT = [
    ("replicas", _deploy(replicas=2), _deploy(replicas=1), ["spec.replicas"]),
    ("cpu 500m vs 1", _deploy(template={"spec": {"containers": [
        {"name": "a", "resources": {"limits": {"cpu": "500m"}}}]}}),
     _deploy(template={"spec": {"containers": [
         {"name": "a", "resources": {"limits": {"cpu": "1"}}}]}}),
     ["spec.template.spec.containers[0].resources.limits.cpu"]),
    ("an env value is not a quantity", _deploy(template={"spec": {"containers": [
        {"name": "a", "env": [{"name": "X", "value": "1000m"}]}]}}),
     _deploy(template={"spec": {"containers": [
         {"name": "a", "env": [{"name": "X", "value": "1"}]}]}}),
     ["spec.template.spec.containers[0].env[0].value"]),
    ("true vs 1", _deploy(paused=True), _deploy(paused=1), ["spec.paused"]),
    ("missing label", {**_deploy(), "metadata": {"name": "web", "namespace": "default",
                                                  "labels": {"a": "b"}}},
     _deploy(), ["metadata.labels"]),
    ("Secret value", {"apiVersion": "v1", "kind": "Secret",
                      "metadata": {"name": "s", "namespace": "default"},
                      "stringData": {"password": "new"}},
     {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"},
      "data": {"password": base64.b64encode(b"old").decode()}}, ["data.password"]),
]


@pytest.mark.parametrize(("desired", "live"), [c[1:] for c in IN_SYNC], ids=[c[0] for c in IN_SYNC])
def test_equivalent_forms_are_in_sync(desired: dict[str, Any], live: dict[str, Any]) -> None:
    assert in_sync(desired, live)
    assert plan_object(desired, live).action is ChangeAction.UNCHANGED


@pytest.mark.parametrize(("desired", "live", "paths"), [c[1:] for c in DRIFT],
                         ids=[c[0] for c in DRIFT])
def test_real_differences_are_reported(desired: dict[str, Any], live: dict[str, Any],
                                       paths: list[str]) -> None:
    assert not in_sync(desired, live)
    assert changed_paths(desired, live) == paths
    assert plan_object(desired, live).action is ChangeAction.CONFIGURED


@pytest.mark.parametrize(("text", "value"), [
    ("1", "1"), ("1000m", "1"), ("500m", "0.5"), ("1Gi", str(2**30)), ("1024Mi", str(2**30)),
    ("1k", "1000"), ("1e3", "1000"), ("0.5", "0.5"), ("abc", None), ("1Xi", None),
])
def test_parse_quantity(text: str, value: str | None) -> None:
    assert parse_quantity(text) == (None if value is None else Decimal(value))


def test_normalize_drops_server_fields_and_keeps_the_original() -> None:
    obj = _live(_deploy(replicas=1), uid="u", managedFields=[],
                annotations={LAST_APPLIED: "{}", "keep": "me"})
    out = normalize(obj)
    assert "status" not in out and "uid" not in out["metadata"]
    assert out["metadata"]["annotations"] == {"keep": "me"}
    assert obj["metadata"]["uid"] == "u" and LAST_APPLIED in obj["metadata"]["annotations"]
