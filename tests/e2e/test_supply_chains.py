"""The shipped paths (config/supply-chains) as a platform team runs them: `reconciler simulate`
over real Git repositories served on 127.0.0.1, commit after commit, with the simulated cluster
kept in --state between runs.

The sample app (config/supply-chains/tests/sample-app) is the source; its `test.sh` is what the
web-tested path's Pipeline runs for real, and a `.reconciler/scan-report.json` (Trivy's JSON
format) is what the registry knows about its image.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, CliResult, GitRepo
from tests.gitservers import HttpAuth, SmartHttpServer

PATHS = ROOT / "config" / "supply-chains"
CLUSTER = PATHS / "cluster"
NAMESPACE = PATHS / "namespace"
SAMPLE_APP = PATHS / "tests" / "sample-app"

FAILING_TEST = 'echo "test_greeting: expected a greeting, got nothing"\nexit 1\n'
CRITICAL_REPORT = json.dumps({
    "SchemaVersion": 2, "ArtifactName": "hello", "ArtifactType": "container_image",
    "Results": [{"Target": "requirements.txt", "Class": "lang-pkgs", "Type": "pip",
                 "Vulnerabilities": [
                     {"VulnerabilityID": "CVE-2024-0001", "PkgName": "example-lib",
                      "InstalledVersion": "1.0.0", "FixedVersion": "1.0.1",
                      "Severity": "CRITICAL"}]}]})


def workload(name: str, url: str, workload_type: str = "web", *, has_tests: bool = False,
             params: dict[str, Any] | None = None, **spec: Any) -> str:
    labels = {"apps.tanzu.vmware.com/workload-type": workload_type}
    if has_tests:
        labels["apps.tanzu.vmware.com/has-tests"] = "true"
    doc: dict[str, Any] = {
        "apiVersion": "carto.run/v1alpha1", "kind": "Workload",
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "spec": {"source": {"git": {"url": url, "ref": {"branch": "main"}}}, **spec}}
    if params:
        doc["spec"]["params"] = [{"name": k, "value": v} for k, v in params.items()]
    return json.dumps(doc)


def deliverable(name: str, url: str, sub_path: str, secret: str) -> str:
    return json.dumps({
        "apiVersion": "carto.run/v1alpha1", "kind": "Deliverable",
        "metadata": {"name": name, "namespace": "default",
                     "labels": {"app.tanzu.vmware.com/deliverable-type": "web"}},
        "spec": {"params": [{"name": "gitops_ssh_secret", "value": secret}],
                 "source": {"git": {"url": url, "ref": {"branch": "main"}},
                            "subPath": sub_path}}})


@dataclass
class Scenario:
    """A folder of inputs simulated over the shipped paths, the cluster kept in `state`."""

    cli: Callable[..., CliResult]
    inputs: Path
    state: Path

    def write(self, name: str, *documents: str) -> None:
        (self.inputs / f"{name}.yaml").write_text("\n---\n".join(documents))

    def simulate(self, *, expect: int = 0, tested: bool = False) -> dict[str, Any]:
        paths = [str(CLUSTER), *([str(NAMESPACE)] if tested else []), str(self.inputs)]
        result = self.cli("simulate", *paths, "-o", "json", "--state", str(self.state))
        assert result.code == expect, result.stderr[-3000:] + result.stdout[-3000:]
        doc: dict[str, Any] = result.json()
        return doc

    def table(self, *, tested: bool = False) -> str:
        paths = [str(CLUSTER), *([str(NAMESPACE)] if tested else []), str(self.inputs)]
        result = self.cli("simulate", *paths, "--state", str(self.state))
        return result.stdout

    def tree(self) -> dict[str, Any]:
        result = self.cli("tree", "--state", str(self.state), "-o", "json")
        assert result.code == 0, result.stderr
        doc: dict[str, Any] = result.json()
        return doc


@pytest.fixture
def scenario(cli: Callable[..., CliResult], tmp_path: Path) -> Scenario:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    return Scenario(cli, inputs, tmp_path / "state.json")


@pytest.fixture
def app(make_repo: Callable[..., GitRepo]) -> GitRepo:
    files = {p.name: p.read_text() for p in SAMPLE_APP.iterdir()}
    return make_repo("hello", files)


def find(doc: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    for obj in doc["objects"]:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            found: dict[str, Any] = obj
            return found
    raise AssertionError(f"{kind}/{name} is not in the simulated cluster")


def kinds(doc: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [o for o in doc["objects"] if o["kind"] == kind]


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    found = obj["status"]["conditions"] if "status" in obj else obj["conditions"]
    return next(c for c in found if c["type"] == type_)


def the_workload(doc: dict[str, Any], name: str = "hello") -> dict[str, Any]:
    return next(w for w in doc["workloads"] if w["metadata"]["name"] == name)


def stages(owner: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(stage, stamped kind, Ready status) in supply-chain order."""
    return [(r["name"], (r.get("stampedRef") or {}).get("kind", "-"),
             condition(r, "Ready")["status"]) for r in owner["status"]["resources"]]


def outputs(owner: dict[str, Any], stage: str) -> dict[str, str]:
    entry = next(r for r in owner["status"]["resources"] if r["name"] == stage)
    return {o["name"]: o["preview"].strip() for o in entry.get("outputs", [])}


def container(obj: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = obj["spec"]["template"]["spec"]["containers"][0]
    return found


def test_web_path_every_stage_and_a_second_commit(
    scenario: Scenario, app: GitRepo, serve_repo: Callable[[GitRepo], str]
) -> None:
    env = [{"name": "LOG_LEVEL", "value": "debug"}]
    scenario.write("workload", workload(
        "hello", serve_repo(app),
        params={"registry": {"server": "registry.internal", "repository": "team-a"}},
        env=env, build={"env": [{"name": "BP_CPYTHON_VERSION", "value": "3.12"}]}))
    doc = scenario.simulate()
    wl = the_workload(doc)
    assert wl["status"]["supplyChainRef"]["name"] == "source-to-url"
    assert stages(wl) == [("source-provider", "GitRepository", "True"),
                          ("image-provider", "Image", "True"),
                          ("app-config", "ConfigMap", "True"),
                          ("deployer", "Service", "True")]
    sha = app.git("rev-parse", "HEAD")
    assert outputs(wl, "source-provider")["revision"] == f"main@sha1:{sha}"
    kpack = find(doc, "Image", "hello")
    assert kpack["spec"]["build"]["env"] == [{"name": "BP_CPYTHON_VERSION", "value": "3.12"}]
    image = kpack["status"]["latestImage"]
    assert image.startswith("registry.internal/team-a/hello-default@sha256:")
    assert outputs(wl, "image-provider")["image"] == image
    service = find(doc, "Service", "hello")
    assert service["apiVersion"] == "serving.knative.dev/v1"
    assert container(service)["image"] == image
    assert container(service)["env"] == env
    assert condition(service, "Ready")["status"] == "True"
    assert service["status"]["url"] == "http://hello.default.example.com"
    # The deployed Service is exactly the app-config stage's manifest.
    config = json.loads(find(doc, "ConfigMap", "hello")["data"]["delivery.yml"])
    assert {k: service["spec"][k] for k in config["spec"]} == config["spec"]

    app.commit({"app.py": (SAMPLE_APP / "app.py").read_text() + "# 1.1\n"}, "release 1.1")
    doc2 = scenario.simulate()
    image2 = find(doc2, "Image", "hello")["status"]["latestImage"]
    assert image2 != image
    assert find(doc2, "Image", "hello")["status"]["buildCounter"] == 2
    service2 = find(doc2, "Service", "hello")
    assert container(service2)["image"] == image2
    assert service2["status"]["latestReadyRevisionName"] == "hello-00002"
    assert service2["status"]["traffic"] == [
        {"revisionName": "hello-00002", "latestRevision": True, "percent": 100}]


def test_web_tested_path_stops_at_failing_tests_and_at_a_critical_finding(
    scenario: Scenario, app: GitRepo, serve_repo: Callable[[GitRepo], str]
) -> None:
    scenario.write("workload", workload("hello", serve_repo(app), has_tests=True))
    doc = scenario.simulate(tested=True)
    wl = the_workload(doc)
    assert wl["status"]["supplyChainRef"]["name"] == "source-test-scan-to-url"
    assert stages(wl) == [("source-provider", "GitRepository", "True"),
                          ("source-tester", "Runnable", "True"),
                          ("image-provider", "Image", "True"),
                          ("image-scanner", "ImageScan", "True"),
                          ("app-config", "ConfigMap", "True"),
                          ("deployer", "Service", "True")]
    sha = app.git("rev-parse", "HEAD")
    assert outputs(wl, "source-tester")["revision"] == f"main@sha1:{sha}"
    task_run = kinds(doc, "TaskRun")[0]
    assert condition(task_run, "Succeeded")["status"] == "True"
    assert "1 test passed" in json.loads(
        task_run["metadata"]["annotations"]["simulator.reconciler.dev/logs"])["test"]
    image = find(doc, "Image", "hello")["status"]["latestImage"]
    scan = find(doc, "ImageScan", "hello")
    assert scan["status"]["compliantArtifact"]["registry"]["image"] == image
    running = find(doc, "Service", "hello")
    assert container(running)["image"] == image

    # A commit whose tests fail: stopped at the tests, nothing built, nothing deployed.
    bad = app.commit({"test.sh": FAILING_TEST}, "break the tests")
    doc = scenario.simulate(expect=1, tested=True)
    wl = the_workload(doc)
    ready = condition(wl, "Ready")
    assert ready["status"] == "False"
    assert 'step "test" in task "test" exited with code 1' in ready["message"]
    assert [s for s in stages(wl) if s[2] != "True"] == [("source-tester", "Runnable", "False")]
    assert outputs(wl, "source-provider")["revision"] == f"main@sha1:{bad}"
    assert outputs(wl, "source-tester")["revision"] == f"main@sha1:{sha}"
    assert find(doc, "Image", "hello")["status"]["buildCounter"] == 1
    service = find(doc, "Service", "hello")
    assert service["spec"] == running["spec"]
    assert service["metadata"]["generation"] == running["metadata"]["generation"]
    # The failed step's output is shown with the stage, in simulate's table and in the tree.
    table = scenario.table(tested=True)
    assert "logs of TaskRun/default/" in table and "exit code 1" in table
    assert "test_greeting: expected a greeting, got nothing" in table
    tester = next(c for c in scenario.tree()["owners"][0]["children"]
                  if c.get("stage", {}).get("name") == "source-tester")
    logs = tester["stage"]["logs"]
    assert logs["steps"][0]["step"] == "test" and logs["steps"][0]["exitCode"] == 1
    assert "expected a greeting" in logs["steps"][0]["text"]

    # Tests fixed, but the image has a critical finding: built, stopped at the scan.
    app.commit({"test.sh": (SAMPLE_APP / "test.sh").read_text(),
                ".reconciler/scan-report.json": CRITICAL_REPORT}, "add example-lib")
    doc = scenario.simulate(expect=1, tested=True)
    wl = the_workload(doc)
    ready = condition(wl, "Ready")
    assert ready["status"] == "False"
    assert "CVE-2024-0001" in ready["message"]
    assert stages(wl)[:4] == [("source-provider", "GitRepository", "True"),
                              ("source-tester", "Runnable", "True"),
                              ("image-provider", "Image", "True"),
                              ("image-scanner", "ImageScan", "False")]
    built = find(doc, "Image", "hello")["status"]
    assert built["buildCounter"] == 2 and built["latestImage"] != image
    scan = find(doc, "ImageScan", "hello")
    assert condition(scan, "Succeeded")["status"] == "False"
    assert "compliantArtifact" not in scan["status"]
    assert scan["status"]["scanResult"]["cveCount"]["critical"] == 1
    service = find(doc, "Service", "hello")
    assert service["spec"] == running["spec"]
    assert condition(service, "Ready")["status"] == "True"


@pytest.fixture
def gitops_server(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """An empty bare repository served over smart HTTP on 127.0.0.1, Basic auth required."""
    root = tmp_path / "git-server"
    root.mkdir()
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(root / "gitops.git")],
                   check=True)
    with SmartHttpServer(root, auth=HttpAuth(users={"writer": "s3cret"})) as server:
        yield root / "gitops.git", f"http://127.0.0.1:{server.port}/gitops.git"


def commits(bare: Path) -> list[tuple[str, str]]:
    """(sha, full message) of the repository's main branch, newest first."""
    out = subprocess.run(["git", "-C", str(bare), "log", "--format=%H%x00%B%x01", "main"],
                         capture_output=True, text=True, check=True).stdout
    return [(sha, body.strip()) for sha, _, body in
            (entry.strip().partition("\x00") for entry in out.split("\x01") if entry.strip())]


SECRET = json.dumps({"apiVersion": "v1", "kind": "Secret",
                     "metadata": {"name": "gitops-credentials", "namespace": "default"},
                     "stringData": {"username": "writer", "password": "s3cret"}})


def test_gitops_path_one_commit_per_revision_and_the_deliverable_deploys_it(
    scenario: Scenario, app: GitRepo, serve_repo: Callable[[GitRepo], str],
    gitops_server: tuple[Path, str],
) -> None:
    bare, url = gitops_server
    params = {"gitops_repository": url, "gitops_ssh_secret": "gitops-credentials"}
    scenario.write("workload", SECRET, workload("hello", serve_repo(app), params=params))
    doc = scenario.simulate()
    wl = the_workload(doc)
    assert stages(wl)[-1] == ("deployer", "TaskRun", "True")
    # Nothing runs here on the gitops path: the config went to the repository.
    assert not [o for o in kinds(doc, "Service") if o["apiVersion"].startswith("serving")]
    sha = app.git("rev-parse", "HEAD")
    history = commits(bare)
    assert len(history) == 1
    assert f"Source: main@sha1:{sha}" in history[0][1]
    written = subprocess.run(["git", "-C", str(bare), "show",
                              "main:config/default/hello/delivery.yml"],
                             capture_output=True, text=True, check=True).stdout
    config = find(doc, "ConfigMap", "hello")["data"]["delivery.yml"]
    assert written == config
    image = find(doc, "Image", "hello")["status"]["latestImage"]
    assert json.loads(written)["spec"]["template"]["spec"]["containers"][0]["image"] == image
    writer = kinds(doc, "TaskRun")[0]
    files = next(p["value"] for p in writer["spec"]["params"] if p["name"] == "git_files")
    assert json.loads(base64.b64decode(files)) == {"delivery.yml": config}

    # The Deliverable takes it from there; nothing changed, so no new commit.
    scenario.write("deliverable", deliverable("hello", url, "config/default/hello",
                                              "gitops-credentials"))
    doc = scenario.simulate()
    assert len(commits(bare)) == 1
    assert len(kinds(doc, "TaskRun")) == 1  # unchanged inputs stamp no new git-writer run
    delivered = find(doc, "Deliverable", "hello")
    assert condition(delivered, "Ready")["status"] == "True"
    assert stages(delivered) == [("source-provider", "GitRepository", "True"),
                                 ("deployer", "Kustomization", "True")]
    kustomization = find(doc, "Kustomization", "hello")
    assert kustomization["status"]["lastAppliedRevision"] == f"main@sha1:{history[0][0]}"
    service = find(doc, "Service", "hello")
    assert service["apiVersion"] == "serving.knative.dev/v1"
    assert container(service)["image"] == image
    assert condition(service, "Ready")["status"] == "True"

    # A new source revision: exactly one more commit, naming it, and the new image deployed.
    sha2 = app.commit({"app.py": (SAMPLE_APP / "app.py").read_text() + "# 2\n"}, "v2")
    doc = scenario.simulate()
    history = commits(bare)
    assert len(history) == 2
    assert f"Source: main@sha1:{sha2}" in history[0][1]
    # The new revision reaches the config-writer before its new image does, so one run writes
    # the old config (no commit) before the run that commits the new one.
    assert all(condition(r, "Succeeded")["status"] == "True" for r in kinds(doc, "TaskRun"))
    # simulate settles on the Workloads; the Deliverable's next poll comes in the next run,
    # which writes nothing new.
    doc = scenario.simulate()
    assert len(commits(bare)) == 2
    image2 = find(doc, "Image", "hello")["status"]["latestImage"]
    assert image2 != image
    assert find(doc, "Kustomization", "hello")["status"]["lastAppliedRevision"] == (
        f"main@sha1:{history[0][0]}")
    assert container(find(doc, "Service", "hello"))["image"] == image2


def test_server_path_with_and_without_an_ingress(
    scenario: Scenario, app: GitRepo, serve_repo: Callable[[GitRepo], str]
) -> None:
    url = serve_repo(app)
    scenario.write("workloads",
                   workload("api", url, "server", params={
                       "ingress_host": "api.example.com",
                       "ports": [{"containerPort": 8000, "port": 80, "name": "http"}]}),
                   workload("worker", url, "server"))
    doc = scenario.simulate()
    api = the_workload(doc, "api")
    assert api["status"]["supplyChainRef"]["name"] == "source-to-server"
    assert stages(api) == [("source-provider", "GitRepository", "True"),
                           ("image-provider", "Image", "True"),
                           ("app-config", "ConfigMap", "True"),
                           ("deployment", "Deployment", "True"),
                           ("service", "Service", "True"),
                           ("ingress", "Ingress", "True")]
    deployment = find(doc, "Deployment", "api")
    assert container(deployment)["image"] == find(doc, "Image", "api")["status"]["latestImage"]
    assert container(deployment)["ports"] == [
        {"containerPort": 8000, "name": "http", "protocol": "TCP"}]
    assert condition(deployment, "Available")["status"] == "True"
    service = find(doc, "Service", "api")
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": 8000, "protocol": "TCP"}]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    rule = find(doc, "Ingress", "api")["spec"]["rules"][0]
    assert rule["host"] == "api.example.com"
    assert rule["http"]["paths"][0]["backend"]["service"] == {"name": "api",
                                                              "port": {"number": 80}}
    # Without ingress_host the ingress stage passes the config through and stamps nothing.
    worker = the_workload(doc, "worker")
    assert [s[0] for s in stages(worker)][-1] == "ingress"
    assert stages(worker)[-1][1] == "-"
    assert not [o for o in kinds(doc, "Ingress") if o["metadata"]["name"] == "worker"]
    assert container(find(doc, "Deployment", "worker"))["ports"][0]["containerPort"] == 8080
