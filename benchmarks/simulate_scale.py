"""Time `simulate` over N generated workloads on the paved-path supply chain.

Each workload has its own GitRepository, Image and Knative Service; all point at one real Git
repository created for the run. Prints, per N: wall time, rounds, virtual time, workloads per
second, reconciles run and skipped (read tracking: an object none of whose reads changed is not
reconciled), the per-workload cost relative to the first N measured in the same run (1.0 means
linear scaling), and peak memory (tracemalloc).

The timed run has no tracemalloc: tracing every allocation made the same run about 3x slower.
Memory comes from a second, traced run of the same N, whose wall time is printed too (`traced
s`), the figure this benchmark reported before, as the baseline of that fix.

    .venv/bin/python benchmarks/simulate_scale.py [N ...]     (default: 10 100 1000)
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from reconciler.loader import load_paths, load_text
from reconciler.observability.logging import configure_logging
from reconciler.simulation import simulate

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


def run(n: int, url: str, traced: bool) -> tuple[float, int, float, int, bool, int, int]:
    """One simulate of `n` workloads: wall seconds, rounds, virtual seconds, peak traced bytes
    (0 unless `traced`), ready, reconciles, skipped."""
    platform = load_paths([PLATFORM])
    workloads = load_text("".join(WORKLOAD.format(i=i, url=url) for i in range(n)), "<generated>")
    gc.collect()
    if traced:
        tracemalloc.start()
    started = time.perf_counter()
    result = simulate([*platform, *workloads])
    elapsed = time.perf_counter() - started
    peak = 0
    if traced:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    report = result.report
    return (elapsed, report.rounds, report.virtual_seconds, peak, result.ready,
            report.reconciles, report.skipped)


def main(argv: list[str]) -> None:
    configure_logging("warning")
    sizes = [int(a) for a in argv] or [10, 100, 1000]
    with tempfile.TemporaryDirectory() as tmp:
        url = make_repo(Path(tmp) / "app")
        print(f"{'N':>6} {'wall s':>8} {'rounds':>7} {'virtual s':>10} {'wl/s':>8} "
              f"{'reconciles':>10} {'skipped':>8} {'cost/wl vs first':>17} {'peak MiB':>9} "
              f"{'traced s':>9} {'traced/wall':>11} ready")
        baseline: float | None = None
        for n in sizes:
            elapsed, rounds, virtual, _, ready, reconciles, skipped = run(n, url, traced=False)
            traced, _, _, peak, *_ = run(n, url, traced=True)
            per = elapsed / n
            baseline = baseline or per
            print(f"{n:>6} {elapsed:>8.2f} {rounds:>7} {virtual:>10.0f} {n / elapsed:>8.1f} "
                  f"{reconciles:>10} {skipped:>8} {per / baseline:>17.2f} {peak / 2**20:>9.1f} "
                  f"{traced:>9.2f} {traced / elapsed:>11.2f} {ready}")


if __name__ == "__main__":
    main(sys.argv[1:])
