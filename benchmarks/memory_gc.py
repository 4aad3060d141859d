"""Memory per settled workload, and what tuning Python's garbage collector does.

1. Memory, per N (`--memory N,...`): N settled greeter Workloads (`state_store.settled`: 1,000
   simulated, copied into more namespaces) saved as JSON, then loaded into a fresh simulated
   cluster under tracemalloc: the bytes the loaded cluster holds, per Workload (each with what
   its supply chain stamped, its status and its Events). With `--controllers`, also what the
   product's and simulated controllers keep once a first pass over that cluster has run (read
   tracking records, dependency index, the owner's fast-path digests), per Workload.
2. GC, at N (`--gc N`), each case in a fresh process, REPEAT times (`--repeat`, modes
   interleaved so the machine's load falls on all of them alike), medians:
   - `greeter`: `simulate` of N greeter Workloads (first install, no Git);
   - `paved`: `simulate` of N paved-path Workloads on one real Git repository
     (`simulate_scale`'s inputs);
   - `noop`, `offer`: N settled greeter Workloads driven by a `RoundDriver` as the daemon
     drives them: a no-op round (median of 50), and a round offering every Workload to its
     controller again with read tracking off (median of 5; the owner's fast path answers);
   under each mode: `default` (thresholds 700/10/10), `t10k` and `t50k` (gen0 at 10,000 and
   50,000 allocations), `freeze` (`gc.freeze()` once the inputs or the loaded state are in
   memory, so the collector never scans them again, plus gen0 at 50,000), `freeze10k` (the
   same with gen0 at 10,000). Printed: wall
   seconds (or ms per round), seconds inside the collector (`gc.callbacks`), collections, and
   each mode's median wall over the default's, and the same for the process's CPU time (less
   moved by other work on a shared machine than wall time).

    .venv/bin/python benchmarks/memory_gc.py [--memory N,...] [--controllers] [--gc N]
        [--repeat R] [--cases greeter,paved,noop,offer] [--modes default,t10k,t50k,freeze,freeze10k]
    (defaults: --memory 1000,10000 --gc 1000 --repeat 5, every case and mode; `--gc 0` or
    `--memory 0` skips that part)
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from greeter_fleet import objects
from simulate_scale import PLATFORM, WORKLOAD, make_repo
from state_store import settled

from reconciler.engine.runner import RoundDriver
from reconciler.engine.tracking import TrackingBackend
from reconciler.engine.wiring import product_controllers
from reconciler.loader import LoadedObject, load_paths, load_text
from reconciler.observability.logging import configure_logging
from reconciler.runtime.gctuning import SWITCH
from reconciler.settings import SourceSettings
from reconciler.simulation import simulate
from simulator.environment import SimulatedEnvironment

MODES: dict[str, tuple[tuple[int, int, int] | None, bool]] = {
    "default": (None, False),
    "t10k": ((10_000, 10, 10), False),
    "t50k": ((50_000, 10, 10), False),
    "freeze": ((50_000, 10, 10), True),
    "freeze10k": ((10_000, 10, 10), True),
}
CASES = ("greeter", "paved", "noop", "offer")


def _driver(env: SimulatedEnvironment, tmp: Path, tracked: bool) -> RoundDriver:
    tracker = TrackingBackend(env.backend)
    sources = SourceSettings(artifact_root=tmp / "artifacts", workdir=tmp / "git",
                             allow_local_urls=True)
    product = product_controllers(tracker, env.clock, sources)
    return RoundDriver(env, [*product, *env.controllers], tracker if tracked else None,
                       product if tracked else ())


def memory_per_workload(n: int, tmp: Path, controllers: bool) -> tuple[float, int, float]:
    """(bytes the loaded cluster holds per Workload, objects stored, bytes the controllers'
    records add per Workload after a first pass; 0 unless `controllers`)."""
    env = settled(n, tmp)
    path = tmp / f"settled-{n}.json"
    env.save_state(path)
    del env
    gc.collect()
    tracemalloc.start()
    loaded = SimulatedEnvironment()
    base = tracemalloc.get_traced_memory()[0]
    loaded.load_state(path)
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - base
    records = 0.0
    if controllers:
        driver = _driver(loaded, tmp, tracked=True)
        driver.run_to_fixed_point(100)
        gc.collect()
        records = (tracemalloc.get_traced_memory()[0] - base - held) / n
    tracemalloc.stop()
    count = len(loaded.cluster.stored_keys())
    return held / n, count, records


def _paved(n: int, url: str) -> list[LoadedObject]:
    return [*load_paths([PLATFORM]),
            *load_text("".join(WORKLOAD.format(i=i, url=url) for i in range(n)), "<generated>")]


def child(case: str, mode: str, n: int, url: str) -> dict[str, Any]:
    configure_logging("warning")
    thresholds, freeze = MODES[mode]
    spent = [0.0, 0]
    began = [0.0]

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began[0] = time.perf_counter()
        else:
            spent[0] += time.perf_counter() - began[0]
            spent[1] += 1

    def tune() -> None:
        # What the tuning would do in the product: once what is loaded is in memory.
        if thresholds is not None:
            gc.set_threshold(*thresholds)
        if freeze:
            gc.collect()
            gc.freeze()

    cpu = [0.0]

    def timed(work: Callable[[], object]) -> float:
        gc.callbacks.append(watch)
        started, used = time.perf_counter(), time.process_time()
        work()
        wall = time.perf_counter() - started
        cpu[0] += time.process_time() - used
        gc.callbacks.remove(watch)
        return wall

    if case in ("greeter", "paved"):
        inputs = objects(n) if case == "greeter" else _paved(n, url)
        gc.collect()
        tune()
        results: list[Any] = []
        wall = timed(lambda: results.append(simulate(inputs)))
        return {"wall": wall, "cpu": cpu[0], "gc": spent[0], "collections": spent[1],
                "ready": results[0].ready}
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        seeded = settled(n, tmp)
        path = tmp / "state.json"
        seeded.save_state(path)
        del seeded
        gc.collect()
        env = SimulatedEnvironment()
        env.load_state(path)  # the daemon's start: the state loaded, then tuned
        tune()
        driver = _driver(env, tmp, tracked=case == "noop")
        driver.run_to_fixed_point(100)
        rounds = 50 if case == "noop" else 5
        walls = []
        before = driver.reconciles
        for _ in range(rounds):
            walls.append(timed(lambda: driver.run_to_fixed_point(100)))
        return {"wall": statistics.median(walls), "cpu": cpu[0] / rounds,
                "gc": spent[0] / rounds,
                "collections": spent[1] / rounds, "ready": True,
                "reconciles": (driver.reconciles - before) / rounds}


def run_gc(n: int, repeat: int, cases: list[str], modes: list[str]) -> None:
    here = Path(__file__).resolve().parent
    # Each mode is set by the child itself: the product's own tuning (`gctuning`) stays off.
    quiet = {**os.environ, SWITCH: "off"}
    with tempfile.TemporaryDirectory() as tmp:
        url = make_repo(Path(tmp) / "app") if "paved" in cases else ""
        for case in cases:
            runs: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
            for _ in range(repeat):
                for mode in modes:
                    out = subprocess.run(
                        [sys.executable, str(here / "memory_gc.py"), "--child", case, mode,
                         str(n), url], capture_output=True, text=True, cwd=here, env=quiet)
                    if out.returncode != 0:
                        raise SystemExit(f"{case} {mode} failed:\n{out.stderr[-4000:]}")
                    runs[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
            unit, scale = ("s", 1.0) if case in ("greeter", "paved") else ("ms", 1000.0)
            base = statistics.median(r["wall"] for r in runs["default"]) if "default" in runs \
                else None
            print(f"\n{case}, N={n}, {repeat} runs per mode, each in a fresh process "
                  f"(load {os.getloadavg()[0]:.2f})")
            cpu_base = statistics.median(r["cpu"] for r in runs["default"]) \
                if "default" in runs else None
            print(f"  {'mode':<8} {'wall ' + unit:>9} {'min':>8} {'max':>8} {'vs default':>10} "
                  f"{'cpu ' + unit:>9} {'vs default':>10} {'in gc ' + unit:>9} "
                  f"{'collections':>11} ready")
            for mode in modes:
                walls = [r["wall"] * scale for r in runs[mode]]
                median = statistics.median(walls)
                used = statistics.median(r["cpu"] for r in runs[mode]) * scale
                in_gc = statistics.median(r["gc"] for r in runs[mode]) * scale
                count = statistics.median(r["collections"] for r in runs[mode])
                ratio = f"{median / (base * scale):.2f}" if base else "-"
                cpu_ratio = f"{used / (cpu_base * scale):.2f}" if cpu_base else "-"
                print(f"  {mode:<8} {median:>9.2f} {min(walls):>8.2f} {max(walls):>8.2f} "
                      f"{ratio:>10} {used:>9.2f} {cpu_ratio:>10} {in_gc:>9.3f} {count:>11.1f} "
                      f"{all(r['ready'] for r in runs[mode])}", flush=True)


def main(argv: list[str]) -> None:
    if argv[:1] == ["--child"]:
        print(json.dumps(child(argv[1], argv[2], int(argv[3]), argv[4])))
        return
    configure_logging("warning")
    sizes, gc_n, repeat, with_controllers = [1000, 10000], 1000, 5, False
    cases, modes = list(CASES), list(MODES)
    args = iter(argv)
    for arg in args:
        if arg == "--memory":
            sizes = [int(s) for s in next(args).split(",") if int(s) > 0]
        elif arg == "--controllers":
            with_controllers = True
        elif arg == "--gc":
            gc_n = int(next(args))
        elif arg == "--repeat":
            repeat = int(next(args))
        elif arg == "--cases":
            cases = next(args).split(",")
        elif arg == "--modes":
            modes = next(args).split(",")
        else:
            raise SystemExit(__doc__)
    unknown = [c for c in cases if c not in CASES] + [m for m in modes if m not in MODES]
    if unknown:
        raise SystemExit(f"unknown case or mode: {', '.join(unknown)}")
    print(f"{os.cpu_count()} cores, python {sys.version.split()[0]}, "
          f"load {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            per, stored, records = memory_per_workload(n, Path(tmp) / str(n), with_controllers)
            line = (f"N={n}: {per / 1024:.1f} KiB per settled Workload held by the loaded "
                    f"cluster ({stored} objects)")
            if with_controllers:
                line += (f"; the controllers' records after a first pass add "
                         f"{records / 1024:.1f} KiB per Workload")
            print(line, flush=True)
    if gc_n > 0:
        run_gc(gc_n, repeat, cases, modes)


if __name__ == "__main__":
    main(sys.argv[1:])
