"""`--state` as an SQLite database, as a user meets it: `simulate` runs that continue from the
saved cluster, and a daemon that checkpoints while it runs, so kill -9 loses at most the last
interval instead of everything since it started."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path

from reconciler.model.errors import LoadError
from simulator.environment import SimulatedEnvironment
from simulator.statestore import is_sqlite
from tests.conftest import CliResult
from tests.e2e.daemon_harness import running_daemon, wait_for


def _configmap(name: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  k: v\n"


def _configmaps(state: Path) -> set[str]:
    env = SimulatedEnvironment()
    env.load_state(state)
    return {o["metadata"]["name"] for o in env.cluster.list("v1", "ConfigMap", "default")}


def test_simulate_continues_from_a_database_and_exports_json(
        tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    (tmp_path / "a.yaml").write_text(_configmap("a"))
    (tmp_path / "b.yaml").write_text(_configmap("b"))
    state = tmp_path / "cluster.db"
    assert cli("simulate", str(tmp_path / "a.yaml"), "--state", str(state)).code == 0
    assert is_sqlite(state)
    assert cli("simulate", str(tmp_path / "b.yaml"), "--state", str(state)).code == 0
    assert _configmaps(state) == {"a", "b"}
    out = cli("tree", "--state", str(state), "-o", "json")
    assert out.code == 0, out.stderr
    json.loads(out.stdout)


def test_a_killed_daemon_keeps_what_it_checkpointed(tmp_path: Path) -> None:
    (tmp_path / "in.yaml").write_text(_configmap("kept"))
    state = tmp_path / "daemon.db"
    with running_daemon([str(tmp_path / "in.yaml"), "--state", str(state), "--listen",
                         "127.0.0.1:0", "--artifacts-listen", "127.0.0.1:0"],
                        tmp_path / "daemon.log",
                        env={"RECONCILER_DAEMON_STATE_SAVE_SECONDS": "0.2"}) as daemon:
        def checkpointed() -> bool | None:
            try:
                return True if "kept" in _configmaps(state) else None
            except LoadError:  # not written yet, or its tables not created yet
                return None

        wait_for("a checkpoint holding the input", checkpointed)
        daemon.proc.send_signal(signal.SIGKILL)
        daemon.proc.wait(timeout=10)
    assert _configmaps(state) == {"kept"}


def test_a_database_converts_to_its_json_export_and_back(
        tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    (tmp_path / "a.yaml").write_text(_configmap("a"))
    database = tmp_path / "cluster.db"
    assert cli("simulate", str(tmp_path / "a.yaml"), "--state", str(database)).code == 0
    exported = tmp_path / "cluster.json"
    assert cli("state", "convert", str(database), str(exported)).code == 0
    assert json.loads(exported.read_text())["version"] == 1
    back = tmp_path / "again.db"
    assert cli("state", "convert", str(exported), str(back)).code == 0
    assert is_sqlite(back) and _configmaps(back) == _configmaps(database) == {"a"}
    refused = cli("state", "convert", str(database), str(exported))
    assert refused.code == 2 and "already exists" in refused.stderr
