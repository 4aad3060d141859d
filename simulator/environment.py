"""The simulated environment: in-memory cluster, virtual clock and ecosystem controllers."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from reconciler.engine.controller import Controller
from reconciler.model.crds import product_crds
from reconciler.model.errors import LoadError
from reconciler.model.kinds import BUILTIN_KINDS
from simulator.clock import VirtualClock
from simulator.cluster import InMemoryCluster
from simulator.ecosystem import ECOSYSTEM_KINDS, ImageBuilder, KnativeServing, Timing
from simulator.kube_controllers import kube_controllers
from simulator.tekton import TektonRuns

STATE_VERSION = 1


class SimulatedEnvironment:
    stateful = True
    def __init__(self, timing: Timing | None = None) -> None:
        self.clock = VirtualClock()
        self.cluster = InMemoryCluster(self.clock, (*BUILTIN_KINDS, *ECOSYSTEM_KINDS))
        self.backend = self.cluster
        for crd in product_crds():
            self.cluster.apply(crd)
        timing = timing or Timing()
        self.controllers: Sequence[Controller] = (
            ImageBuilder(self.cluster, self.clock, timing),
            KnativeServing(self.cluster, self.clock, timing),
            TektonRuns(self.cluster, self.clock),
            *kube_controllers(self.cluster, self.clock),
        )

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def revision(self) -> int:
        return self.cluster.revision

    def save_state(self, path: Path) -> None:
        state = {"version": STATE_VERSION, "clock": self.clock.now(), **self.cluster.snapshot()}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
        tmp.replace(path)

    def load_state(self, path: Path) -> None:
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise LoadError(str(path), f"cannot read simulator state: {exc}") from exc
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise LoadError(str(path), f"not a simulator state file (version {STATE_VERSION})")
        self.clock.set(float(state.get("clock", 0)))
        self.cluster.restore(state)


def create_environment() -> SimulatedEnvironment:
    return SimulatedEnvironment()
