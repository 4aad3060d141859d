"""What `reconciler run` costs at rest: idle CPU with N settled workloads on the simulator, and
API requests per minute at rest against `reconciler serve` (the kubernetes environment).

The daemon runs in this process (`reconciler.daemon.Daemon`, as `reconciler run` builds it)
over N greeter workloads (no Git). Once every workload is Ready and the queues are idle, it
measures a window of rest:
- simulator: the process's CPU time over the window (the benchmark itself only sleeps), the
  reconciles, work-queue adds and ticks in it; target: no reconcile, CPU near zero;
- kubernetes: `reconciler serve --controllers ecosystem` is started here, the daemon runs with
  `--environment kubernetes` against it, and the requests `KubernetesBackend` sent in the window
  are printed per minute by verb; target: watches only (no get, list or write).

    .venv/bin/python benchmarks/idle_daemon.py [N] [SECONDS]     (default: 1000 30)
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from greeter_fleet import objects, serve

from reconciler.daemon import Daemon
from reconciler.observability.logging import configure_logging
from reconciler.settings import DaemonSettings, ListenAddress

ANY = ListenAddress("127.0.0.1", 0)


def wait_settled(daemon: Daemon, n: int, limit: float = 900.0) -> float:
    started = time.monotonic()
    get = daemon.metrics.registry.get_sample_value
    while (get("reconciler_workloads", {"ready": "True"}) or 0) < n:
        if time.monotonic() - started > limit:
            raise SystemExit(f"not settled after {limit:g}s: "
                             f"{get('reconciler_workloads', {'ready': 'True'})}/{n} Ready")
        time.sleep(0.5)
    assert daemon.loop is not None
    while not daemon.loop.driver.wait_idle(1.0):
        pass
    time.sleep(2.0)  # the last status writes' own changes, and a tick or two
    return time.monotonic() - started


def totals(daemon: Daemon) -> tuple[float, float, float]:
    metrics = daemon.metrics.registry
    reconciles = sum(s.value for m in metrics.collect() if m.name == "reconciler_reconcile"
                     for s in m.samples if s.name == "reconciler_reconcile_total")
    adds = sum(s.value for m in metrics.collect() if m.name == "workqueue_adds"
               for s in m.samples if s.name == "workqueue_adds_total")
    ticks = metrics.get_sample_value("reconciler_ticks_total", {"result": "ok"}) or 0.0
    return reconciles, adds, ticks


def simulator(n: int, window: float, tmp: Path) -> None:
    settings = DaemonSettings(listen=ANY, artifacts_listen=ANY, data_dir=tmp / "sim")
    started = time.monotonic()
    with Daemon(objects(n), settings) as daemon:
        took = wait_settled(daemon, n)
        print(f"simulator: {n} workloads settled {took:.1f}s after the start "
              f"({time.monotonic() - started:.1f}s with loading)")
        before, cpu = totals(daemon), time.process_time()
        time.sleep(window)
        cpu = time.process_time() - cpu
        after = totals(daemon)
        print(f"  at rest for {window:g}s: CPU {cpu:.2f}s ({100 * cpu / window:.1f}% of a core), "
              f"reconciles {after[0] - before[0]:.0f}, queue adds {after[1] - before[1]:.0f}, "
              f"ticks {after[2] - before[2]:.0f}")


def kubernetes(n: int, window: float, tmp: Path) -> None:
    server, kubeconfig = serve(tmp)
    os.environ.update({"RECONCILER_KUBECONFIG": str(kubeconfig), "RECONCILER_KUBE_QPS": "2000",
                       "RECONCILER_KUBE_BURST": "2000"})
    try:
        settings = DaemonSettings(environment="kubernetes", listen=ANY, artifacts_listen=ANY,
                                  data_dir=tmp / "kube")
        with Daemon(objects(n), settings) as daemon:
            took = wait_settled(daemon, n)
            backend: Any = daemon.env.backend if daemon.env is not None else None
            print(f"kubernetes: {n} workloads settled in {took:.1f}s "
                  f"({sum(backend.requests.by_verb.values())} requests so far)")
            before = Counter(backend.requests.by_verb)
            cpu = time.process_time()
            time.sleep(window)
            cpu = time.process_time() - cpu
            delta = Counter(backend.requests.by_verb) - before
            per_minute = {verb: count * 60.0 / window for verb, count in sorted(delta.items())}
            shown = ", ".join(f"{v} {c:.1f}" for v, c in per_minute.items()) or "none"
            print(f"  at rest for {window:g}s: requests per minute: {shown}; "
                  f"watches open {len(backend.informers)}; daemon CPU {cpu:.2f}s "
                  f"({100 * cpu / window:.1f}% of a core)")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def main(n: int, window: float) -> None:
    configure_logging("warning")
    with tempfile.TemporaryDirectory(prefix="idle-daemon-") as scratch:
        simulator(n, window, Path(scratch))
        kubernetes(n, max(window, 60.0), Path(scratch))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000,
         float(sys.argv[2]) if len(sys.argv) > 2 else 30.0)
