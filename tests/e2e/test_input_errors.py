"""Input a real API server refuses is exit 2 with file, line, object and field, never an
internal error, through every command that reads it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliResult

CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: a
{meta}
data: {{}}
"""


@pytest.mark.parametrize(("meta", "field"), [
    ('  ownerReferences: "x"', "metadata.ownerReferences"),
    ("  ownerReferences: [x]", "metadata.ownerReferences[0]"),
    ("  ownerReferences:\n    - {apiVersion: v1, kind: 7, name: b, uid: u}",
     "metadata.ownerReferences[0].kind"),
    ("  finalizers: x", "metadata.finalizers"),
    ("  labels: {app: 5}", "metadata.labels"),
    ("  labels: {bad key: x}", "metadata.labels"),
])
@pytest.mark.parametrize("command", ["validate", "simulate", "tree", "diff"])
def test_malformed_metadata_is_an_input_error(
        tmp_path: Path, cli: Callable[..., CliResult], meta: str, field: str,
        command: str) -> None:
    (tmp_path / "in.yaml").write_text(CONFIGMAP.format(meta=meta))
    result = cli(command, str(tmp_path / "in.yaml"))
    assert result.code == 2, result.stderr
    assert f"{tmp_path / 'in.yaml'}:" in result.stderr
    assert "ConfigMap/a" in result.stderr and field in result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr


def test_tree_of_a_hand_edited_state_does_not_crash(
        tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"version": 1, "objects": [{
        "apiVersion": "carto.run/v1alpha1", "kind": "Workload",
        "metadata": {"name": "w", "namespace": "default", "uid": "1",
                     "ownerReferences": "x"}}]}))
    result = cli("tree", "--state", str(state))
    assert result.code == 0, result.stderr
    assert "Workload/default/w" in result.stdout
