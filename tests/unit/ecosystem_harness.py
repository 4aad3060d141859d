"""An in-memory cluster on a virtual clock with the simulated kpack, Knative and scanner, driven
round by round, and real source artifacts (an in-process `ArtifactStore`) for builds to fetch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reconciler.model.kinds import BUILTIN_KINDS
from reconciler.runtime.controller import Controller
from reconciler.sources.artifacts import ArtifactStore
from simulator.clock import VirtualClock
from simulator.cluster import InMemoryCluster
from simulator.ecosystem import ECOSYSTEM_KINDS, ImageBuilder, KnativeServing, Timing
from simulator.scanning import ImageScanner

NS = "apps"
KPACK = "kpack.io/v1alpha2"
KNATIVE = "serving.knative.dev/v1"
SCANNING = "scanning.apps.tanzu.vmware.com/v1beta1"
STORE_URL = "http://source-controller.ecosystem.test"


class Ecosystem:
    def __init__(self, tmp_path: Path, *, fetch_sources: bool = True) -> None:
        self.clock = VirtualClock()
        self.cluster = InMemoryCluster(self.clock, (*BUILTIN_KINDS, *ECOSYSTEM_KINDS))
        self.cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        timing = Timing(image_build=30.0, knative_rollout=5.0, image_scan=10.0)
        self.kpack = ImageBuilder(self.cluster, self.clock, timing, fetch_sources=fetch_sources)
        self.knative = KnativeServing(self.cluster, self.clock, timing)
        self.scanner = ImageScanner(self.cluster, self.clock, timing.image_scan)
        self.controllers: tuple[Controller, ...] = (self.kpack, self.knative, self.scanner)
        self.store = ArtifactStore(tmp_path / "store", STORE_URL)
        self._trees = tmp_path / "trees"
        self._revisions = 0

    def artifact(self, files: dict[str, str]) -> str:
        """A source artifact holding `files`; returns its (content-addressed) URL."""
        self._revisions += 1
        tree = self._trees / str(self._revisions)
        for rel, text in files.items():
            (tree / rel).parent.mkdir(parents=True, exist_ok=True)
            (tree / rel).write_text(text)
        tree.mkdir(parents=True, exist_ok=True)
        stored = self.store.store_directory("GitRepository", NS, "app",
                                            f"main@sha1:{self._revisions:040x}", tree,
                                            now="2026-01-01T00:00:00Z")
        return stored.url

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj.setdefault("metadata", {}).setdefault("namespace", NS)
        return self.cluster.apply(obj)

    def get(self, api_version: str, kind: str, name: str) -> dict[str, Any]:
        found = self.cluster.get(api_version, kind, NS, name)
        assert found is not None, f"{kind} {name} not found"
        return found

    def names(self, api_version: str, kind: str) -> list[str]:
        return sorted(o["metadata"]["name"] for o in self.cluster.list(api_version, kind, NS))

    def step(self) -> list[float | None]:
        """One round: every controller reconciles every object it watches, once."""
        wakes: list[float | None] = []
        for controller in self.controllers:
            for api_version, kind in controller.watches():
                for obj in self.cluster.list(api_version, kind):
                    wakes.append(controller.reconcile(obj))
        return wakes

    def settle(self, rounds: int = 100) -> float:
        """Reconcile every watched object until nothing changes, moving virtual time to the
        earliest wake-up; returns the virtual seconds that passed."""
        start = self.clock.now()
        for _ in range(rounds):
            before = self.cluster.revision
            wakes = self.step()
            if self.cluster.revision != before:
                continue
            due = [w for w in wakes if w is not None]
            if not due:
                return self.clock.now() - start
            self.clock.advance(max(min(due), 0.001))
        raise AssertionError("the simulated ecosystem did not settle")


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == type_)


def image(name: str, url: str, *, tag: str = "registry.example.com/apps/web",
          **spec: Any) -> dict[str, Any]:
    return {"apiVersion": KPACK, "kind": "Image", "metadata": {"name": name},
            "spec": {"tag": tag, "builder": {"kind": "ClusterBuilder", "name": "default"},
                     "source": {"blob": {"url": url}}, **spec}}
