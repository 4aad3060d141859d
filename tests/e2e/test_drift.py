"""Drift: an object edited by another manager (kubectl edit) is reported and healed, or only
reported when the owner chose detect-only."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler.apply.policy import SELF_HEAL
from reconciler.model.conditions import find_condition
from tests.conftest import GitRepo
from tests.e2e.test_kustomization import World

DEPLOY = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  template:
    spec:
      containers:
        - name: app
          image: app:1
"""


def _edit(obj: dict[str, Any]) -> None:
    obj["spec"]["replicas"] = 5
    obj["spec"]["template"]["spec"]["containers"][0]["image"] = "app:hotfix"


@pytest.mark.parametrize(("self_heal", "replicas", "reason", "drifted_now"), [
    (True, 2, "DriftCorrected", "False"), (False, 5, "DriftDetected", "True"),
], ids=["self-heal", "detect-only"])
def test_edit_by_another_manager(make_repo: Callable[..., GitRepo], tmp_path: Path,
                                 self_heal: bool, replicas: int, reason: str,
                                 drifted_now: str) -> None:
    repo = make_repo("config", {"deploy/web.yaml": DEPLOY})
    world = World(repo, tmp_path, annotations={} if self_heal else {SELF_HEAL: "false"})
    ks = world.run()
    drifted = find_condition(ks["status"]["conditions"], "Drifted")
    assert drifted is not None and drifted["status"] == "False"

    world.backend.edit("apps/v1", "Deployment", "apps", "web", _edit)
    world.env.advance(600)  # the next interval
    ks = world.run()
    live = world.backend.get("apps/v1", "Deployment", "apps", "web")
    assert live is not None and live["spec"]["replicas"] == replicas
    # Healed drift leaves an event; drift that stays (detect-only) also stays a condition.
    drifted = find_condition(ks["status"]["conditions"], "Drifted")
    assert drifted is not None and drifted["status"] == drifted_now
    if drifted_now == "True":
        assert drifted["reason"] == reason and "Deployment/apps/web" in drifted["message"]
    events = [e for e in world.backend.events() if e["reason"] == reason]
    assert events and "Deployment/apps/web" in events[0]["message"]
    if self_heal:
        managers = {e["manager"] for e in live["metadata"]["managedFields"]}
        assert managers == {"reconciler"}
        assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "app:1"


def test_conflict_on_an_object_we_never_applied_is_reported(
        make_repo: Callable[..., GitRepo], tmp_path: Path) -> None:
    repo = make_repo("config", {"deploy/web.yaml": DEPLOY})
    world = World(repo, tmp_path)
    world.backend.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}})
    world.backend.apply({"apiVersion": "apps/v1", "kind": "Deployment",
                         "metadata": {"name": "web", "namespace": "apps"},
                         "spec": {"replicas": 9}}, "helm")
    ks = world.run()
    ready = find_condition(ks["status"]["conditions"], "Ready")
    assert ready is not None and ready["reason"] == "ReconciliationFailed"
    assert ".spec.replicas (owned by helm)" in ready["message"]
