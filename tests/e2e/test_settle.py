"""`simulate` settles only when nothing is in flight within its budget.

Every Workload Ready is not enough: a build still running in the simulated kpack, a rollout, a
Kustomization waiting for health, or a failed reconcile waiting for its retry keep the run going;
periodic re-checks (Git polls, a Kustomization's interval, a CronJob's next schedule) do not.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler.loader import load_paths
from reconciler.settings import SimulateSettings
from reconciler.simulation import simulate
from tests.conftest import EXAMPLES, CliResult, GitRepo
from tests.manifests import git_kustomization

PAVED = EXAMPLES / "paved-path"
IMAGE_HEALTH = """  imagePath: .status.latestImage
  healthRule:
    singleConditionType: Ready
"""


def _outputs(workload: dict[str, Any], resource: str) -> dict[str, str]:
    entry = next(r for r in workload["status"]["resources"] if r["name"] == resource)
    return {o["name"]: o["preview"].strip() for o in entry.get("outputs", [])}


def _find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


@pytest.fixture
def app_repo(make_repo: Callable[..., GitRepo]) -> GitRepo:
    files = {p.name: p.read_text() for p in (PAVED / "developer" / "app").iterdir()}
    return make_repo("band-service", files)


@pytest.mark.parametrize("health_rule", [False, True], ids=["no-health-rule", "health-rule"])
def test_after_a_commit_the_run_ends_on_the_new_image(
    app_repo: GitRepo, cli: Callable[..., CliResult], tmp_path: Path, health_rule: bool
) -> None:
    paved = tmp_path / "paved-path"
    shutil.copytree(PAVED, paved)
    templates = paved / "platform" / "templates.yaml"
    text = templates.read_text()
    assert IMAGE_HEALTH in text
    if not health_rule:
        templates.write_text(text.replace(IMAGE_HEALTH, "  imagePath: .status.latestImage\n"))
    state = tmp_path / "state.json"
    env = {"APP_REPO_URL": app_repo.url}

    first = cli("simulate", str(paved), "-o", "json", "--state", str(state), env=env)
    assert first.code == 0, first.stderr + first.stdout
    image1 = _outputs(first.json()["workloads"][0], "image-builder")["image"]

    app_repo.commit({"VERSION": "1.1.0\n"}, "release 1.1.0")
    sha2 = app_repo.git("rev-parse", "HEAD")
    second = cli("simulate", str(paved), "-o", "json", "--state", str(state), env=env)
    assert second.code == 0, second.stderr + second.stdout
    doc = second.json()
    workload = doc["workloads"][0]
    assert _outputs(workload, "source-provider")["revision"] == f"main@sha1:{sha2}"
    image = _find(doc["objects"], "Image", "band-service")
    assert image["status"]["latestImage"] != image1
    assert _outputs(workload, "image-builder")["image"] == image["status"]["latestImage"]
    service = _find(doc["objects"], "Service", "band-service")
    assert service["spec"]["template"]["spec"]["containers"][0]["image"] == (
        image["status"]["latestImage"])
    # The build takes virtual time: the run waited for it rather than stopping at once.
    assert doc["summary"]["virtualSeconds"] > 0
    assert doc["summary"]["reason"] == "settled"


CRONJOB = """\
apiVersion: batch/v1
kind: CronJob
metadata:
  name: nightly
  namespace: default
spec:
  schedule: "*/5 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
            - name: main
              image: busybox
"""


def test_a_periodic_schedule_does_not_keep_the_run_from_settling(tmp_path: Path) -> None:
    (tmp_path / "cron.yaml").write_text(CRONJOB)
    result = simulate(load_paths([tmp_path], {}),
                      settings=SimulateSettings(budget_seconds=3600))
    assert result.report.settled, result.report
    assert result.report.virtual_seconds == 0


DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: nginx
"""


@pytest.mark.parametrize("wait", [False, True], ids=["apply-only", "wait-for-health"])
def test_a_kustomization_run_settles_once_applied_and_healthy(
    make_repo: Callable[..., GitRepo], tmp_path: Path, wait: bool
) -> None:
    repo = make_repo("config", {"deploy/web.yaml": DEPLOYMENT})
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "ks.yaml").write_text(git_kustomization(repo.url, wait=wait))
    result = simulate(load_paths([folder], {}), settings=SimulateSettings(budget_seconds=3600))
    assert result.report.settled, result.report
    # Neither the Git poll nor the Kustomization's interval kept the run going.
    assert result.report.virtual_seconds < 600
    ks = _find(result.objects, "Kustomization", "app")
    ready = next(c for c in ks["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True", ks["status"]
    deployment = _find(result.objects, "Deployment", "web")
    # The simulated rollout finished before the run ended, whether or not anything waited.
    assert deployment["status"].get("readyReplicas") == 1, deployment["status"]
