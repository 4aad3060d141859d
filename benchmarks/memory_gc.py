"""Memory per settled workload, and what tuning Python's garbage collector does to a first install.

1. Memory: N settled greeter Workloads (`state_store.settled`) saved as JSON, then loaded into a
   fresh simulated cluster under tracemalloc: the bytes the loaded cluster holds, per Workload
   (each with what its supply chain stamped, its status and its Events).
2. GC: `simulate` of N greeter Workloads, each way in a fresh process (same inputs, same run):
   `default` (thresholds 700/10/10), `threshold` (gen0 at 50,000 allocations), and `freeze`
   (`gc.freeze()` once the inputs are loaded, so the collector never rescans them, plus the same
   threshold). Printed: wall seconds, seconds inside the collector (gc.callbacks), collections,
   and the ratio of each wall time to the default's.

    .venv/bin/python benchmarks/memory_gc.py [N ...]     (default: 1000)
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from greeter_fleet import objects
from state_store import settled

from reconciler.observability.logging import configure_logging
from reconciler.simulation import simulate
from simulator.environment import SimulatedEnvironment

MODES = ("default", "threshold", "freeze")


def memory_per_workload(n: int, tmp: Path) -> tuple[float, int]:
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
    tracemalloc.stop()
    count = len(loaded.cluster.stored_keys())
    return held / n, count


def child(mode: str, n: int) -> None:
    configure_logging("warning")
    inputs = objects(n)
    if mode in ("threshold", "freeze"):
        gc.set_threshold(50_000, 10, 10)
    if mode == "freeze":
        gc.collect()
        gc.freeze()
    spent = [0.0, 0]
    began = [0.0]

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began[0] = time.perf_counter()
        else:
            spent[0] += time.perf_counter() - began[0]
            spent[1] += 1

    gc.callbacks.append(watch)
    started = time.perf_counter()
    result = simulate(inputs)
    wall = time.perf_counter() - started
    gc.callbacks.remove(watch)
    print(json.dumps({"wall": wall, "gc": spent[0], "collections": spent[1],
                      "ready": result.ready}))


def main(argv: list[str]) -> None:
    if argv[:1] == ["--child"]:
        child(argv[1], int(argv[2]))
        return
    configure_logging("warning")
    sizes = [int(a) for a in argv] or [1000]
    here = Path(__file__).resolve().parent
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            per, stored = memory_per_workload(n, Path(tmp) / str(n))
            print(f"N={n}: {per / 1024:.1f} KiB per settled Workload held by the loaded cluster "
                  f"({stored} objects)", flush=True)
    for n in sizes:
        figures = {}
        for mode in MODES:
            out = subprocess.run([sys.executable, str(here / "memory_gc.py"), "--child", mode,
                                  str(n)], capture_output=True, text=True, check=True, cwd=here)
            figures[mode] = json.loads(out.stdout.strip().splitlines()[-1])
        base = figures["default"]["wall"]
        print(f"{'N':>6} {'mode':<10} {'wall s':>7} {'in gc s':>8} {'collections':>11} "
              f"{'wall vs default':>15} ready")
        for mode, f in figures.items():
            print(f"{n:>6} {mode:<10} {f['wall']:>7.2f} {f['gc']:>8.2f} {f['collections']:>11} "
                  f"{f['wall'] / base:>15.2f} {f['ready']}")


if __name__ == "__main__":
    main(sys.argv[1:])
