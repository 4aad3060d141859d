"""The simulated cluster's `--state` as an SQLite database: incremental, transactional saves.

The JSON state file rewrites every object on every save (10,000 workloads: hundreds of MB). This
store keeps one row per object and per Event and, once attached to a cluster, writes only what
changed since its last save: the keys the cluster's change feed reports written or removed
after the saved revision, and the Events whose resourceVersion is newer than the saved sequence.
Each save is one transaction in WAL mode, so a crash (even kill -9) mid-save leaves the previous
save whole, and never loses more than the save in progress.

The database and its `-wal`/`-shm` companions hold Secret data: they are created 0600. What is
read back is bounded and shape-checked like the JSON form (`environment.read_state`'s checks).
The JSON form stays the export: `--state FILE.json` keeps writing it, and `export_json` turns a
database into it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from reconciler.model.errors import LoadError
from reconciler.model.limits import DEFAULT_LIMITS, Limits
from simulator.cluster import InMemoryCluster, Key

SQLITE_MAGIC: Final = b"SQLite format 3\x00"
SCHEMA_VERSION: Final = 1

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS objects (
    grp TEXT NOT NULL, kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (grp, kind, namespace, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    namespace TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL,
    UNIQUE (namespace, name));
"""


def is_sqlite(path: Path) -> bool:
    """Whether `path` holds an SQLite database (by its header, not its name)."""
    try:
        with path.open("rb") as handle:
            return handle.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        return False


def wants_sqlite(path: Path) -> bool:
    """The format a save to `path` uses: what is there already, else JSON for `*.json`."""
    if path.exists():
        return is_sqlite(path)
    return path.suffix.lower() != ".json"


class SqliteState:
    """One database file; `save` writes what changed in the cluster it is attached to."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._attached: InMemoryCluster | None = None
        self._saved_revision = -1
        self._saved_sequence = -1
        self._saved_events: set[tuple[str, str]] = set()

    # --- reading ---------------------------------------------------------------------------

    def read(self, limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
        """The state as the JSON form's dict (`version`, `clock`, `revision`, `sequence`,
        `objects`, `events`); raises `LoadError` naming the row for anything we did not write."""
        size = _size(self.path)
        if size > limits.state_bytes:
            raise LoadError(str(self.path), f"state database is too large: {size} bytes, the "
                                            f"limit is {limits.state_bytes} bytes")
        try:
            with _connect(self.path, readonly=True) as db:
                meta = dict(db.execute("SELECT key, value FROM meta"))
                objects = [_row(body, f"objects[{grp}/{kind} {ns}/{name}]", limits)
                           for grp, kind, ns, name, body in db.execute(
                               "SELECT grp, kind, namespace, name, body FROM objects")]
                events = [_row(body, f"events[{ns}/{name}]", limits)
                          for ns, name, body in db.execute(
                              "SELECT namespace, name, body FROM events ORDER BY rowid")]
        except sqlite3.Error as exc:
            raise LoadError(str(self.path), f"not a simulator state database: {exc}") from exc
        if meta.get("version") != str(SCHEMA_VERSION):
            raise LoadError(str(self.path), "not a simulator state database (schema version "
                                            f"{SCHEMA_VERSION}); meta.version is "
                                            f"{meta.get('version')!r}")
        state: dict[str, Any] = {"version": 1, "objects": objects, "events": events}
        for field, kind in (("clock", float), ("revision", int), ("sequence", int)):
            if field in meta:
                try:
                    state[field] = kind(meta[field])
                except ValueError:
                    raise LoadError(str(self.path), f"meta.{field}: expected a number, got "
                                                    f"{meta[field]!r}") from None
        return state

    def attach(self, cluster: InMemoryCluster, state: Mapping[str, Any]) -> None:
        """`cluster` was just restored from `state` (read from this file): later saves write
        only what changes from here."""
        self._attached = cluster
        self._saved_revision = cluster.revision
        self._saved_sequence = cluster.resource_version
        self._saved_events = {_event_key(e) for e in state.get("events") or []}

    # --- writing ---------------------------------------------------------------------------

    def save(self, cluster: InMemoryCluster, clock: float) -> int:
        """Write the cluster's changes since the last save (everything, the first time or for
        another cluster) in one transaction; returns the number of rows written or deleted."""
        full = self._attached is not cluster
        _create_private(self.path)
        with _connect(self.path, readonly=False) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                written = self._write(db, cluster, full)
                meta = {"version": str(SCHEMA_VERSION), "clock": repr(float(clock)),
                        "revision": str(cluster.revision),
                        "sequence": str(cluster.resource_version)}
                db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                               meta.items())
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        self._attached = cluster
        self._saved_revision = cluster.revision
        self._saved_sequence = cluster.resource_version
        return written

    def _write(self, db: sqlite3.Connection, cluster: InMemoryCluster, full: bool) -> int:
        if full:
            db.execute("DELETE FROM objects")
            db.execute("DELETE FROM events")
            self._saved_events = set()
            keys: list[Key] = cluster.stored_keys()
        else:
            keys = cluster.changed_since(self._saved_revision)
        upserts, deletes = [], []
        for key in keys:
            obj = cluster.stored(key)
            if obj is None:
                deletes.append(key)
            else:
                upserts.append((*key, json.dumps(obj, sort_keys=True, separators=(",", ":"))))
        db.executemany("INSERT OR REPLACE INTO objects (grp, kind, namespace, name, body) "
                       "VALUES (?, ?, ?, ?, ?)", upserts)
        db.executemany("DELETE FROM objects WHERE grp = ? AND kind = ? AND namespace = ? "
                       "AND name = ?", deletes)
        events = cluster.stored_events()
        current = {_event_key(e) for e in events}
        fresh = [(*_event_key(e), json.dumps(e, sort_keys=True, separators=(",", ":")))
                 for e in events
                 if full or _int((e.get("metadata") or {}).get("resourceVersion"))
                 > self._saved_sequence]
        gone = sorted(self._saved_events - current)
        # An upsert keeps a repeated Event's row (and rowid: the order Events were recorded in).
        db.executemany("INSERT INTO events (namespace, name, body) VALUES (?, ?, ?) "
                       "ON CONFLICT (namespace, name) DO UPDATE SET body = excluded.body", fresh)
        db.executemany("DELETE FROM events WHERE namespace = ? AND name = ?", gone)
        self._saved_events = current
        return len(upserts) + len(deletes) + len(fresh) + len(gone)


def export_json(state: Mapping[str, Any]) -> str:
    """The JSON form of a state read from either format."""
    return json.dumps(dict(state), indent=1, sort_keys=True)


# --- internals -------------------------------------------------------------------------------


@contextlib.contextmanager
def _connect(path: Path, *, readonly: bool) -> Iterator[sqlite3.Connection]:
    """A connection in autocommit mode (transactions are explicit), closed on exit."""
    if readonly:
        db = sqlite3.connect(f"file:{path}?mode=rw", uri=True, isolation_level=None)
    else:
        db = sqlite3.connect(path, isolation_level=None)
    try:
        if not readonly:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
        yield db
    finally:
        db.close()


def _create_private(path: Path) -> None:
    """The database and its WAL companions are created 0600 (SQLite gives the companions the
    database's own mode)."""
    for candidate in (path, path.with_name(path.name + "-wal"),
                      path.with_name(path.name + "-shm")):
        try:
            fd = os.open(candidate, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise LoadError(str(path), f"cannot create the state database: {exc.strerror}") \
                from exc
        os.fchmod(fd, 0o600)
        os.close(fd)


def _size(path: Path) -> int:
    total = 0
    for candidate in (path, path.with_name(path.name + "-wal")):
        try:
            total += candidate.stat().st_size
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise LoadError(str(path), f"cannot read simulator state: {exc.strerror}") from exc
    return total


def _row(body: str, where: str, limits: Limits) -> Any:
    if len(body) > limits.object_bytes:
        raise LoadError(where, f"row is too large: {len(body)} bytes, the limit is "
                               f"{limits.object_bytes} bytes")
    try:
        return json.loads(body)
    except ValueError as exc:
        raise LoadError(where, f"not JSON: {exc}") from exc


def _event_key(event: Mapping[str, Any]) -> tuple[str, str]:
    meta = event.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
