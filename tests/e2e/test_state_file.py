"""`--state` as two users sharing a laptop meet it: one writer at a time, nothing readable by
others, Secrets masked in what is printed, and a file of the wrong shape refused as input."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.conftest import CliResult, _cli_command
from tests.e2e.daemon_harness import running_daemon

SECRET = """\
apiVersion: v1
kind: Secret
metadata:
  name: db
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: '{"data":{"password":"aHVudGVyMg=="}}'
data:
  password: aHVudGVyMg==
stringData:
  user: admin
"""


def _configmap(name: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  k: v\n"


def test_state_is_written_readable_by_its_owner_only(
        tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    (tmp_path / "in.yaml").write_text(SECRET)
    state = tmp_path / "fresh" / "state.json"
    old = os.umask(0o022)
    try:
        result = cli("simulate", str(tmp_path / "in.yaml"), "--state", str(state))
    finally:
        os.umask(old)
    assert result.code == 0, result.stderr
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.parent.stat().st_mode) == 0o700
    assert "aHVudGVyMg==" in state.read_text()  # the state keeps the data, privately
    assert not list(state.parent.glob("*.tmp"))


def test_a_second_writer_is_refused_while_a_daemon_holds_the_state(
        tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    (tmp_path / "a.yaml").write_text(_configmap("a"))
    (tmp_path / "b.yaml").write_text(_configmap("b"))
    state = tmp_path / "state.json"
    with running_daemon([str(tmp_path / "a.yaml"), "--state", str(state), "--listen",
                         "127.0.0.1:0", "--artifacts-listen", "127.0.0.1:0"],
                        tmp_path / "daemon.log") as daemon:
        second = cli("simulate", str(tmp_path / "b.yaml"), "--state", str(state))
        assert second.code == 2
        assert f"--state {state}: in use by another reconciler (pid {daemon.proc.pid})" \
            in second.stderr
        assert "Traceback" not in second.stderr
        assert daemon.stop() == 0
    names = {o["metadata"]["name"] for o in json.loads(state.read_text())["objects"]
             if o["kind"] == "ConfigMap"}
    assert "a" in names and "b" not in names
    # Once the daemon is gone the lock is free again.
    assert cli("simulate", str(tmp_path / "b.yaml"), "--state", str(state)).code == 0


def test_concurrent_runs_on_one_state_never_lose_a_change(tmp_path: Path) -> None:
    names = [f"cm-{i}" for i in range(6)]
    for name in names:
        (tmp_path / f"{name}.yaml").write_text(_configmap(name))
    state = tmp_path / "state.json"
    procs = {name: subprocess.Popen([*_cli_command(), "simulate", str(tmp_path / f"{name}.yaml"),
                                     "--state", str(state)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for name in names}
    outcomes = {}
    for name, proc in procs.items():
        _, stderr = proc.communicate(timeout=120)
        outcomes[name] = (proc.returncode, stderr)
    saved = {o["metadata"]["name"] for o in json.loads(state.read_text())["objects"]
             if o["kind"] == "ConfigMap"}
    for name, (code, stderr) in outcomes.items():
        # Each run either saved its change or was refused, saying why: never silently lost.
        if code == 0:
            assert name in saved, f"{name} exited 0 but its ConfigMap is not in the state"
        else:
            assert code == 2 and "in use by another reconciler" in stderr, stderr
            assert name not in saved
    assert any(code == 0 for code, _ in outcomes.values())


def test_simulate_output_masks_secret_values_unless_asked(
        tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    (tmp_path / "in.yaml").write_text(SECRET)
    for output in ("json", "yaml"):
        shown = cli("simulate", str(tmp_path / "in.yaml"), "-o", output)
        assert shown.code == 0, shown.stderr
        assert "aHVudGVyMg==" not in shown.stdout and "admin" not in shown.stdout
        assert "password" in shown.stdout  # the keys stay visible
    secret = next(o for o in cli("simulate", str(tmp_path / "in.yaml"), "-o", "json").json()
                  ["objects"] if o["kind"] == "Secret")
    assert set(secret["data"].values()) == {"++++++++"}
    revealed = cli("simulate", str(tmp_path / "in.yaml"), "-o", "json", "--show-secrets")
    assert "aHVudGVyMg==" in revealed.stdout


def test_a_state_file_of_the_wrong_shape_is_invalid_input(
        tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    state = tmp_path / "state.json"
    (tmp_path / "in.yaml").write_text(_configmap("a"))
    for content, expected in (
            ('{"version": 1, "objects": "x"}', "objects: expected a list"),
            ('{"version": 1, "objects": [{"apiVersion": "v1", "kind": "ConfigMap", '
             '"metadata": {"name": 7}}]}', "objects[0].metadata.name"),
            ('{"version": 1, "events": [{"reason": "x"}]}', "events[0]"),
            ("[1, 2]", "not a simulator state file"),
            ("{" * 20_000, str(state))):
        state.write_text(content)
        for args in (("tree", "--state", str(state)),
                     ("simulate", str(tmp_path / "in.yaml"), "--state", str(state)),
                     ("diff", str(tmp_path / "in.yaml"), "--state", str(state))):
            result = _run(args)
            assert result.code == 2, (args, content[:40], result.stderr)
            assert expected in result.stderr and "internal error" not in result.stderr


def test_budgets_that_are_not_finite_seconds_are_refused(
        tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    (tmp_path / "in.yaml").write_text(_configmap("a"))
    for budget in ("nan", "inf", "-1", "ten"):
        for command in ("simulate", "tree"):
            result = cli(command, str(tmp_path / "in.yaml"), "--budget", budget)
            assert result.code == 2, (command, budget, result.stdout)
            assert "--budget" in result.stderr


def _run(args: tuple[str, ...]) -> CliResult:
    proc = subprocess.run([*_cli_command(), *args], capture_output=True, text=True, timeout=120)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)
