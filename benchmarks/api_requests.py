"""API requests per reconcile pass over N settled greeter-style workloads (no Git), through
`KubernetesBackend` against `reconciler serve --controllers ecosystem` (started here, HTTPS).

The product's controllers run in this process over a `TrackingBackend` on the backend, as
`reconciler run --environment kubernetes` wires them. After the workloads settle, it runs passes
(a pass: rounds to a fixed point, as one daemon tick) and prints the requests each one sent,
reads (get, list) and writes (create, patch, delete) apart, and watch requests. Two kinds of
pass: tracked (objects none of whose reads changed are skipped, the daemon's way) and untracked
(every watched object is reconciled again: the cost of a reconcile that changes nothing).
Target: no writes and no reads outside the watches. Timing is printed, not judged, and so is
the memory (RSS) of this process (the client: its informer caches) and of the served cluster's,
after each phase.

    .venv/bin/python benchmarks/api_requests.py [N]     (default: 1000)
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from greeter_fleet import objects, serve

from reconciler.backends.kube_environment import KubernetesEnvironment
from reconciler.backends.kubernetes import KubernetesBackend, connect
from reconciler.engine.runner import RoundDriver
from reconciler.engine.tracking import TrackingBackend
from reconciler.engine.wiring import product_controllers
from reconciler.observability.logging import configure_logging
from reconciler.settings import KubernetesSettings, SourceSettings
from reconciler.simulation import apply_inputs


def rss_mib(pid: int | None = None) -> float:
    """The resident set size of a process (this one by default), in MiB, from /proc."""
    try:
        status = Path(f"/proc/{pid or 'self'}/status").read_text()
    except OSError:
        return float("nan")
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def memory(server: int) -> str:
    return f"RSS client {rss_mib():.0f} MiB, server {rss_mib(server):.0f} MiB"


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (all its threads), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Cpu:
    """CPU seconds this process (the client) and the server used since the last `lap`: read
    beside wall time, since the machine may be shared (wall time then stretches, CPU less)."""

    def __init__(self, server: int) -> None:
        self.server = server
        self.client = self.server_seconds = 0.0  # the last lap's seconds
        self._last = (time.process_time(), cpu_seconds(server))

    def lap(self) -> str:
        now = (time.process_time(), cpu_seconds(self.server))
        self.client, self.server_seconds = (b - a for a, b in zip(self._last, now, strict=True))
        self._last = now
        return f"CPU client {self.client:.1f} s, server {self.server_seconds:.1f} s"


def snapshot(backend: KubernetesBackend) -> Counter[str]:
    counts = Counter(backend.requests.by_verb)
    # Every HTTP request the client sent (discovery included), as a cross-check.
    counts.update({f"http {m}": n for m, n in backend.http_requests.items()})
    return counts


def describe(delta: Counter[str]) -> str:
    reads = sum(delta[v] for v in ("get", "list"))
    writes = sum(n for v, n in delta.items()
                 if v not in ("get", "list", "watch") and not v.startswith("http"))
    detail = ", ".join(f"{v} {n}" for v, n in sorted(delta.items()) if n) or "none"
    return f"reads {reads:5d}  writes {writes:5d}  watches {delta['watch']:3d}   ({detail})"


def ready(backend: KubernetesBackend, n: int) -> int:
    count = 0
    for workload in backend.list("carto.run/v1alpha1", "Workload", "default"):
        conditions = (workload.get("status") or {}).get("conditions") or []
        count += any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    return count


def main(n: int) -> None:
    configure_logging("warning")
    with tempfile.TemporaryDirectory(prefix="api-requests-") as scratch:
        tmp = Path(scratch)
        process, kubeconfig = serve(tmp)
        try:
            run(n, tmp, kubeconfig, process.pid)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


def run(n: int, tmp: Path, kubeconfig: Path, server: int) -> None:
    settings = KubernetesSettings(qps=5000, burst=5000)  # measure requests, not the limiter
    setup = connect(kubeconfig, settings=KubernetesSettings(informers=False, qps=5000,
                                                            burst=5000))
    cpu = Cpu(server)
    rss_before = rss_mib(), rss_mib(server)
    started = time.monotonic()
    apply_inputs(setup, objects(n))
    print(f"{n} workloads applied in {time.monotonic() - started:.1f}s: "
          f"{describe(snapshot(setup))}; {cpu.lap()}; {memory(server)}")

    backend = connect(kubeconfig, settings=settings)
    env = KubernetesEnvironment(backend)
    tracker = TrackingBackend(backend)
    sources = SourceSettings(artifact_root=tmp / "artifacts", workdir=tmp / "git")
    controllers = product_controllers(tracker, env.clock, sources)
    tracked = RoundDriver(env, controllers, tracker, tracked=controllers)

    before = snapshot(backend)
    cpu.lap()
    started = time.monotonic()
    passes = 0
    while ready(setup, n) < n:
        tracked.run_to_fixed_point(100)
        passes += 1
        if time.monotonic() - started > 600:
            raise SystemExit(f"not settled after 600s: {ready(setup, n)}/{n} Ready")
    settle_seconds, settle_requests = time.monotonic() - started, snapshot(backend) - before
    print(f"settled in {passes} pass(es), {settle_seconds:.1f}s: "
          f"{describe(settle_requests)}; {cpu.lap()}; {memory(server)}")
    settle_cpu = cpu.client, cpu.server_seconds
    # One more pass lets the status writes of the last round come back through the watches.
    tracked.run_to_fixed_point(100)
    time.sleep(1.0)

    print(f"\nper pass over {n} settled workloads (tracked: the daemon's way)")
    for i in range(3):
        before, reconciles = snapshot(backend), tracked.reconciles
        started, cpu_started = time.monotonic(), time.process_time()
        report = tracked.run_to_fixed_point(100)
        elapsed, used = time.monotonic() - started, time.process_time() - cpu_started
        print(f"  pass {i + 1}: {describe(snapshot(backend) - before)}  "
              f"reconciles {tracked.reconciles - reconciles:5d}  rounds {report.rounds}  "
              f"{elapsed * 1000:.0f} ms (client CPU {used * 1000:.0f} ms)")

    untracked = RoundDriver(env, controllers)
    print(f"\nper pass reconciling every object again (untracked: {n} no-op reconciles)")
    for i in range(2):
        before, reconciles = snapshot(backend), untracked.reconciles
        started, cpu_started = time.monotonic(), time.process_time()
        report = untracked.run_to_fixed_point(100)
        elapsed, used = time.monotonic() - started, time.process_time() - cpu_started
        print(f"  pass {i + 1}: {describe(snapshot(backend) - before)}  "
              f"reconciles {untracked.reconciles - reconciles:5d}  rounds {report.rounds}  "
              f"{elapsed * 1000:.0f} ms (client CPU {used * 1000:.0f} ms)")

    print(f"\nafter the passes: {memory(server)}")
    # Per workload, to compare runs of different N (linear growth keeps these flat).
    sent = sum(v for k, v in settle_requests.items() if k.startswith("http "))
    print(f"per workload: settle {sent / n:.2f} HTTP requests, {settle_seconds / n * 1000:.2f} "
          f"ms wall, CPU client {settle_cpu[0] / n * 1000:.2f} ms + server "
          f"{settle_cpu[1] / n * 1000:.2f} ms; RSS growth client "
          f"{(rss_mib() - rss_before[0]) * 1024 / n:.1f} KiB, server "
          f"{(rss_mib(server) - rss_before[1]) * 1024 / n:.1f} KiB")
    print(f"\nwatches open: {len(backend.informers)} "
          f"({', '.join(sorted(i.name for i in backend.informers.values()))})")
    print(f"whole run: {describe(snapshot(backend))}; retries {backend.retries}")
    backend.close()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
