"""`reconciler diff` as a user runs it: unified diffs per object, masked Secrets, exit codes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conftest import CliResult

CM = """apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  mode: {mode}
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
stringData:
  password: {password}
"""


def test_diff_against_saved_state(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    first = tmp_path / "v1.yaml"
    first.write_text(CM.format(mode="fast", password="hunter2"))

    created = cli("diff", str(first))
    assert created.code == 1, created.stderr
    assert "► ConfigMap/default/settings created" in created.stdout
    assert "+  mode: fast" in created.stdout
    assert "hunter2" not in created.stdout and "++++++++" in created.stdout

    applied = cli("simulate", str(first), "--state", str(state), "--budget", "1")
    assert applied.code in (0, 1), applied.stderr
    same = cli("diff", str(first), "--state", str(state))
    assert same.code == 0, same.stdout + same.stderr
    assert "► ConfigMap/default/settings unchanged" in same.stdout

    second = tmp_path / "v2.yaml"
    second.write_text(CM.format(mode="safe", password="s3cret"))
    changed = cli("diff", str(second), "--state", str(state))
    assert changed.code == 1
    assert "► ConfigMap/default/settings configured" in changed.stdout
    assert "-  mode: fast\n+  mode: safe" in changed.stdout
    assert "► Secret/default/creds configured" in changed.stdout
    assert "s3cret" not in changed.stdout and "hunter2" not in changed.stdout

    as_json = cli("diff", str(second), "--state", str(state), "-o", "json")
    assert as_json.code == 1
    doc = as_json.json()
    by_name = {c["name"]: c for c in doc["changes"]}
    assert by_name["settings"]["changes"] == [{"path": "data.mode", "before": "fast",
                                               "after": "safe"}]
    assert by_name["creds"]["changes"][0]["after"] == "++++++++"
    assert doc["summary"]["configured"] == 2


def test_invalid_input_exits_2(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: ConfigMap\n")
    result = cli("diff", str(bad))
    assert result.code == 2
    assert "bad.yaml" in result.stderr


def test_diff_shows_what_the_supply_chain_would_stamp_and_prune(
    cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    from tests.e2e.test_supply_chain_prune import CHAIN

    state = tmp_path / "state.json"
    inputs = tmp_path / "inputs.yaml"
    inputs.write_text(CHAIN.format(settings_name="$(workload.metadata.name)$-settings",
                                   value='"1"'))
    assert cli("simulate", str(inputs), "--state", str(state), "--budget", "60").code == 0
    saved = state.read_text()

    inputs.write_text(CHAIN.format(settings_name="$(workload.metadata.name)$-config",
                                   value='"2"'))
    result = cli("diff", str(inputs), "--state", str(state))
    assert result.code == 1, result.stderr
    assert "► ConfigMap/default/app-settings deleted" in result.stdout
    assert "► ConfigMap/default/app-config created" in result.stdout
    assert "► ClusterTemplate/settings configured" in result.stdout
    assert "app-extra" not in result.stdout  # unchanged stamped objects are not listed
    assert state.read_text() == saved  # a diff changes nothing
    doc = cli("diff", str(inputs), "--state", str(state), "-o", "json").json()
    actions = {c["object"]: c["action"] for c in doc["changes"]}
    assert actions["ConfigMap/default/app-settings"] == "deleted"
