"""A Kustomization that waits for health, over a real Git repository of manifests, on the
simulated cluster whose built-in controllers roll workloads out on the virtual clock: nothing
writes status by hand, so `Ready` follows the simulated rollout, and a failed one ends in
HealthCheckFailed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler.apply.health import Health, assess
from reconciler.engine.runner import run_until_settled
from reconciler.engine.tracking import TrackingBackend
from reconciler.engine.wiring import product_controllers
from reconciler.model.conditions import find_condition
from reconciler.settings import SourceSettings
from simulator.kube_common import parse_time
from tests.conftest import GitRepo
from tests.e2e.test_kustomization import KS_API, World


class TrackedWorld(World):
    """The Kustomization world wired as `reconciler simulate` wires it: product controllers read
    through a TrackingBackend, so an object is reconciled again only when something it read
    changed or its requeue is due (as a watch-driven controller would be), not every round.
    """

    def __init__(self, repo: GitRepo, tmp: Path, **spec: Any) -> None:
        super().__init__(repo, tmp, **spec)
        self.tracker = TrackingBackend(self.backend)
        sources = SourceSettings(artifact_root=tmp / "artifacts", workdir=tmp / "git",
                                 allow_local_urls=True)  # the test repos are local
        self.product = product_controllers(self.tracker, self.env.clock, sources)
        self.controllers = [*self.product, *self.env.controllers]

    def run(self, seconds: float = 120) -> dict[str, Any]:
        run_until_settled(self.env, self.controllers, lambda: False, budget_seconds=seconds,
                          tracker=self.tracker, tracked=self.product)
        ks = self.backend.get(KS_API, "Kustomization", "default", "app")
        assert ks is not None
        return ks


def _manifest(kind: str, api: str, spec: str, annotations: dict[str, str] | None = None,
              name: str = "web") -> str:
    notes = "".join(f"    {k}: \"{v}\"\n" for k, v in (annotations or {}).items())
    return (f"apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: {name}\n"
            + (f"  annotations:\n{notes}" if notes else "") + spec)


TEMPLATE = """  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: app
          image: app:1
"""
SELECTOR = "  selector:\n    matchLabels: {app: web}\n"


def _deployment(annotations: dict[str, str] | None = None, extra: str = "") -> str:
    return _manifest("Deployment", "apps/v1", "spec:\n  replicas: 2\n" + extra + SELECTOR
                     + TEMPLATE, annotations)


def _condition(ks: dict[str, Any], kind: str) -> dict[str, Any]:
    cond = find_condition(ks["status"]["conditions"], kind)
    assert cond is not None, ks["status"]
    return dict(cond)


def test_ready_only_after_the_simulated_rollout(make_repo: Callable[..., GitRepo],
                                                tmp_path: Path) -> None:
    repo = make_repo("config", {"deploy/web.yaml": _deployment(
        {"simulator.reconciler.dev/duration": "30"})})
    world = World(repo, tmp_path, wait=True, timeout="2m")
    ks = world.run(10)
    ready = _condition(ks, "Ready")
    assert (ready["status"], ready["reason"]) == ("Unknown", "Progressing")
    assert "Deployment.apps/apps/web: Progressing" in ready["message"]
    assert _condition(ks, "Healthy")["status"] == "Unknown"

    ks = world.run(60)
    ready = _condition(ks, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "ReconciliationSucceeded"), ready
    assert _condition(ks, "Healthy")["status"] == "True"
    live = world.backend.get("apps/v1", "Deployment", "apps", "web")
    assert live is not None and assess(live).status == Health.HEALTHY
    assert live["status"]["availableReplicas"] == 2
    created = parse_time(live["metadata"]["creationTimestamp"])
    became_ready = parse_time(ready["lastTransitionTime"])
    assert created is not None and became_ready is not None
    assert became_ready - created >= 30


def test_failed_rollout_ends_in_health_check_failed(make_repo: Callable[..., GitRepo],
                                                    tmp_path: Path) -> None:
    repo = make_repo("config", {"deploy/web.yaml": _deployment(
        {"simulator.reconciler.dev/outcome": "Failed"}, "  progressDeadlineSeconds: 20\n")})
    world = TrackedWorld(repo, tmp_path, wait=True, timeout="1m")
    ks = world.run(120)
    ready = _condition(ks, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "HealthCheckFailed"), ready
    assert "Deployment.apps/apps/web: Degraded" in ready["message"]
    assert "exceeded its progress deadline" in ready["message"]
    healthy = _condition(ks, "Healthy")
    assert (healthy["status"], healthy["reason"]) == ("False", "HealthCheckFailed")
    live = world.backend.get("apps/v1", "Deployment", "apps", "web")
    assert live is not None
    progressing = find_condition(live["status"]["conditions"], "Progressing")
    assert progressing is not None and progressing["reason"] == "ProgressDeadlineExceeded"


FAILED = {"simulator.reconciler.dev/outcome": "Failed"}
KINDS = [
    ("statefulset", _manifest("StatefulSet", "apps/v1", "spec:\n  replicas: 2\n"
                              "  serviceName: web\n" + SELECTOR + TEMPLATE), "True"),
    ("daemonset", _manifest("DaemonSet", "apps/v1", "spec:\n" + SELECTOR + TEMPLATE), "True"),
    ("job", _manifest("Job", "batch/v1", "spec:\n" + TEMPLATE.replace(
        "    spec:\n", "    spec:\n      restartPolicy: Never\n")), "True"),
    ("failed job", _manifest("Job", "batch/v1", "spec:\n" + TEMPLATE.replace(
        "    spec:\n", "    spec:\n      restartPolicy: Never\n"), FAILED), "False"),
    ("load balancer", _manifest("Service", "v1", "spec:\n  type: LoadBalancer\n"
                                "  ports: [{port: 80}]\n"), "True"),
    ("volume claim", _manifest("PersistentVolumeClaim", "v1", "spec:\n  accessModes: "
                               "[ReadWriteOnce]\n  resources: {requests: {storage: 1Gi}}\n"),
     "True"),
    ("unbound volume claim", _manifest("PersistentVolumeClaim", "v1", "spec:\n  accessModes: "
                                       "[ReadWriteOnce]\n  resources: {requests: {storage: "
                                       "1Gi}}\n", FAILED), "False"),
    ("crash looping pod", _manifest("Pod", "v1", TEMPLATE.replace("  template:\n", "").replace(
        "\n    ", "\n").replace("  metadata:\n  labels: {app: web}\n", "").replace(
        "  spec:\n", "spec:\n"), FAILED), "False"),
    ("paused deployment", _deployment(extra="  paused: true\n"), "True"),
]


@pytest.mark.parametrize(("manifest", "ready"), [(m, r) for _, m, r in KINDS],
                         ids=[i for i, _, _ in KINDS])
def test_wait_follows_each_kind(make_repo: Callable[..., GitRepo], tmp_path: Path,
                                manifest: str, ready: str) -> None:
    repo = make_repo("config", {"deploy/web.yaml": manifest})
    ks = TrackedWorld(repo, tmp_path, wait=True, timeout="1m").run(120)
    cond = _condition(ks, "Ready")
    assert cond["status"] == ready, cond
    if ready == "False":
        assert cond["reason"] == "HealthCheckFailed"


def test_next_wave_waits_for_the_simulated_rollout(make_repo: Callable[..., GitRepo],
                                                   tmp_path: Path) -> None:
    wave = {"reconciler.dev/sync-wave": "0", "simulator.reconciler.dev/duration": "40"}
    repo = make_repo("config", {
        "deploy/db.yaml": _deployment(wave),
        "deploy/app.yaml": _manifest("ConfigMap", "v1", "data: {ready: \"yes\"}\n",
                                     {"reconciler.dev/sync-wave": "1"}, name="after-db"),
    })
    world = World(repo, tmp_path)
    world.run(20)
    assert world.names() == []
    ks = world.run(60)
    assert world.names() == ["after-db"]
    assert _condition(ks, "Ready")["status"] == "True"


def test_health_checks_name_a_workload_outside_the_wait(make_repo: Callable[..., GitRepo],
                                                        tmp_path: Path) -> None:
    repo = make_repo("config", {"deploy/web.yaml": _deployment(
        {"simulator.reconciler.dev/duration": "30"})})
    check = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": "apps"}
    world = World(repo, tmp_path, healthChecks=[check], timeout="2m")
    assert _condition(world.run(10), "Ready")["status"] == "Unknown"
    assert _condition(world.run(60), "Ready")["status"] == "True"


def test_health_check_failed_stands_until_retry_interval(make_repo: Callable[..., GitRepo],
                                                        tmp_path: Path) -> None:
    # The untracked World reconciles the Kustomization every round: the failure must still hold
    # until retryInterval, and only then does a new wait begin.
    repo = make_repo("config", {"deploy/web.yaml": _deployment(
        {"simulator.reconciler.dev/outcome": "Failed"}, "  progressDeadlineSeconds: 20\n")})
    world = World(repo, tmp_path, wait=True, timeout="1m", retryInterval="5m")
    ks = world.run(90)
    failed = _condition(ks, "Ready")
    assert (failed["status"], failed["reason"]) == ("False", "HealthCheckFailed"), failed
    ks = world.run(120)
    still = _condition(ks, "Ready")
    assert (still["reason"], still["lastTransitionTime"]) == (
        "HealthCheckFailed", failed["lastTransitionTime"])
    ks = world.run(240)
    assert _condition(ks, "Ready")["lastTransitionTime"] != failed["lastTransitionTime"]
