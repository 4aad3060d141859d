"""`--state` save and load at scale: the SQLite store against the JSON form, in one run.

A settled cluster of N greeter Workloads (each with what its supply chain stamped, its status
and Events) is built by simulating `BASE` of them and copying that cluster into N / BASE
namespaces. Then, for each format: the first (full) save, a save after one Workload changed,
and a load; sizes on disk. The ratio column is JSON's time over SQLite's for the same step.

    .venv/bin/python benchmarks/state_store.py [N ...]     (default: 1000 10000)
"""

from __future__ import annotations

import copy
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from greeter_fleet import objects

from reconciler.observability.logging import configure_logging
from reconciler.simulation import simulate
from simulator.environment import SimulatedEnvironment

BASE = 1000


def settled(n: int, tmp: Path) -> SimulatedEnvironment:
    """N settled greeter Workloads: BASE simulated, then copied into more namespaces."""
    seed = tmp / f"seed-{n}.json"
    simulate(objects(min(n, BASE)), state=seed)
    env = SimulatedEnvironment()
    env.load_state(seed)
    snapshot = env.cluster.snapshot()
    copies: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for c in range(1, -(-n // BASE)):
        namespace = f"copy-{c}"
        copies.append({"apiVersion": "v1", "kind": "Namespace",
                       "metadata": {"name": namespace, "uid": f"ns-{c}"}})
        for obj in snapshot["objects"]:
            if obj["metadata"].get("namespace") == "default":
                clone = copy.deepcopy(obj)
                clone["metadata"]["namespace"] = namespace
                clone["metadata"]["uid"] = f"{c}-{clone['metadata'].get('uid')}"
                copies.append(clone)
        for event in snapshot["events"]:
            clone = copy.deepcopy(event)
            clone["metadata"]["namespace"] = namespace
            events.append(clone)
    if copies:
        env.cluster.restore({"objects": copies, "events": [*snapshot["events"], *events]})
    return env


def timed(work: Callable[[], object], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def change_one(env: SimulatedEnvironment, i: int) -> None:
    env.cluster.edit("carto.run/v1alpha1", "Workload", "default", "hello-0",
                     lambda w: w.setdefault("metadata", {}).setdefault(
                         "annotations", {}).update({"bench": str(i)}))


def measure_format(env: SimulatedEnvironment, path: Path) -> dict[str, float]:
    first = timed(lambda: env.save_state(path), repeat=1)
    changes = iter(range(1_000_000))

    def change_and_save() -> None:
        change_one(env, next(changes))
        env.save_state(path)

    one = timed(change_and_save)
    load = timed(lambda: SimulatedEnvironment().load_state(path), repeat=1)
    return {"first": first, "one": one, "load": load}


def measure(n: int, tmp: Path) -> None:
    start = time.perf_counter()
    env = settled(n, tmp)
    built = time.perf_counter() - start
    count = len(env.cluster.stored_keys())
    print(f"N={n}: {count} objects, {len(env.cluster.stored_events())} events "
          f"(built in {built:.1f} s)")
    rows: list[tuple[str, float, float]] = []
    results: dict[str, dict[str, float]] = {}
    for fmt in ("json", "db"):
        path = tmp / f"state-{n}.{fmt}"
        results[fmt] = measure_format(env, path)
        results[fmt]["size"] = sum(f.stat().st_size for f in tmp.glob(f"state-{n}.{fmt}*"))
    for step in ("first", "one", "load"):
        rows.append((step, results["json"][step], results["db"][step]))
    names = {"first": "first save", "one": "save after one change", "load": "load"}
    print(f"  {'step':<24}{'JSON':>12}{'SQLite':>12}{'JSON/SQLite':>14}")
    for step, json_s, db_s in rows:
        print(f"  {names[step]:<24}{json_s * 1000:>10.1f}ms{db_s * 1000:>10.1f}ms"
              f"{json_s / db_s:>13.1f}x")
    print(f"  {'size on disk':<24}{results['json']['size'] / 1e6:>10.1f}MB"
          f"{results['db']['size'] / 1e6:>10.1f}MB")


def main(argv: list[str]) -> None:
    configure_logging("error")
    sizes = [int(a) for a in argv] or [1000, 10000]
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            measure(n, Path(tmp))


if __name__ == "__main__":
    main(sys.argv[1:])
