"""Whether memory stays flat over many passes over N settled workloads.

N settled greeter Workloads (`state_store.settled`: 1,000 simulated, copied into more
namespaces), the product's controllers over a `TrackingBackend` and the simulated ones driven by
a `RoundDriver`, as `simulate` and the daemon drive them. After a first pass (every object
reconciled once), PASSES passes, each a round to a fixed point after moving the virtual clock one
second (the daemon's tick). Three variants, each in a fresh process:
- `noop`: read tracking on (the daemon's way): a pass finds nothing changed and reconciles
  nothing;
- `offer`: read tracking off for the product's controllers, so every pass offers every Workload
  (and supply chain) to its controller again: the owner's fast path (a digest of its inputs)
  finds nothing changed;
- `offer-full`: the same with the owner's fast path off (`fast_path=False`): every pass renders,
  diffs and checks every Workload in full, writing nothing.
Every 100 passes (after a `gc.collect()`): RSS (`/proc/self/statm`) and tracemalloc's current
size (tracing starts before the first pass). The product's GC tuning applies as in `simulate`
(`RECONCILER_GC_TUNING=off` in the environment compares without it). Printed per variant: the
series, the growth from pass 100 to the last, and per pass; then the lines (`--frames K`:
tracebacks of K frames) whose live allocations grew most between pass 100 and the last
(tracemalloc snapshots compared).

    .venv/bin/python benchmarks/rss_passes.py [N] [PASSES] [--variants noop,offer,offer-full]
        [--frames K]                       (default: 1000 1000, all three variants, 1 frame)
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from state_store import settled

from reconciler.engine.owner import OwnerController
from reconciler.engine.runner import RoundDriver
from reconciler.engine.tracking import TrackingBackend
from reconciler.engine.wiring import product_controllers
from reconciler.observability.logging import configure_logging
from reconciler.settings import SourceSettings

VARIANTS = ("noop", "offer", "offer-full")
EVERY = 100
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


def child(variant: str, n: int, passes: int, frames: int) -> dict[str, Any]:
    configure_logging("warning")
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        env = settled(n, tmp)
        tracker = TrackingBackend(env.backend)
        sources = SourceSettings(artifact_root=tmp / "artifacts", workdir=tmp / "git",
                                 allow_local_urls=True)
        product = product_controllers(tracker, env.clock, sources)
        if variant == "offer-full":
            for controller in product:
                if isinstance(controller, OwnerController):
                    controller.fast_path = False
        controllers = [*product, *env.controllers]
        tracked = variant == "noop"
        driver = RoundDriver(env, controllers, tracker if tracked else None,
                             product if tracked else ())
        gc.collect()
        tracemalloc.start(frames)
        started = time.perf_counter()
        first = driver.run_to_fixed_point(100)
        first_s = time.perf_counter() - started
        after_first = driver.reconciles
        series: list[dict[str, float]] = []
        baseline: tracemalloc.Snapshot | None = None
        started = time.perf_counter()
        for done in range(1, passes + 1):
            env.advance(1.0)
            driver.run_to_fixed_point(100)
            if done % EVERY == 0 or done == passes:
                gc.collect()
                if done == EVERY:
                    # Before the sample: what the snapshot itself takes is in every sample.
                    baseline = tracemalloc.take_snapshot()
                series.append({"pass": done, "rss": rss(),
                               "traced": tracemalloc.get_traced_memory()[0],
                               "reconciles": driver.reconciles - after_first})
        passes_s = time.perf_counter() - started
        grown: list[str] = []
        if baseline is not None:
            last = tracemalloc.take_snapshot()
            key = "traceback" if frames > 1 else "lineno"
            for stat in last.compare_to(baseline, key)[:12]:
                grown.append(f"{stat.size_diff:+,} B {stat.count_diff:+,} blocks  "
                             + " <- ".join(str(f) for f in stat.traceback))
        tracemalloc.stop()
        return {"variant": variant, "first_s": first_s, "first_rounds": first.rounds,
                "first_reconciles": after_first, "passes_s": passes_s, "series": series,
                "grown": grown, "objects": len(env.cluster.stored_keys())}


def report(result: dict[str, Any]) -> None:
    series = result["series"]
    print(f"\n== {result['variant']}: {result['objects']} objects; first pass "
          f"{result['first_s']:.1f} s ({result['first_rounds']} rounds, "
          f"{result['first_reconciles']} reconciles); {series[-1]['pass']} passes in "
          f"{result['passes_s']:.1f} s (traced)")
    print(f"  {'pass':>6} {'RSS MiB':>9} {'traced MiB':>11} {'reconciles':>11}")
    for s in series:
        print(f"  {s['pass']:>6} {s['rss'] / 2**20:>9.2f} {s['traced'] / 2**20:>11.2f} "
              f"{s['reconciles']:>11}")
    first = next((s for s in series if s["pass"] == EVERY), series[0])
    last = series[-1]
    span = max(last["pass"] - first["pass"], 1)
    for what in ("rss", "traced"):
        grew = last[what] - first[what]
        print(f"  {what:<7} pass {first['pass']} -> {last['pass']}: {grew / 1024:+,.1f} KiB "
              f"({grew / span:+,.1f} B per pass)")
    print("  grew most between pass 100 and the last (tracemalloc):")
    for line in result["grown"]:
        print(f"    {line}")


def main(argv: list[str]) -> None:
    if argv[:1] == ["--child"]:
        print(json.dumps(child(argv[1], int(argv[2]), int(argv[3]), int(argv[4]))))
        return
    variants = list(VARIANTS)
    frames = 1
    numbers: list[int] = []
    args = iter(argv)
    for arg in args:
        if arg == "--variants":
            variants = next(args).split(",")
        elif arg == "--frames":
            frames = int(next(args))
        else:
            numbers.append(int(arg))
    n, passes = (numbers + [1000, 1000][len(numbers):])[:2]
    here = Path(__file__).resolve().parent
    print(f"N={n}, {passes} passes, sampled every {EVERY}; {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.2f}", flush=True)
    for variant in variants:
        if variant not in VARIANTS:
            raise SystemExit(f"unknown variant {variant!r} (known: {', '.join(VARIANTS)})")
        out = subprocess.run([sys.executable, str(here / "rss_passes.py"), "--child", variant,
                              str(n), str(passes), str(frames)],
                             capture_output=True, text=True, cwd=here)
        if out.returncode != 0:
            raise SystemExit(f"{variant} failed:\n{out.stderr[-4000:]}")
        report(json.loads(out.stdout.strip().splitlines()[-1]))
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
