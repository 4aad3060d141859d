"""Stamped objects follow the template: a rename prunes the old object, a broken render nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import CliResult

CHAIN = """\
apiVersion: carto.run/v1alpha1
kind: ClusterSupplyChain
metadata:
  name: config-chain
spec:
  selector:
    app.example.com/type: config
  resources:
    - name: settings
      templateRef:
        kind: ClusterTemplate
        name: settings
    - name: extra
      templateRef:
        kind: ClusterTemplate
        name: extra
---
apiVersion: carto.run/v1alpha1
kind: ClusterTemplate
metadata:
  name: settings
spec:
  template:
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: {settings_name}
    data:
      owner: $(workload.metadata.name)$
      value: {value}
---
apiVersion: carto.run/v1alpha1
kind: ClusterTemplate
metadata:
  name: extra
spec:
  template:
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: $(workload.metadata.name)$-extra
    data:
      k: v
---
apiVersion: carto.run/v1alpha1
kind: Workload
metadata:
  name: app
  labels:
    app.example.com/type: config
spec: {{}}
"""


def _configmaps(result: CliResult) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in result.json()["objects"]
            if o["kind"] == "ConfigMap" and o["metadata"].get("namespace") == "default"}


def _run(cli: Callable[..., CliResult], tmp_path: Path, state: Path, **values: str) -> CliResult:
    inputs = tmp_path / "inputs.yaml"
    inputs.write_text(CHAIN.format(**values))
    return cli("simulate", str(inputs), "-o", "json", "--state", str(state), "--budget", "60")


def test_rename_prunes_old_object_and_broken_template_prunes_nothing(
    cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    first = _run(cli, tmp_path, state, settings_name="$(workload.metadata.name)$-settings",
                 value='"1"')
    assert first.code == 0, first.stderr
    assert set(_configmaps(first)) == {"app-settings", "app-extra"}

    renamed = _run(cli, tmp_path, state, settings_name="$(workload.metadata.name)$-config",
                   value='"1"')
    assert renamed.code == 0, renamed.stderr
    assert set(_configmaps(renamed)) == {"app-config", "app-extra"}
    removed = [e for e in renamed.json()["events"] if e["reason"] == "StampedObjectRemoved"]
    assert any("app-settings" in e["message"] for e in removed)

    broken = _run(cli, tmp_path, state, settings_name="$(workload.metadata.name)$-config",
                  value="$(workload.spec.nothing.here)$")
    assert broken.code == 1
    workload = broken.json()["workloads"][0]
    submitted = next(c for c in workload["status"]["conditions"]
                     if c["type"] == "ResourcesSubmitted")
    assert submitted["reason"] == "TemplateStampFailure"
    # Nothing was pruned and the last good object is untouched.
    configmaps = _configmaps(broken)
    assert set(configmaps) == {"app-config", "app-extra"}
    assert configmaps["app-config"]["data"] == {"owner": "app", "value": "1"}


def test_prune_opt_out_keeps_the_orphan(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    kept = CHAIN.replace("    data:\n      owner:",
                         "      annotations:\n        reconciler.dev/prune: disabled\n"
                         "    data:\n      owner:", 1)
    inputs = tmp_path / "inputs.yaml"
    inputs.write_text(kept.format(settings_name="$(workload.metadata.name)$-settings",
                                  value='"1"'))
    assert cli("simulate", str(inputs), "-o", "json", "--state", str(state)).code == 0
    inputs.write_text(kept.format(settings_name="$(workload.metadata.name)$-config", value='"1"'))
    renamed = cli("simulate", str(inputs), "-o", "json", "--state", str(state))
    assert renamed.code == 0, renamed.stderr
    assert set(_configmaps(renamed)) == {"app-settings", "app-config", "app-extra"}
