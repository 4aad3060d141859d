"""The SQLite `--state`: the same cluster back as the JSON form gives, saves that write only
what changed, one transaction each, private files, and a database we did not write refused."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from reconciler.model.errors import LoadError
from simulator.environment import SimulatedEnvironment
from simulator.statestore import SqliteState, is_sqlite, wants_sqlite


def _configmap(name: str, value: str = "v", namespace: str = "default") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace}, "data": {"k": value}}


def _filled(count: int) -> SimulatedEnvironment:
    env = SimulatedEnvironment()
    for i in range(count):
        obj = env.cluster.apply(_configmap(f"cm-{i}"))
        env.cluster.emit_event(obj, "Normal", "Created", f"made cm-{i}")
    env.advance(42.5)
    return env


def _objects(env: SimulatedEnvironment) -> list[dict[str, Any]]:
    return env.cluster.all_objects()


def _rows(path: Path, table: str) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        db.close()


def test_a_saved_database_loads_back_the_same_cluster_as_json_does(tmp_path: Path) -> None:
    env = _filled(5)
    env.save_state(tmp_path / "state.db")
    env.save_state(tmp_path / "state.json")
    assert is_sqlite(tmp_path / "state.db")
    assert not is_sqlite(tmp_path / "state.json")
    from_db, from_json = SimulatedEnvironment(), SimulatedEnvironment()
    from_db.load_state(tmp_path / "state.db")
    from_json.load_state(tmp_path / "state.json")
    assert _objects(from_db) == _objects(from_json) == _objects(env)
    assert from_db.cluster.events() == env.cluster.events()  # in the order recorded
    assert from_db.clock.now() == env.clock.now()
    assert from_db.cluster.resource_version == env.cluster.resource_version


def test_after_a_load_a_save_writes_only_what_changed(tmp_path: Path) -> None:
    path = tmp_path / "state"
    first = _filled(50)
    first.save_state(path)
    env = SimulatedEnvironment()
    env.load_state(path)
    database = env._databases[path.resolve()]
    assert database.save(env.cluster, env.clock.now()) == 0  # nothing changed
    env.cluster.apply(_configmap("cm-7", "changed"))
    env.cluster.delete("v1", "ConfigMap", "default", "cm-8")
    assert database.save(env.cluster, env.clock.now()) == 2
    again = SimulatedEnvironment()
    again.load_state(path)
    changed = again.cluster.get("v1", "ConfigMap", "default", "cm-7")
    assert changed is not None and changed["data"] == {"k": "changed"}
    assert again.cluster.get("v1", "ConfigMap", "default", "cm-8") is None
    assert _objects(again) == _objects(env)


def test_a_repeated_event_is_saved_with_its_new_count(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    env = _filled(3)
    env.save_state(path)
    obj = env.cluster.get("v1", "ConfigMap", "default", "cm-1")
    assert obj is not None
    env.cluster.emit_event(obj, "Normal", "Created", "made cm-1")
    env.save_state(path)
    again = SimulatedEnvironment()
    again.load_state(path)
    counts = {e["message"]: e["count"] for e in again.cluster.events()}
    assert counts["made cm-1"] == 2 and counts["made cm-0"] == 1


def test_the_database_and_its_wal_are_private(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    old = os.umask(0o022)
    try:
        _filled(2).save_state(path)
    finally:
        os.umask(old)
    for candidate in (path, tmp_path / "state.db-wal", tmp_path / "state.db-shm"):
        if candidate.exists():
            assert stat.S_IMODE(candidate.stat().st_mode) == 0o600, candidate


def test_the_format_follows_the_file_not_only_its_name(tmp_path: Path) -> None:
    assert wants_sqlite(tmp_path / "new.db") and wants_sqlite(tmp_path / "new")
    assert not wants_sqlite(tmp_path / "new.json")
    legacy = tmp_path / "legacy-state"
    _filled(1).save_state(tmp_path / "x.json")
    (tmp_path / "x.json").rename(legacy)
    assert not wants_sqlite(legacy)  # an existing JSON state stays JSON
    env = SimulatedEnvironment()
    env.load_state(legacy)
    env.save_state(legacy)
    assert json.loads(legacy.read_text())["version"] == 1


def test_a_database_we_did_not_write_is_refused_naming_it(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    with pytest.raises(LoadError, match="not a simulator state database"):
        SimulatedEnvironment().load_state(other)


def test_a_row_that_is_not_an_object_is_refused_naming_the_row(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    _filled(1).save_state(path)
    db = sqlite3.connect(path)
    db.execute("UPDATE objects SET body = '[1]' WHERE name = 'cm-0'")
    db.execute("UPDATE objects SET body = '{' WHERE kind = 'CustomResourceDefinition'")
    db.commit()
    db.close()
    with pytest.raises(LoadError) as caught:
        SimulatedEnvironment().load_state(path)
    assert "not JSON" in str(caught.value)
    db = sqlite3.connect(path)
    db.execute("DELETE FROM objects WHERE kind = 'CustomResourceDefinition'")
    db.commit()
    db.close()
    with pytest.raises(LoadError, match=r"objects\[\d+\]: expected an object"):
        SimulatedEnvironment().load_state(path)


def test_a_corrupt_database_is_an_input_error_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    _filled(3).save_state(path)
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)
    path.write_bytes(bytes(data))
    with pytest.raises(LoadError):
        SimulatedEnvironment().load_state(path)


_SAVER = """
import sys
from pathlib import Path
from simulator.environment import SimulatedEnvironment
env = SimulatedEnvironment()
path = Path(sys.argv[1])
i = 0
while True:
    for j in range(20):
        env.cluster.apply({"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": f"cm-{j}", "namespace": "default"},
                           "data": {"k": str(i)}})
    env.save_state(path)
    i += 1
    if i == 3:
        print("saving", flush=True)
"""


def test_kill_9_mid_save_leaves_the_last_whole_save(tmp_path: Path) -> None:
    """A writer killed at an arbitrary point of its save loop: the database opens, and every
    ConfigMap holds the value of one and the same save (a save is one transaction)."""
    path = tmp_path / "state.db"
    proc = subprocess.Popen([sys.executable, "-c", _SAVER, str(path)], stdout=subprocess.PIPE,
                            cwd=Path(__file__).resolve().parents[2])
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"saving"
    time.sleep(0.3)
    proc.kill()
    proc.wait()
    proc.stdout.close()
    env = SimulatedEnvironment()
    env.load_state(path)
    values = {o["data"]["k"] for o in env.cluster.list("v1", "ConfigMap", "default")}
    assert len(values) == 1, values
    assert int(values.pop()) >= 2


def test_sqlite_state_reads_are_bounded(tmp_path: Path) -> None:
    from reconciler.model.limits import Limits

    path = tmp_path / "state.db"
    _filled(3).save_state(path)
    with pytest.raises(LoadError, match="too large"):
        SqliteState(path).read(Limits(state_bytes=1024))
