"""What the chart tests share: the real helm (`.tools/bin/helm`, installed by
`scripts/kube_tools.py`) with a private home, and the daemon's command line and environment
as the chart's Deployment gives them to its pod."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.apiserver.conftest import Served
from tests.conftest import ROOT

HELM = ROOT / ".tools" / "bin" / "helm"
CHART = ROOT / "charts" / "reconciler"

needs_helm = pytest.mark.skipif(
    not HELM.exists(),
    reason="the real helm is not installed: run `.venv/bin/python scripts/kube_tools.py`")


def helm(*args: str, home: Path, check: bool = True,
         timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home),
           "HELM_CACHE_HOME": str(home / "helm-cache"),
           "HELM_CONFIG_HOME": str(home / "helm-config"),
           "HELM_DATA_HOME": str(home / "helm-data")}
    done = subprocess.run([str(HELM), *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=ROOT)
    if check and done.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} exited {done.returncode}:\n"
                             f"{done.stdout}\n{done.stderr}")
    return done


def conditions_of(owner: dict[str, Any] | None) -> dict[str, tuple[str, str, str]]:
    """An owner's conditions by type: (status, reason, message)."""
    return {c["type"]: (c["status"], c.get("reason", ""), c.get("message", ""))
            for c in ((owner or {}).get("status") or {}).get("conditions") or []}


def pod_env(container: dict[str, Any], pod_ip: str) -> dict[str, str]:
    """The container's `env` as the kubelet resolves it: `status.podIP` from the Downward API
    and `$(NAME)` references to earlier entries expanded."""
    env: dict[str, str] = {}
    for entry in container.get("env") or []:
        if "valueFrom" in entry:
            assert entry["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}, entry
            value = pod_ip
        else:
            value = str(entry["value"])
        for name, known in env.items():
            value = value.replace(f"$({name})", known)
        env[entry["name"]] = value
    return env


def daemon_as_the_chart_runs_it(served: Served, tmp_path: Path, namespace: str,
                                release: str = "rec") -> tuple[list[str], dict[str, str]]:
    """`reconciler run`'s arguments and environment as the release's Deployment gives them to
    its pod: its args, the settings and inputs ConfigMaps and any Secret volume (`items` as
    given) mounted as files, each mount path in the args and in those files replaced by the
    local folder, its `env` (pod IP 127.0.0.1), and a kubeconfig holding its ServiceAccount's
    token (instead of the projected token volume). Only what cannot be the pod's is added:
    loopback metrics and webhook ports and a local data dir."""
    deployment = served.get_json("deploy", f"{release}-reconciler", "-n", namespace)
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    args = list(container["args"])
    files: dict[Path, str] = {}
    local: dict[str, Path] = {}
    for volume in deployment["spec"]["template"]["spec"]["volumes"]:
        folder = tmp_path / volume["name"]
        if "configMap" in volume:
            data = served.get_json("cm", volume["configMap"]["name"], "-n", namespace)["data"]
        elif "secret" in volume:
            encoded = served.get_json("secret", volume["secret"]["secretName"], "-n",
                                      namespace)["data"]
            secret = {key: base64.b64decode(value).decode() for key, value in encoded.items()}
            items = volume["secret"].get("items")
            data = ({item["path"]: secret[item["key"]] for item in items} if items
                    else secret)
        else:
            continue
        local[mounts[volume["name"]]] = folder
        files.update({folder / name: text for name, text in data.items()})
    for path, text in files.items():
        for mount, folder in local.items():
            text = text.replace(mount, str(folder))
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    for mount, folder in local.items():
        args = [arg.replace(mount, str(folder)) for arg in args]
    assert args[:2] == ["run", f"--config={tmp_path / 'settings'}/settings.yaml"], args
    token = served.kubectl("create", "token", f"{release}-reconciler", "-n",
                           namespace).stdout.strip()
    config = yaml.safe_load(served.kubeconfig.read_text())
    for user in config["users"]:
        user["user"] = {"token": token}
    kubeconfig = tmp_path / "sa.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    assert served.kubectl("--kubeconfig", str(kubeconfig), "auth", "whoami").stdout.count(
        f"system:serviceaccount:{namespace}:{release}-reconciler") == 1
    env = {**pod_env(container, "127.0.0.1"),
           "RECONCILER_KUBECONFIG": str(kubeconfig),
           "RECONCILER_DAEMON_LISTEN": "127.0.0.1:0",
           "RECONCILER_DAEMON_WEBHOOK_LISTEN": "127.0.0.1:0",
           "RECONCILER_DAEMON_DATA_DIR": str(tmp_path / "data")}
    return args[1:], env
