"""Crash consistency: `reconciler run` killed with SIGKILL at seeded random moments while it
works, restarted, again and again; at the end its cluster must equal a cluster where the same
final inputs were reconciled by a daemon that never crashed.

Each round changes the inputs through the API (the daemon's own input folder holds only a
Namespace, so a restart does not re-apply stale inputs): some Workloads get a new greeting,
sometimes a Workload is deleted (its ConfigMap must go: no orphan) and another created,
sometimes the ClusterTemplate renames what it stamps (the old ConfigMaps must be cleaned up,
the new ones made). Then a daemon starts, and is killed -9 after a seeded delay that falls
anywhere from its start-up to the middle of applying, cleaning up or writing status.

The comparison is over Workloads and the ConfigMaps they own, minus what differs between any
two clusters (uid, resourceVersion, generation, timestamps, managedFields, owner uids).
Used by tests/faults (short form) and benchmarks/crash_loop.py (long form).
"""

from __future__ import annotations

import os
import random
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.apiserver.conftest import Served, start_server
from tests.conftest import _cli_command
from tests.e2e.daemon_harness import running_daemon, without_volatile
from tests.faults.matrix import Matrix, ready_at_generation

NAMESPACE = "crash"
CARTO = "/apis/carto.run/v1alpha1"
VOLATILE = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields")


def template(suffix: str) -> dict[str, Any]:
    return {"apiVersion": "carto.run/v1alpha1", "kind": "ClusterTemplate",
            "metadata": {"name": "greeting"},
            "spec": {"template": {
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": f"$(workload.metadata.name)$-{suffix}"},
                "data": {"greeting": "$(params.greeting)$"}}}}


CHAIN = {"apiVersion": "carto.run/v1alpha1", "kind": "ClusterSupplyChain",
         "metadata": {"name": "greeter"},
         "spec": {"selector": {"app.example.com/type": "greeter"},
                  "params": [{"name": "greeting", "default": "hello"}],
                  "resources": [{"name": "greeting", "templateRef": {
                      "kind": "ClusterTemplate", "name": "greeting"}}]}}


def workload(name: str, greeting: str) -> dict[str, Any]:
    return {"apiVersion": "carto.run/v1alpha1", "kind": "Workload",
            "metadata": {"name": name, "namespace": NAMESPACE,
                         "labels": {"app.example.com/type": "greeter"}},
            "spec": {"params": [{"name": "greeting", "value": greeting}]}}


@dataclass
class Desired:
    """The inputs as they stand: Workloads and their greetings, the template's suffix."""

    greetings: dict[str, str] = field(default_factory=dict)
    suffix: str = "greeting"
    serial: int = 0


class Cluster:
    """A served cluster and the observer's (fault-exempt) requests to it."""

    def __init__(self, served: Served, tmp: Path) -> None:
        self.served, self.tmp = served, tmp
        self.inputs = tmp / "inputs"
        self.inputs.mkdir(exist_ok=True)
        (self.inputs / "namespace.yaml").write_text(
            f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NAMESPACE}\n")
        # Matrix's request helpers (exempt header, retry while the server is away).
        self.api = Matrix(served, None, [], 0)  # type: ignore[arg-type]
        self.uids: dict[str, str] = {}  # Workload name -> uid it was made with

    def call(self, method: str, path: str, body: Any = None,
             content_type: str = "application/json") -> tuple[int, Any]:
        return self.api.call(method, path, body, content_type)

    def put_object(self, path: str, obj: dict[str, Any]) -> None:
        """Create `obj` at collection `path`, or merge-patch its spec (the daemon writes status
        meanwhile, so a replace would race it)."""
        name = obj["metadata"]["name"]
        code, _ = self.call("GET", f"{path}/{name}")
        if code == 404:
            code, body = self.call("POST", path, obj)
            assert code == 201, body
            self.uids[name] = body["metadata"]["uid"]
            return
        code, body = self.call("PATCH", f"{path}/{name}", {"spec": obj["spec"]},
                               "application/merge-patch+json")
        assert code == 200, body

    def start_inputs(self, desired: Desired) -> None:
        code, body = self.call("POST", "/api/v1/namespaces", {
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        assert code in (201, 409), body
        self.apply(desired)

    def delete_gone(self, desired: Desired, previous: Desired) -> None:
        """Delete the Workloads `desired` no longer has (their ConfigMaps go with them, by
        the garbage collector)."""
        for name in sorted(set(previous.greetings) - set(desired.greetings)):
            code, body = self.call("DELETE", f"{CARTO}/namespaces/{NAMESPACE}/workloads/{name}")
            assert code in (200, 202, 404), body

    def apply(self, desired: Desired, previous: Desired | None = None) -> None:
        self.put_object(f"{CARTO}/clustertemplates", template(desired.suffix))
        self.put_object(f"{CARTO}/clustersupplychains", CHAIN)
        for name, greeting in sorted(desired.greetings.items()):
            if previous is None or previous.greetings.get(name) != greeting:
                self.put_object(f"{CARTO}/namespaces/{NAMESPACE}/workloads",
                                workload(name, greeting))

    def snapshot(self) -> dict[tuple[str, str], dict[str, Any]]:
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for path in (f"{CARTO}/namespaces/{NAMESPACE}/workloads",
                     f"/api/v1/namespaces/{NAMESPACE}/configmaps"):
            code, body = self.call("GET", path)
            assert code == 200, body
            for item in body["items"]:
                if item["metadata"]["name"] == "kube-root-ca.crt":
                    continue  # the cluster's, not the product's
                kind = "Workload" if "workloads" in path else "ConfigMap"
                found[(kind, item["metadata"]["name"])] = item
        return found

    def converged(self, desired: Desired) -> dict[tuple[str, str], dict[str, Any]] | None:
        objects = self.snapshot()
        wanted = {("Workload", n) for n in desired.greetings} | {
            ("ConfigMap", f"{n}-{desired.suffix}") for n in desired.greetings}
        if set(objects) != wanted:
            return None
        for name, greeting in desired.greetings.items():
            if not ready_at_generation(objects[("Workload", name)]):
                return None
            if objects[("ConfigMap", f"{name}-{desired.suffix}")].get("data") != {
                    "greeting": greeting}:
                return None
        return objects

    def wait_converged(self, desired: Desired, seconds: float) -> dict[tuple[str, str],
                                                                      dict[str, Any]]:
        deadline = time.monotonic() + seconds
        last: dict[tuple[str, str], dict[str, Any]] = {}
        while time.monotonic() < deadline:
            found = self.converged(desired)
            if found is not None:
                return found
            time.sleep(0.1)
            last = self.snapshot()
        raise AssertionError(f"not converged to {desired} in {seconds}s: have "
                             f"{sorted(last)}")

    @contextmanager
    def daemon(self, log: Path) -> Iterator[None]:
        with running_daemon(
                [str(self.inputs), "--environment", "kubernetes", "--listen", "127.0.0.1:0",
                 "--artifacts-listen", "127.0.0.1:0", "--tick", "0.2"], log,
                env={"RECONCILER_KUBECONFIG": str(self.served.kubeconfig)}) as daemon:
            yield
            assert daemon.stop() == 0, daemon.stderr_tail()


def normalized(obj: dict[str, Any]) -> dict[str, Any]:
    return without_volatile(obj, VOLATILE, ("lastTransitionTime", "observedGeneration", "uid"))


@dataclass
class CrashReport:
    crashes: int
    killed_in_start_up: int
    divergent: list[str]
    orphans: list[str]
    remade: list[str]
    exits: list[str]
    seconds: float


def change(desired: Desired, rng: random.Random) -> Desired:
    """The next inputs: new greetings for some Workloads, sometimes one replaced, sometimes the
    template's suffix changed."""
    greetings = dict(desired.greetings)
    serial = desired.serial + 1
    for name in rng.sample(sorted(greetings), k=max(1, len(greetings) // 2)):
        greetings[name] = f"g{serial}"
    if rng.random() < 0.3 and len(greetings) > 1:
        del greetings[rng.choice(sorted(greetings))]
        greetings[f"app-{serial:04d}"] = f"g{serial}"
    suffix = desired.suffix
    if rng.random() < 0.2:
        suffix = f"v{serial}"
    return Desired(greetings, suffix, serial)


def crash_loop(tmp: Path, crashes: int, workloads: int = 4, seed: int = 11,
               log: Any = None) -> CrashReport:
    """`crashes` rounds of change, start, kill -9; then a clean finish and the comparison."""
    rng = random.Random(seed)
    started = time.monotonic()
    desired = Desired({f"app-{i:04d}": "hello" for i in range(workloads)})
    early = 0
    exits: list[str] = []  # daemons that ended before their kill
    crash_dir = tmp / "crashing"
    crash_dir.mkdir()
    served = start_server(crash_dir, "--controllers", "ecosystem", "--faults", "off")
    try:
        cluster = Cluster(served, crash_dir)
        cluster.start_inputs(desired)
        for number in range(crashes):
            previous, desired = desired, change(desired, rng)
            # Deleted while no daemon runs: the simulated garbage collector acts only when an
            # owner is deleted, so a ConfigMap a running daemon applies just after its
            # Workload went (kube's collector would remove it) would stay; see the report.
            cluster.delete_gone(desired, previous)
            log_path = crash_dir / "run.log"
            with log_path.open("wb") as log_file:
                proc = subprocess.Popen(
                    [*_cli_command(), "run", str(cluster.inputs), "--environment",
                     "kubernetes", "--listen", "127.0.0.1:0", "--artifacts-listen",
                     "127.0.0.1:0", "--tick", "0.2", "--log-format", "json"],
                    stdout=subprocess.DEVNULL, stderr=log_file,
                    env={**os.environ, "RECONCILER_KUBECONFIG": str(served.kubeconfig)})
            try:
                if rng.random() < 0.2:
                    # Killed while it starts up (reading inputs, connecting, first lists).
                    cluster.apply(desired, previous)
                    time.sleep(rng.uniform(0.0, 0.8))
                    early += 1
                else:
                    # Killed in its work: the inputs change once it runs, the kill follows at a
                    # seeded moment (applying, cleaning up, writing status, or idle between).
                    deadline = time.monotonic() + 60
                    while "daemon started" not in log_path.read_text() and \
                            time.monotonic() < deadline and proc.poll() is None:
                        time.sleep(0.02)
                    time.sleep(rng.uniform(0.0, 0.3))
                    cluster.apply(desired, previous)
                    time.sleep(rng.uniform(0.0, 1.0))
            finally:
                if proc.poll() is not None:
                    tail = log_path.read_text().splitlines()[-5:]
                    exits.append(f"round {number + 1}: exit {proc.returncode}: "
                                 + " | ".join(tail))
                proc.kill()  # SIGKILL
                proc.wait(timeout=10)
            if log is not None:
                log(f"crash {number + 1}/{crashes}")
        with cluster.daemon(crash_dir / "final.log"):
            crashed = cluster.wait_converged(desired, 120)
            time.sleep(0.6)  # two ticks: nothing more moves
            crashed = cluster.wait_converged(desired, 30)
    finally:
        served.stop()

    clean_dir = tmp / "clean"
    clean_dir.mkdir()
    served = start_server(clean_dir, "--controllers", "ecosystem", "--faults", "off")
    try:
        clean = Cluster(served, clean_dir)
        clean.start_inputs(desired)
        with clean.daemon(clean_dir / "run.log"):
            reference = clean.wait_converged(desired, 120)
    finally:
        served.stop()

    divergent = [f"{kind}/{name}" for (kind, name) in sorted(set(crashed) | set(reference))
                 if (kind, name) not in crashed or (kind, name) not in reference or
                 normalized(crashed[(kind, name)]) != normalized(reference[(kind, name)])]
    wanted = {f"{n}-{desired.suffix}" for n in desired.greetings}
    orphans = [name for kind, name in crashed if kind == "ConfigMap" and name not in wanted]
    # Nothing deleted that should stay: each Workload still has the uid it was made with.
    remade = [name for (kind, name), obj in crashed.items()
              if kind == "Workload" and obj["metadata"]["uid"] != cluster.uids[name]]
    return CrashReport(crashes, early, divergent, orphans, remade, exits,
                       time.monotonic() - started)


