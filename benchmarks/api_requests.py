"""API requests per reconcile pass over N settled greeter-style workloads (no Git), through
`KubernetesBackend` against `reconciler serve --controllers ecosystem` (started here, HTTPS).

The product's controllers run in this process over a `TrackingBackend` on the backend, as
`reconciler run --environment kubernetes` wires them. After the workloads settle, it runs passes
(a pass: rounds to a fixed point, as one daemon tick) and prints the requests each one sent,
reads (get, list) and writes (create, patch, delete) apart, and watch requests. Two kinds of
pass: tracked (objects none of whose reads changed are skipped, the daemon's way) and untracked
(every watched object is reconciled again: the cost of a reconcile that changes nothing).
Target: no writes and no reads outside the watches. Timing is printed, not judged.

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
            run(n, tmp, kubeconfig)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


def run(n: int, tmp: Path, kubeconfig: Path) -> None:
    settings = KubernetesSettings(qps=5000, burst=5000)  # measure requests, not the limiter
    setup = connect(kubeconfig, settings=KubernetesSettings(informers=False, qps=5000,
                                                            burst=5000))
    started = time.monotonic()
    apply_inputs(setup, objects(n))
    print(f"{n} workloads applied in {time.monotonic() - started:.1f}s")

    backend = connect(kubeconfig, settings=settings)
    env = KubernetesEnvironment(backend)
    tracker = TrackingBackend(backend)
    sources = SourceSettings(artifact_root=tmp / "artifacts", workdir=tmp / "git")
    controllers = product_controllers(tracker, env.clock, sources)
    tracked = RoundDriver(env, controllers, tracker, tracked=controllers)

    before = snapshot(backend)
    started = time.monotonic()
    passes = 0
    while ready(setup, n) < n:
        tracked.run_to_fixed_point(100)
        passes += 1
        if time.monotonic() - started > 600:
            raise SystemExit(f"not settled after 600s: {ready(setup, n)}/{n} Ready")
    print(f"settled in {passes} pass(es), {time.monotonic() - started:.1f}s: "
          f"{describe(snapshot(backend) - before)}")
    # One more pass lets the status writes of the last round come back through the watches.
    tracked.run_to_fixed_point(100)
    time.sleep(1.0)

    print(f"\nper pass over {n} settled workloads (tracked: the daemon's way)")
    for i in range(3):
        before, reconciles = snapshot(backend), tracked.reconciles
        started = time.monotonic()
        report = tracked.run_to_fixed_point(100)
        elapsed = time.monotonic() - started
        print(f"  pass {i + 1}: {describe(snapshot(backend) - before)}  "
              f"reconciles {tracked.reconciles - reconciles:5d}  rounds {report.rounds}  "
              f"{elapsed * 1000:.0f} ms")

    untracked = RoundDriver(env, controllers)
    print(f"\nper pass reconciling every object again (untracked: {n} no-op reconciles)")
    for i in range(2):
        before, reconciles = snapshot(backend), untracked.reconciles
        started = time.monotonic()
        report = untracked.run_to_fixed_point(100)
        elapsed = time.monotonic() - started
        print(f"  pass {i + 1}: {describe(snapshot(backend) - before)}  "
              f"reconciles {untracked.reconciles - reconciles:5d}  rounds {report.rounds}  "
              f"{elapsed * 1000:.0f} ms")

    print(f"\nwatches open: {len(backend.informers)} "
          f"({', '.join(sorted(i.name for i in backend.informers.values()))})")
    print(f"whole run: {describe(snapshot(backend))}; retries {backend.retries}")
    backend.close()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
