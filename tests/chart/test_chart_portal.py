"""The chart's `portal` values: portal actions on the chart's all-interfaces address need the
token from a Secret, which the chart mounts read-only and names in `daemon.portal_token_file`.

With the real helm: the rendering, the install refused without a Secret, the schema refusing the
settings the chart owns, the rendered settings accepted by the daemon (and refused without the
token file); then the chart installed into `reconciler serve --rbac`, the daemon started as the
Deployment starts it, and a portal action refused without the Secret's token and done with it.
"""

from __future__ import annotations

import functools
import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.apiserver.conftest import RECONCILER, Served, needs_kubectl, serving, wait_for
from tests.chart.harness import CHART, daemon_as_the_chart_runs_it, helm, needs_helm
from tests.conftest import EXAMPLES
from tests.e2e.daemon_harness import running_daemon

pytestmark = needs_helm
PORTAL = ["--set", "portal.actions=true", "--set", "portal.tokenSecret.name=portal-token"]
TOKEN = "5f0c1e2d3a4b-portal-token"


def rendered(tmp_path: Path, *args: str) -> list[dict[str, Any]]:
    out = helm("template", "r", str(CHART), "-n", "ops", *args, home=tmp_path).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def settings_of(docs: list[dict[str, Any]]) -> list[str]:
    return [doc["data"]["settings.yaml"] for doc in docs
            if doc["kind"] == "ConfigMap" and "settings.yaml" in doc.get("data", {})]


def test_actions_mount_the_token_secret_and_set_the_settings(tmp_path: Path) -> None:
    docs = rendered(tmp_path, *PORTAL, "--set", "portal.tokenSecret.key=secret-token",
                    "--set", "shards={team-a}")
    deployments = [doc for doc in docs if doc["kind"] == "Deployment"]
    assert len(deployments) == 2
    for deployment in deployments:
        pod = deployment["spec"]["template"]["spec"]
        [container] = pod["containers"]
        assert {"name": "portal-token", "mountPath": "/etc/reconciler/portal",
                "readOnly": True} in container["volumeMounts"]
        assert {"name": "portal-token", "secret": {
            "secretName": "portal-token", "defaultMode": 0o440,
            "items": [{"key": "secret-token", "path": "token"}]}} in pod["volumes"]
        # Not in the environment: a file is not shown by `kubectl describe` or the process list.
        assert "env" not in container
    for text in settings_of(docs):
        daemon = yaml.safe_load(text)["daemon"]
        assert daemon["portal_actions"] is True
        assert daemon["portal_token_file"] == "/etc/reconciler/portal/token"
        assert daemon["listen"] == ":8080"


def test_a_token_without_actions_is_mounted_and_by_default_nothing_is(tmp_path: Path) -> None:
    docs = rendered(tmp_path, "--set", "portal.tokenSecret.name=portal-token")
    [daemon] = [yaml.safe_load(text)["daemon"] for text in settings_of(docs)]
    assert daemon["portal_token_file"] == "/etc/reconciler/portal/token"
    assert "portal_actions" not in daemon
    docs = rendered(tmp_path)
    [daemon] = [yaml.safe_load(text)["daemon"] for text in settings_of(docs)]
    assert not {"portal_actions", "portal_token_file"} & set(daemon)
    [deployment] = [doc for doc in docs if doc["kind"] == "Deployment"]
    assert all(v["name"] != "portal-token" for v in deployment["spec"]["template"]["spec"][
        "volumes"])


def test_actions_without_a_token_secret_are_refused(tmp_path: Path) -> None:
    done = helm("template", "r", str(CHART), "--set", "portal.actions=true", home=tmp_path,
                check=False)
    assert done.returncode != 0
    assert "portal.actions needs portal.tokenSecret.name" in done.stderr, done.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--set", "settings.daemon.portal_actions=true"],
     "at '/settings/daemon': additional properties 'portal_actions' not allowed"),
    (["--set", "settings.daemon.portal_token_file=/x"],
     "at '/settings/daemon': additional properties 'portal_token_file' not allowed"),
    (["--set", "portal.tokenSecret.name=Not_A_Name"], "/portal/tokenSecret/name"),
    (["--set", "portal.tokenSecret.key=a/b"], "/portal/tokenSecret/key"),
    (["--set", "portal.action=true"], "at '/portal': additional properties 'action' not allowed"),
], ids=["actions-setting", "token-setting", "secret-name", "secret-key", "typo"])
def test_bad_portal_values_are_refused_by_the_schema(tmp_path: Path, args: list[str],
                                                     message: str) -> None:
    done = helm("template", "r", str(CHART), *args, home=tmp_path, check=False)
    assert done.returncode != 0
    assert message in done.stderr, done.stderr


def test_the_rendered_settings_pass_the_daemons_check_only_with_the_token(
        tmp_path: Path) -> None:
    [text] = settings_of(rendered(tmp_path, *PORTAL))
    path = tmp_path / "settings.yaml"
    path.write_text(text)
    done = subprocess.run([str(RECONCILER), "settings", "--config", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    effective = yaml.safe_load(done.stdout)["daemon"]
    assert effective["portal_actions"] is True and effective["listen"] == "0.0.0.0:8080"
    # What the daemon itself refuses, and why the chart insists on the Secret.
    without = yaml.safe_load(text)
    del without["daemon"]["portal_token_file"]
    path.write_text(yaml.safe_dump(without))
    done = subprocess.run([str(RECONCILER), "settings", "--config", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "needs daemon.portal_token_file" in done.stderr


# --- installed, and the daemon started as the Deployment starts it ---------------------------

@pytest.fixture(scope="module")
def rbac_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("serve-chart-portal"), "--rbac", "--controllers",
                 "ecosystem") as server:
        yield server


def _post(url: str, host: str, token: str | None) -> tuple[int, str]:
    headers = {"Content-Type": "application/json", "Origin": f"http://{host}", "Host": host}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    body = json.dumps({"kind": "Workload", "namespace": "default", "name": "hello"}).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@needs_kubectl
@pytest.mark.timeout(300)
def test_an_installed_daemon_takes_portal_actions_only_with_the_secrets_token(
        rbac_served: Served, tmp_path: Path) -> None:
    served, ns = rbac_served, "reconciler-system"
    served.kubectl("create", "namespace", ns)
    served.kubectl("create", "secret", "generic", "portal-token", "-n", ns,
                   f"--from-literal=token={TOKEN}")
    helm("--kubeconfig", str(served.kubeconfig), "install", "rec", str(CHART), "-n", ns,
         *PORTAL, home=served.home)
    args, env = daemon_as_the_chart_runs_it(served, tmp_path, ns)
    settings = yaml.safe_load(Path(args[0].removeprefix("--config=")).read_text())["daemon"]
    token_file = Path(settings["portal_token_file"])
    assert token_file == tmp_path / "portal-token" / "token"
    assert token_file.read_text() == TOKEN
    for name in ("00-supply-chain.yaml", "00-workload.yaml"):
        served.kubectl("apply", "-f", str(EXAMPLES / "greeter" / name))
    env["RECONCILER_DAEMON_ARTIFACTS_LISTEN"] = "127.0.0.1:0"

    def requested() -> str | None:
        workload = served.get_json("workload", "hello", "-n", "default")
        annotations = workload["metadata"].get("annotations") or {}
        return annotations.get("reconcile.fluxcd.io/requestedAt")

    with running_daemon(args, tmp_path / "run.log", env=env) as daemon:
        host = daemon.ops_url.removeprefix("http://")
        url = f"{daemon.ops_url}/ui/api/actions/reconcile"

        def answered(token: str | None) -> tuple[int, str] | None:
            status, body = _post(url, host, token)
            return None if status == 503 else (status, body)  # not leading yet

        for wrong in (None, TOKEN + "x"):
            status, body = wait_for(functools.partial(answered, wrong), seconds=60)
            assert status == 401 and "daemon.portal_token_file" in body, (status, body)
        assert requested() is None
        status, body = wait_for(lambda: answered(TOKEN), seconds=60)
        assert status == 200, (status, body, daemon.stderr_tail())
        assert wait_for(requested, seconds=30)
        # (Its graceful stop is tested elsewhere; on a loaded machine it can outlast the
        # harness's wait, and running_daemon ends it either way.)
