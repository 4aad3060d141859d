"""Time `simulate` over N generated workloads on the paved-path supply chain.

Each workload has its own GitRepository, Image and Knative Service; all point at one real Git
repository created for the run. Prints, per N: wall time, rounds, virtual time, workloads per
second, reconciles run and skipped (read tracking: an object none of whose reads changed is not
reconciled), the per-workload cost relative to the first N measured in the same run (1.0 means
linear scaling), and peak memory (tracemalloc).

The timed run has no tracemalloc: tracing every allocation made the same run about 3x slower.
Memory comes from a second, traced run of the same N, whose wall time is printed too (`traced
s`), the figure this benchmark reported before, as the baseline of that fix.

    .venv/bin/python benchmarks/simulate_scale.py [--untraced] [N ...]   (default: 10 100 1000)

`--untraced` skips the traced run (at 10,000 it takes several times the timed one), and prints
the process's peak RSS instead, with the share of the timed run spent in the cycle collector,
the process CPU seconds of the timed run (on a shared machine, compare this one), and the wall
seconds the scratch directory's removal took after the run (`simulate` hands it to a thread of
its own; it is waited for before the next N).
"""

from __future__ import annotations

import gc
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from reconciler.loader import load_paths, load_text
from reconciler.observability.logging import configure_logging
from reconciler.simulation import simulate, wait_for_removals

ROOT = Path(__file__).resolve().parent.parent
PLATFORM = ROOT / "examples" / "paved-path" / "platform"

WORKLOAD = """\
apiVersion: carto.run/v1alpha1
kind: Workload
metadata:
  name: app-{i}
  namespace: default
  labels:
    apps.example.com/workload-type: web
spec:
  source:
    git:
      url: {url}
      ref:
        branch: main
  build:
    env: []
  env: []
---
"""


def make_repo(path: Path) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.com",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.com"}
    path.mkdir()
    (path / "VERSION").write_text("1.0.0\n")
    # An app the simulated kpack's buildpack detection recognises (a Python one).
    (path / "requirements.txt").write_text("flask\n")
    (path / "app.py").write_text("print('hello')\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "v1"]):
        subprocess.run(["git", "-C", str(path), *args], check=True, env=env)
    return path.as_uri()


def run(n: int, url: str, traced: bool, collector: CollectorTime | None = None,
        ) -> tuple[float, int, float, int, bool, int, int, float, float]:
    """One simulate of `n` workloads: wall seconds, rounds, virtual seconds, peak traced bytes
    (0 unless `traced`), ready, reconciles, skipped, process CPU seconds, and the wall seconds
    its scratch directory's removal took after it. `collector` is installed for the timed
    `simulate` only (not the loading of its inputs, nor the collection before it)."""
    platform = load_paths([PLATFORM])
    workloads = load_text("".join(WORKLOAD.format(i=i, url=url) for i in range(n)), "<generated>")
    gc.collect()
    if traced:
        tracemalloc.start()
    if collector is not None:
        gc.callbacks.append(collector)
    try:
        started, cpu = time.perf_counter(), time.process_time()
        result = simulate([*platform, *workloads])
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        if collector is not None:
            gc.callbacks.remove(collector)
    removal = time.perf_counter()
    wait_for_removals()
    removal = time.perf_counter() - removal
    peak = 0
    if traced:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    report = result.report
    return (elapsed, report.rounds, report.virtual_seconds, peak, result.ready,
            report.reconciles, report.skipped, cpu, removal)


class CollectorTime:
    """Seconds spent in the cycle collector while it is installed (gc.callbacks)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started


def main(argv: list[str]) -> None:
    configure_logging("warning")
    if "--untraced" in argv:
        untraced([int(a) for a in argv if a != "--untraced"] or [1000, 10000])
        return
    sizes = [int(a) for a in argv] or [10, 100, 1000]
    with tempfile.TemporaryDirectory() as tmp:
        url = make_repo(Path(tmp) / "app")
        print(f"{'N':>6} {'wall s':>8} {'rounds':>7} {'virtual s':>10} {'wl/s':>8} "
              f"{'reconciles':>10} {'skipped':>8} {'cost/wl vs first':>17} {'peak MiB':>9} "
              f"{'traced s':>9} {'traced/wall':>11} ready")
        baseline: float | None = None
        for n in sizes:
            elapsed, rounds, virtual, _, ready, reconciles, skipped, *_ = run(n, url, False)
            traced, _, _, peak, *_ = run(n, url, traced=True)
            per = elapsed / n
            baseline = baseline or per
            print(f"{n:>6} {elapsed:>8.2f} {rounds:>7} {virtual:>10.0f} {n / elapsed:>8.1f} "
                  f"{reconciles:>10} {skipped:>8} {per / baseline:>17.2f} {peak / 2**20:>9.1f} "
                  f"{traced:>9.2f} {traced / elapsed:>11.2f} {ready}")


def untraced(sizes: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = make_repo(Path(tmp) / "app")
        print(f"{'N':>6} {'wall s':>8} {'wl/s':>8} {'reconciles':>10} {'cost/wl vs first':>17} "
              f"{'in collector':>13} {'peak RSS MiB':>13} {'cpu s':>8} {'removal s':>9} ready")
        baseline: float | None = None
        for n in sizes:
            collector = CollectorTime()
            elapsed, _, _, _, ready, reconciles, _, cpu, removal = run(n, url, False, collector)
            per = elapsed / n
            baseline = baseline or per
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"{n:>6} {elapsed:>8.2f} {n / elapsed:>8.1f} {reconciles:>10} "
                  f"{per / baseline:>17.2f} {collector.seconds / elapsed:>12.0%} {rss:>13.0f} "
                  f"{cpu:>8.2f} {removal:>9.2f} {ready}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
