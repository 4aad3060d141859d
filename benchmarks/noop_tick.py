"""What a round costs when nothing (or one thing) changed, with N settled workloads.

N settled greeter Workloads (`state_store.settled`: 1,000 simulated, copied into more
namespaces), then the product's controllers and the simulated ones driven as `simulate` and the
daemon drive them (`RoundDriver` over a `TrackingBackend`; the simulated controllers read the
cluster directly, which records their reads). After a first pass that reconciles every object
once (the records every later round decides from), per N:
- no-op round: a round with nothing changed, as it is now (the objects that changed since the
  last round, their readers and the wake-ups due) against the baseline measured in the same run,
  a round that looks at every object's name and change record (what every round did before:
  `_seen` cleared forces it);
- one change: one Workload's label value edited, then rounds to a fixed point, both ways;
- gauges: the daemon's object and readiness gauges from kept counts (`record_counts`) against
  listing every object to count them (`record_cluster`, what each tick did before).
Figures are medians of 5 (baseline: 3), in milliseconds; ratio = baseline / now.

    .venv/bin/python benchmarks/noop_tick.py [N ...]     (default: 1000 10000)
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from state_store import settled

from reconciler.engine.runner import RoundDriver
from reconciler.engine.tracking import TrackingBackend
from reconciler.engine.wiring import product_controllers
from reconciler.observability.logging import configure_logging
from reconciler.observability.metrics import (
    ReconcilerMetrics,
    counted_kinds,
    record_cluster,
    record_counts,
    watched_kinds,
)
from reconciler.observability.resource_info import ResourceInfo
from reconciler.settings import SourceSettings


def timed(work: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def measure(n: int, tmp: Path) -> list[tuple[str, float, float, str]]:
    env = settled(n, tmp)
    tracker = TrackingBackend(env.backend)
    sources = SourceSettings(artifact_root=tmp / "artifacts", workdir=tmp / "git",
                             allow_local_urls=True)
    product = product_controllers(tracker, env.clock, sources)
    controllers = [*product, *env.controllers]
    driver = RoundDriver(env, controllers, tracker, product)
    scheduler = driver._scheduler
    started = time.perf_counter()
    first = driver.run_to_fixed_point(100)
    first_s = time.perf_counter() - started
    print(f"  N={n}: first pass {first_s:.1f} s, {first.rounds} rounds, "
          f"{driver.reconciles} reconciles, fixed point {first.fixed_point}", flush=True)

    def now_round() -> None:
        driver.run_to_fixed_point(1)

    def full_round() -> None:
        scheduler._seen = None
        driver.run_to_fixed_point(1)

    rows = [("no-op round", timed(now_round, 5), timed(full_round, 3), "")]
    edits = iter(range(1_000_000))

    def change(force_full: bool) -> Callable[[], object]:
        def work() -> None:
            i = next(edits)
            env.cluster.edit("carto.run/v1alpha1", "Workload", "default", "hello-0",
                             lambda w: w["metadata"].setdefault("labels", {}).update(
                                 {"bench": str(i)}))
            for _ in range(20):
                if force_full:
                    scheduler._seen = None
                if driver.run_to_fixed_point(1).fixed_point:
                    break
        return work

    before = driver.reconciles
    one_now = timed(change(False), 5)
    per_change = (driver.reconciles - before) / 5
    rows.append(("one Workload changed, rounds to a fixed point", one_now,
                 timed(change(True), 3), f"{per_change:.0f} reconciles per change"))
    kinds = watched_kinds(product)
    counts = ResourceInfo((), counted_kinds(kinds))
    counts.track(env.cluster)
    metrics = ReconcilerMetrics()
    rows.append(("gauges refreshed", timed(lambda: record_counts(metrics, counts, kinds), 5),
                 timed(lambda: record_cluster(metrics, env.cluster, kinds), 3), ""))
    return rows


def main(argv: list[str]) -> None:
    configure_logging("warning")
    sizes = [int(a) for a in argv] or [1000, 10000]
    results: list[tuple[int, str, float, float, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            for what, now, base, note in measure(n, Path(tmp) / str(n)):
                results.append((n, what, now, base, note))
    print(f"{'N':>7}  {'what':<48} {'now ms':>9} {'before ms':>10} {'ratio':>7}  note")
    for n, what, now, base, note in results:
        print(f"{n:>7}  {what:<48} {now:>9.2f} {base:>10.2f} {base / max(now, 1e-6):>7.1f}  "
              f"{note}")


if __name__ == "__main__":
    main(sys.argv[1:])
