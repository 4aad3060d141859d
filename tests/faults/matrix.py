"""The fault matrix: `reconciler run` (KubernetesBackend) against `reconciler serve --faults`,
one fault kind at a time, and what each did to the daemon's work.

For each kind: from a converged cluster, the faults go on, every Workload's `greeting` param
changes (so the daemon has work to do under the fault), the faults stay on for a window, then
go off; the run then waits until every Workload is Ready at its generation with its ConfigMap
saying the new greeting. Reported per kind: faults injected (the server's count), reconciles
retried (the daemon's work-queue retries plus its request-level retries), objects lost
(expected objects missing at the end: must be 0), objects wrongly deleted (objects that should
have stayed whose uid changed, i.e. deleted and made again, or that vanished: must be 0), and
the seconds from the faults going off to convergence.

The observer (this module) sends `X-Reconciler-Faults: exempt`, so only the daemon is faulted.
Used by tests/faults (short form) and benchmarks/fault_matrix.py (long form).
"""

from __future__ import annotations

import json
import time
import urllib.error
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.apiserver.conftest import Served, start_server
from tests.e2e.daemon_harness import DaemonProcess, running_daemon

EXEMPT = {"X-Reconciler-Faults": "exempt"}

CHAIN = """\
apiVersion: carto.run/v1alpha1
kind: ClusterTemplate
metadata:
  name: greeting
spec:
  template:
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: $(workload.metadata.name)$-greeting
    data:
      greeting: $(params.greeting)$
---
apiVersion: carto.run/v1alpha1
kind: ClusterSupplyChain
metadata:
  name: greeter
spec:
  selector:
    app.example.com/type: greeter
  params:
    - name: greeting
      default: hello
  resources:
    - name: greeting
      templateRef:
        kind: ClusterTemplate
        name: greeting
"""

WORKLOAD = """\
---
apiVersion: carto.run/v1alpha1
kind: Workload
metadata:
  name: {name}
  namespace: default
  labels:
    app.example.com/type: greeter
spec:
  params:
    - name: greeting
      value: hello
"""

# Fault kind -> the SPEC switched on for its window ("outage" is a POST, not a SPEC).
KINDS: dict[str, str] = {
    "409": "409=0.3",
    "429": "429=0.3,retry-after=1",
    "500": "500=0.3",
    "503": "503=0.3",
    "slow": "slow=0.3,delay=300ms",
    "timeout": "timeout=0.1,hang=1s",
    "watch-cut": "watch-cut=1s",
    "outage": "",
}


@dataclass
class Row:
    kind: str
    injected: int
    retried: int
    lost: int
    wrongly_deleted: int
    converge_seconds: float

    def line(self) -> str:
        return (f"{self.kind:<10} {self.injected:>9} {self.retried:>8} {self.lost:>5} "
                f"{self.wrongly_deleted:>16} {self.converge_seconds:>12.1f}")


HEADER = (f"{'fault':<10} {'injected':>9} {'retried':>8} {'lost':>5} "
          f"{'wrongly_deleted':>16} {'converge_s':>12}")


class Matrix:
    """A served cluster with faults switchable, and the daemon running against it."""

    def __init__(self, served: Served, daemon: DaemonProcess, names: list[str],
                 seed: int) -> None:
        self.served, self.daemon, self.names, self.seed = served, daemon, names, seed
        self.round = 0

    # --- the observer's requests (never faulted) ---------------------------------------

    def call(self, method: str, path: str, body: Any = None,
             content_type: str = "application/json") -> tuple[int, Any]:
        data = body if isinstance(body, bytes) else (
            json.dumps(body).encode() if body is not None else None)
        for _ in range(100):
            try:
                return self.served.request(method, path, data,
                                           {**EXEMPT, "Content-Type": content_type})
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)  # the server is away (an outage): ask again
        raise AssertionError(f"{method} {path}: the server did not come back")

    def faults(self, spec: str) -> dict[str, Any]:
        code, body = self.call("PUT", "/debug/faults", spec.encode(), "text/plain")
        assert code == 200, body
        return dict(body)

    def counts(self) -> dict[str, int]:
        code, body = self.call("GET", "/debug/faults")
        assert code == 200, body
        return dict(body["injected"])

    def objects(self) -> dict[tuple[str, str], dict[str, Any]]:
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for path, kind in (("/apis/carto.run/v1alpha1/namespaces/default/workloads", "Workload"),
                           ("/api/v1/namespaces/default/configmaps", "ConfigMap")):
            code, body = self.call("GET", path)
            assert code == 200, body
            for item in body["items"]:
                name = item["metadata"]["name"]
                if kind == "ConfigMap" and not name.endswith("-greeting"):
                    continue
                found[(kind, name)] = item
        return found

    def expected_keys(self) -> set[tuple[str, str]]:
        return {(k, n) for name in self.names
                for k, n in (("Workload", name), ("ConfigMap", f"{name}-greeting"))}

    def converged(self, greeting: str) -> dict[tuple[str, str], dict[str, Any]] | None:
        objects = self.objects()
        if not self.expected_keys() <= set(objects):
            return None
        for name in self.names:
            if not ready_at_generation(objects[("Workload", name)]):
                return None
            if objects[("ConfigMap", f"{name}-greeting")].get("data") != {"greeting": greeting}:
                return None
        return objects

    def wait_converged(self, greeting: str, seconds: float) -> dict[tuple[str, str],
                                                                    dict[str, Any]]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = self.converged(greeting)
            if found is not None:
                return found
            time.sleep(0.1)
        raise AssertionError(f"not converged to greeting {greeting!r} in {seconds}s; daemon "
                             f"log:\n{self.daemon.stderr_tail()}")

    def set_greeting(self, greeting: str) -> None:
        for name in self.names:
            patch = {"spec": {"params": [{"name": "greeting", "value": greeting}]}}
            code, body = self.call(
                "PATCH", f"/apis/carto.run/v1alpha1/namespaces/default/workloads/{name}", patch,
                "application/merge-patch+json")
            assert code == 200, body

    def retried(self) -> int:
        metrics = self.daemon.metrics()
        total = 0.0
        for line in metrics.splitlines():
            if line.startswith("workqueue_retries_total{"):
                total += float(line.rsplit(" ", 1)[1])
        requests = sum(1 for e in self.daemon.log_events() if e.get("msg") == "retrying")
        return int(total) + requests

    # --- one row ---------------------------------------------------------------------

    def run(self, kind: str, window: float, converge_within: float = 90.0) -> Row:
        self.round += 1
        greeting = f"{kind}-{self.round}"
        before = self.wait_converged(self.current, converge_within)
        uids = {key: obj["metadata"]["uid"] for key, obj in before.items()}
        counted, retried = self.counts(), self.retried()
        if kind == "outage":
            code, body = self.call("POST", f"/debug/faults/outage?seconds={window}")
            assert code == 202, body
            time.sleep(0.3)  # (the outage starts just after its answer)
        else:
            self.faults(f"{KINDS[kind]},seed={self.seed + self.round}")
        self.set_greeting(greeting)
        time.sleep(window)
        self.faults("off")
        off = time.monotonic()
        after = self.wait_converged(greeting, converge_within)
        converge = time.monotonic() - off
        self.current = greeting
        counts = self.counts()
        injected = sum(counts.get(k, 0) - counted.get(k, 0) for k in counts)
        lost = len(self.expected_keys() - set(after))
        wrongly = sum(1 for key, uid in uids.items()
                      if key in after and after[key]["metadata"]["uid"] != uid) + lost
        return Row(kind, injected, self.retried() - retried, lost, wrongly, converge)

    current = "hello"


def ready_at_generation(workload: dict[str, Any]) -> bool:
    """The Workload's status speaks of its current generation and says Ready=True."""
    status = workload.get("status") or {}
    return status.get("observedGeneration") == workload["metadata"].get("generation") and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or [])


def write_inputs(folder: Path, count: int, workloads: bool = True) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"app-{i:03d}" for i in range(count)]
    (folder / "00-chain.yaml").write_text(CHAIN)
    if workloads:
        (folder / "10-workloads.yaml").write_text(
            "".join(WORKLOAD.format(name=name) for name in names))
    return names


@contextmanager
def matrix(tmp: Path, workloads: int, seed: int = 7, via_api: bool = False,
           settle_seconds: float = 120) -> Iterator[Matrix]:
    """A served cluster (`--faults off`) and the daemon on it, converged at greeting `hello`.
    `via_api`: the Workloads are created through the API once the daemon runs, not read from
    its inputs (a daemon that applies thousands of inputs takes long to start)."""
    names = write_inputs(tmp / "inputs", workloads, workloads=not via_api)
    with ExitStack() as stack:
        served = start_server(tmp, "--controllers", "ecosystem", "--faults", "off")
        stack.callback(served.stop)
        daemon = stack.enter_context(running_daemon(
            [str(tmp / "inputs"), "--environment", "kubernetes", "--listen", "127.0.0.1:0",
             "--artifacts-listen", "127.0.0.1:0", "--tick", "0.2"],
            tmp / "run.log", env={"RECONCILER_KUBECONFIG": str(served.kubeconfig)}))
        found = Matrix(served, daemon, names, seed)
        if via_api:
            for name in names:
                code, body = found.call("POST",
                                        "/apis/carto.run/v1alpha1/namespaces/default/workloads",
                                        yaml.safe_load(WORKLOAD.format(name=name)))
                assert code == 201, body
        found.wait_converged("hello", settle_seconds)
        yield found
        assert daemon.stop() == 0, daemon.stderr_tail()
