"""The simulated environment: in-memory cluster, virtual clock and ecosystem controllers."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from reconciler.model.crds import product_crds
from reconciler.model.errors import LoadError
from reconciler.model.kinds import BUILTIN_KINDS
from reconciler.model.limits import DEFAULT_LIMITS
from reconciler.model.yamlsafe import load_json_bounded
from reconciler.runtime.controller import Controller
from reconciler.runtime.statefile import write_private
from simulator.clock import VirtualClock
from simulator.cluster import InMemoryCluster
from simulator.ecosystem import ECOSYSTEM_KINDS, ImageBuilder, KnativeServing, Timing
from simulator.kube_controllers import kube_controllers
from simulator.scanning import ImageScanner
from simulator.statestore import SqliteState, is_sqlite, wants_sqlite
from simulator.tekton import TektonRuns

STATE_VERSION = 1


class SimulatedEnvironment:
    stateful = True
    virtual_clock = True
    def __init__(self, timing: Timing | None = None) -> None:
        self.clock = VirtualClock()
        self._databases: dict[Path, SqliteState] = {}
        self.cluster = InMemoryCluster(self.clock, (*BUILTIN_KINDS, *ECOSYSTEM_KINDS))
        self.backend = self.cluster
        for crd in product_crds():
            self.cluster.apply(crd)
        timing = timing or Timing()
        self.controllers: Sequence[Controller] = (
            ImageBuilder(self.cluster, self.clock, timing),
            KnativeServing(self.cluster, self.clock, timing),
            ImageScanner(self.cluster, self.clock, timing.image_scan),
            TektonRuns(self.cluster, self.clock),
            *kube_controllers(self.cluster, self.clock),
        )

    def configure_for_dry_run(self) -> None:
        """`reconciler diff`: controllers with effects outside the cluster (the git-writer's
        pushes) keep them to themselves."""
        for controller in self.controllers:
            configure = getattr(controller, "configure_for_dry_run", None)
            if callable(configure):
                configure()

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def revision(self) -> int:
        return self.cluster.revision

    def save_state(self, path: Path) -> None:
        """Write the cluster (Secrets included) to `path`, 0600: an SQLite database written
        incrementally, one transaction per save (`simulator.statestore`), or, for a `*.json`
        path (or an existing JSON file), the whole cluster as JSON, atomically."""
        if wants_sqlite(path):
            self._database(path).save(self.cluster, self.clock.now())
            return
        state = {"version": STATE_VERSION, "clock": self.clock.now(), **self.cluster.snapshot()}
        write_private(path, json.dumps(state, indent=1, sort_keys=True))

    def load_state(self, path: Path) -> None:
        """Raises `LoadError` naming the field for a file that is not a state we wrote."""
        if is_sqlite(path):
            database = self._database(path)
            state = database.read()
            _check_shape(path, state)
            self.clock.set(float(state.get("clock", 0)))
            self.cluster.restore(state)
            database.attach(self.cluster, state)
            return
        state = read_state(path)
        self.clock.set(float(state.get("clock", 0)))
        self.cluster.restore(state)

    def _database(self, path: Path) -> SqliteState:
        key = path.resolve()
        if key not in self._databases:
            self._databases[key] = SqliteState(path)
        return self._databases[key]


def read_state(path: Path) -> dict[str, Any]:
    """A state file (SQLite or JSON), parsed with bounds and checked for the shape
    `save_state` writes."""
    if is_sqlite(path):
        state = SqliteState(path).read()
    else:
        try:
            size = path.stat().st_size
            if size > DEFAULT_LIMITS.state_bytes:
                raise LoadError(str(path), f"state file is too large: {size} bytes, the limit "
                                           f"is {DEFAULT_LIMITS.state_bytes} bytes")
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise LoadError(str(path), f"cannot read simulator state: {exc}") from exc
        state = load_json_bounded(text, str(path), max_bytes=DEFAULT_LIMITS.state_bytes)
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        raise LoadError(str(path), f"not a simulator state file (version {STATE_VERSION})")
    _check_shape(path, state)
    return state


def _check_shape(path: Path, state: dict[str, Any]) -> None:
    problems = list(_shape_problems(state))
    if problems:
        raise LoadError(str(path), "not a simulator state file: " + "; ".join(problems[:5]))


def _shape_problems(state: dict[str, Any]) -> Iterator[str]:
    for field, kind in (("clock", (int, float)), ("revision", int)):
        if field in state and (not isinstance(state[field], kind)
                               or isinstance(state[field], bool)):
            yield f"{field}: expected a number, got {_kind(state[field])}"
    for field in ("objects", "events"):
        if not isinstance(state.get(field, []), list):
            yield f"{field}: expected a list, got {_kind(state[field])}"
            return
    for i, obj in enumerate(state.get("objects", [])):
        where = f"objects[{i}]"
        if not isinstance(obj, dict):
            yield f"{where}: expected an object, got {_kind(obj)}"
            continue
        for field in ("apiVersion", "kind"):
            if not isinstance(obj.get(field), str) or not obj[field]:
                yield f"{where}.{field}: expected a non-empty string"
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            yield f"{where}.metadata: expected an object, got {_kind(meta)}"
            continue
        if not isinstance(meta.get("name"), str) or not meta["name"]:
            yield f"{where}.metadata.name: expected a non-empty string"
        if not isinstance(meta.get("namespace", ""), str):
            yield f"{where}.metadata.namespace: expected a string"
    for i, event in enumerate(state.get("events", [])):
        where = f"events[{i}]"
        if not isinstance(event, dict) or not isinstance(event.get("involvedObject"), dict):
            yield f"{where}: expected an event with an involvedObject"
        elif not isinstance(event.get("reason"), str) or not isinstance(event.get("message"),
                                                                        str):
            yield f"{where}: expected string reason and message"


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def create_environment() -> SimulatedEnvironment:
    return SimulatedEnvironment()
