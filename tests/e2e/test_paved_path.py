"""The paved path as a user runs it: `reconciler simulate` over a real Git repository."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLES, CliResult, GitRepo

PAVED = EXAMPLES / "paved-path"


def _find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise AssertionError(f"{kind}/{name} not in the simulated cluster")


def _condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == type_)


def _outputs(workload: dict[str, Any], resource: str) -> dict[str, str]:
    entry = next(r for r in workload["status"]["resources"] if r["name"] == resource)
    return {o["name"]: o["preview"].strip() for o in entry.get("outputs", [])}


@pytest.fixture
def app_repo(make_repo: Callable[..., GitRepo]) -> GitRepo:
    files = {p.name: p.read_text() for p in (PAVED / "developer" / "app").iterdir()}
    return make_repo("band-service", files)


def test_paved_path_first_and_second_commit(
    app_repo: GitRepo, cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    env = {"APP_REPO_URL": app_repo.url}

    first = cli("simulate", str(PAVED), "-o", "json", "--state", str(state), env=env)
    assert first.code == 0, first.stderr + first.stdout
    doc = first.json()
    workload = doc["workloads"][0]
    assert _condition(workload, "Ready")["status"] == "True"
    assert workload["status"]["supplyChainRef"] == {"kind": "ClusterSupplyChain", "name": "web"}
    sha1 = app_repo.git("rev-parse", "HEAD")
    source = _outputs(workload, "source-provider")
    assert source["revision"] == f"main@sha1:{sha1}"
    image = _outputs(workload, "image-builder")["image"]
    assert image.startswith("registry.example.com/apps/band-service@sha256:")
    service = _find(doc["objects"], "Service", "band-service")
    assert service["apiVersion"] == "serving.knative.dev/v1"
    container = service["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == image
    assert container["env"] == [{"name": "SPRING_PROFILES_ACTIVE", "value": "prod"}]
    assert _condition(service, "Ready")["status"] == "True"
    assert service["metadata"]["labels"]["carto.run/workload-name"] == "band-service"
    assert service["metadata"]["ownerReferences"][0]["kind"] == "Workload"
    git_repo = _find(doc["objects"], "GitRepository", "band-service")
    assert git_repo["status"]["artifact"]["digest"].startswith("sha256:")
    reasons = {e["reason"] for e in doc["events"]}
    assert {"StampedObjectApplied", "ResourceOutputChanged", "NewArtifact"} <= reasons

    before = {(o["kind"], o["metadata"]["name"]): o for o in doc["objects"]}
    app_repo.commit({"VERSION": "1.1.0\n"}, "release 1.1.0")
    sha2 = app_repo.git("rev-parse", "HEAD")

    # What the next reconcile would change: for the Service, only the image.
    planned = cli("diff", str(PAVED), "-o", "json", "--state", str(state), env=env)
    assert planned.code == 1, planned.stderr
    service_change = next(c for c in planned.json()["changes"]
                          if c["object"] == "Service/default/band-service")
    assert service_change["action"] == "configured"
    assert [c["path"] for c in service_change["changes"]] == [
        "spec.template.spec.containers[0].image"]

    second = cli("simulate", str(PAVED), "-o", "json", "--state", str(state), env=env)
    assert second.code == 0, second.stderr + second.stdout
    doc2 = second.json()
    workload2 = doc2["workloads"][0]
    assert _outputs(workload2, "source-provider")["revision"] == f"main@sha1:{sha2}"
    image2 = _outputs(workload2, "image-builder")["image"]
    assert image2 != image
    service2 = _find(doc2["objects"], "Service", "band-service")
    assert service2["spec"]["template"]["spec"]["containers"][0]["image"] == image2
    # Only the image changed in the Service's spec; generation moved by exactly one.
    old_spec = before[("Service", "band-service")]["spec"]
    old_spec["template"]["spec"]["containers"][0]["image"] = image2
    assert service2["spec"] == old_spec
    assert service2["metadata"]["generation"] == (
        before[("Service", "band-service")]["metadata"]["generation"] + 1)
    assert service2["metadata"]["uid"] == before[("Service", "band-service")]["metadata"]["uid"]


def test_table_output_names_every_stage(app_repo: GitRepo, cli: Callable[..., CliResult]) -> None:
    result = cli("simulate", str(PAVED), env={"APP_REPO_URL": app_repo.url})
    assert result.code == 0, result.stderr
    for stage in ("source-provider", "image-builder", "deployer"):
        assert stage in result.stdout
    assert "Ready=True" in result.stdout
    assert "1/1 workloads Ready" in result.stdout


def test_lost_branch_is_reported_and_nothing_deployed_is_deleted(
    app_repo: GitRepo, cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    env = {"APP_REPO_URL": app_repo.url}
    first = cli("simulate", str(PAVED), "-o", "json", "--state", str(state), env=env)
    assert first.code == 0, first.stderr
    image = _outputs(first.json()["workloads"][0], "image-builder")["image"]

    # As after a `git push --force` that left no `main`: the Workload's ref is gone.
    app_repo.git("branch", "-m", "main", "rewritten")
    second = cli("simulate", str(PAVED), "-o", "json", "--state", str(state), "--budget", "300",
                 env=env)
    assert second.code == 1, second.stderr
    doc = second.json()
    ready = _condition(doc["workloads"][0], "Ready")
    assert ready["status"] == "False"
    assert "refs/heads/main" in ready["message"]
    service = _find(doc["objects"], "Service", "band-service")
    assert service["spec"]["template"]["spec"]["containers"][0]["image"] == image
    assert _find(doc["objects"], "Image", "band-service")["status"]["latestImage"] == image


def test_unreachable_source_is_reported(
    cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    result = cli("simulate", str(PAVED), "-o", "json", "--budget", "120",
                 env={"APP_REPO_URL": (tmp_path / "nowhere").as_uri()})
    assert result.code == 1, result.stderr
    ready = _condition(result.json()["workloads"][0], "Ready")
    assert ready["status"] == "False"
    assert "nowhere" in ready["message"]
