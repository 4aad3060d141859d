"""A condition written into the cluster with terminal escapes, as a user meets it: `reconciler
get` and `tree` against `reconciler serve` show it neutralised; `-o json|yaml` show it exact.

The server runs only the simulated ecosystem (`--controllers ecosystem`), so the status written
with the real kubectl stays as written."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import yaml

from tests.apiserver.conftest import Served, needs_kubectl, serving

pytestmark = needs_kubectl

MESSAGE = "\x1b]0;pwned\x07\x1b[2J\x1b[31mFAKE\x1b[0m\x9b2J\rover\nforged"
REASON = "Bad\x1b[5m"
CONTROLS = "\x1b\x07\x9b\r"
WORKLOAD = """\
apiVersion: carto.run/v1alpha1
kind: Workload
metadata:
  name: hostile
  namespace: default
spec:
  source:
    git:
      url: https://example.com/app.git
      ref:
        branch: main
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("terminal"), "--controllers", "ecosystem") as server:
        server.kubectl("apply", "-f", "-", stdin=WORKLOAD)
        status = {"status": {"conditions": [{
            "type": "Ready", "status": "False", "reason": REASON, "message": MESSAGE,
            "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}
        server.kubectl("patch", "workload", "hostile", "-n", "default", "--subresource=status",
                       "--type=merge", "-p", json.dumps(status))
        yield server


def run(served: Served, *args: str) -> str:
    from click.testing import CliRunner

    from reconciler.cli import main

    result = CliRunner().invoke(main, [*args, "--kubeconfig", str(served.kubeconfig)],
                                env={"KUBECONFIG": None})
    assert result.exit_code == 0, f"{args}: {result.stdout}{result.stderr}"
    return result.stdout


@pytest.mark.parametrize("output", ["table", "wide"])
def test_get_shows_escapes_neutralised(served: Served, output: str) -> None:
    text = run(served, "get", "workloads", "-n", "default", "-o", output)
    assert not any(c in text for c in CONTROLS), repr(text)
    lines = text.splitlines()
    assert len(lines) == 2, lines
    assert "  False  Bad\ufffd[5m  " in lines[1]
    if output == "wide":
        assert lines[1].endswith("\ufffd]0;pwned\ufffd\ufffd[2J\ufffd[31mFAKE\ufffd[0m\ufffd2J"
                                 " over forged")


def test_tree_shows_escapes_neutralised(served: Served) -> None:
    text = run(served, "tree", "hostile", "-n", "default")
    assert text == "Workload/default/hostile  Ready=False (Bad\ufffd[5m)\n"


@pytest.mark.parametrize("output", ["json", "yaml"])
def test_get_json_and_yaml_are_exact(served: Served, output: str) -> None:
    text = run(served, "get", "workload", "hostile", "-n", "default", "-o", output)
    obj = json.loads(text) if output == "json" else yaml.safe_load(text)
    ready = obj["status"]["conditions"][0]
    assert (ready["reason"], ready["message"]) == (REASON, MESSAGE)


def test_tree_json_is_exact(served: Served) -> None:
    doc = json.loads(run(served, "tree", "hostile", "-n", "default", "-o", "json"))
    assert doc["owners"][0]["state"] == f"Ready=False ({REASON})"
