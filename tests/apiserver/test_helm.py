"""The real helm v4 (`.tools/bin/helm`) against `reconciler serve`: install, upgrade, rollback,
uninstall, status, list, history and `install --wait`, with the small chart in `charts/greeting`
(a ConfigMap, a Deployment that mounts it, a Service).

What helm needs from the API: its release storage is Secrets labelled `owner=helm`, written by
client-go's typed client as protobuf bodies (the server reads those, answers JSON); resources
go through server-side apply (`fieldManager=helm`); `--wait` watches with
`sendInitialEvents=true` (kstatus) until the Deployment reports itself available, which the
simulated kube-controller-manager does; `helm test` runs a hook Pod to completion.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest

from tests.apiserver.conftest import Served
from tests.conftest import ROOT

HELM = ROOT / ".tools" / "bin" / "helm"
CHART = ROOT / "tests" / "apiserver" / "charts" / "greeting"

pytestmark = pytest.mark.skipif(
    not HELM.exists(),
    reason="the real helm is not installed: run `.venv/bin/python scripts/kube_tools.py`")


def helm(served: Served, *args: str, check: bool = True,
         timeout: float = 90) -> subprocess.CompletedProcess[str]:
    home = served.home
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home),
           "HELM_CACHE_HOME": str(home / "helm-cache"),
           "HELM_CONFIG_HOME": str(home / "helm-config"),
           "HELM_DATA_HOME": str(home / "helm-data")}
    done = subprocess.run([str(HELM), "--kubeconfig", str(served.kubeconfig), *args],
                          capture_output=True, text=True, env=env, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} exited {done.returncode}:\n"
                             f"{done.stdout}\n{done.stderr}")
    return done


def helm_json(served: Served, *args: str) -> Any:
    return json.loads(helm(served, *args, "-o", "json").stdout)


def greeting(served: Served, namespace: str, release: str) -> str:
    return str(served.get_json("cm", f"{release}-config", "-n", namespace)["data"]["greeting"])


@pytest.mark.parametrize("server_side", ["true", "false"])
def test_install_upgrade_rollback_and_uninstall(served: Served, namespace: str,
                                                server_side: str) -> None:
    # server-side apply (helm v4's default), or create and three-way strategic merge patches
    mode = f"--server-side={server_side}"
    installed = helm(served, "install", "demo", str(CHART), "-n", namespace, mode)
    assert "STATUS: deployed" in installed.stdout and "REVISION: 1" in installed.stdout
    assert greeting(served, namespace, "demo") == "hello"
    deployment = served.get_json("deploy", "demo", "-n", namespace)
    assert deployment["metadata"]["annotations"]["meta.helm.sh/release-name"] == "demo"
    assert served.get_json("svc", "demo", "-n", namespace)["spec"]["ports"][0]["port"] == 80
    managers = {e["manager"] for e in served.get_json(
        "cm", "demo-config", "-n", namespace, "--show-managed-fields")["metadata"][
        "managedFields"]}
    assert "helm" in managers
    releases = served.kubectl("get", "secrets", "-n", namespace, "-l", "owner=helm",
                              "-o", "name").stdout.split()
    assert releases == ["secret/sh.helm.release.v1.demo.v1"]

    upgraded = helm(served, "upgrade", "demo", str(CHART), "-n", namespace, mode,
                    "--set", "greeting=bonjour")
    assert "REVISION: 2" in upgraded.stdout
    assert greeting(served, namespace, "demo") == "bonjour"
    # the pod template's checksum annotation changed: a new generation of the Deployment
    assert served.get_json("deploy", "demo", "-n", namespace)["metadata"]["generation"] == 2
    status = helm_json(served, "status", "demo", "-n", namespace)
    assert status["info"]["status"] == "deployed" and status["version"] == 2

    rolled = helm(served, "rollback", "demo", "1", "-n", namespace, mode)
    assert "Rollback was a success" in rolled.stdout
    assert greeting(served, namespace, "demo") == "hello"
    history = helm_json(served, "history", "demo", "-n", namespace)
    assert [(h["revision"], h["status"]) for h in history] == [
        (1, "superseded"), (2, "superseded"), (3, "deployed")]
    listed = helm_json(served, "list", "-n", namespace)
    assert [(r["name"], r["revision"], r["status"]) for r in listed] == [
        ("demo", "3", "deployed")]

    removed = helm(served, "uninstall", "demo", "-n", namespace)
    assert 'release "demo" uninstalled' in removed.stdout
    for what in (("cm", "demo-config"), ("deploy", "demo"), ("svc", "demo")):
        assert served.kubectl("get", *what, "-n", namespace, check=False).returncode == 1
    assert served.kubectl("get", "secrets", "-n", namespace, "-l", "owner=helm",
                          "-o", "name").stdout.split() == []
    assert helm_json(served, "list", "-n", namespace) == []


def test_install_wait_returns_once_the_deployment_is_available(served: Served,
                                                               namespace: str) -> None:
    done = helm(served, "install", "waited", str(CHART), "-n", namespace, "--wait",
                "--timeout", "60s", "--set", "replicas=2")
    assert "STATUS: deployed" in done.stdout
    status = served.get_json("deploy", "waited", "-n", namespace)["status"]
    assert status["availableReplicas"] == 2 and status["observedGeneration"] == 1
    again = helm(served, "upgrade", "waited", str(CHART), "-n", namespace, "--wait",
                 "--timeout", "60s", "--set", "replicas=3")
    assert "REVISION: 2" in again.stdout
    assert served.get_json("deploy", "waited", "-n", namespace)["status"][
        "availableReplicas"] == 3
    # `helm test`: a hook Pod the simulated kubelet runs to Succeeded; the second run deletes
    # the first run's Pod first (hook-delete-policy: before-hook-creation)
    for _ in range(2):
        tested = helm(served, "test", "waited", "-n", namespace, "--timeout", "60s")
        assert "TEST SUITE:     waited-test" in tested.stdout
        assert "Phase:          Succeeded" in tested.stdout


def test_a_rollout_that_fails_the_wait_is_recorded_and_fixed_by_an_upgrade(
        served: Served, namespace: str) -> None:
    failing = helm(served, "install", "broken", str(CHART), "-n", namespace, "--wait",
                   "--timeout", "3s", "--set-string",
                   r"deploymentAnnotations.simulator\.reconciler\.dev/outcome=Failed",
                   check=False)
    assert failing.returncode == 1
    assert "resource Deployment/" + namespace + "/broken not ready" in failing.stderr
    assert helm_json(served, "status", "broken", "-n", namespace)["info"]["status"] == "failed"
    # a new pod template (the config checksum changes) without the failure: a new rollout
    fixed = helm(served, "upgrade", "broken", str(CHART), "-n", namespace, "--wait",
                 "--timeout", "60s", "--set", "greeting=fixed")
    assert "STATUS: deployed" in fixed.stdout
    annotations = served.get_json("deploy", "broken", "-n", namespace)["metadata"][
        "annotations"]
    assert "simulator.reconciler.dev/outcome" not in annotations  # dropped by helm's apply
    history = helm_json(served, "history", "broken", "-n", namespace)
    assert [(h["revision"], h["status"]) for h in history] == [(1, "superseded"), (2, "deployed")]
