"""What a Workload reconcile costs when nothing changed (issue 14: the owner's no-op fast path).

N settled greeter Workloads (`greeter_fleet.objects(n)`) in the simulated cluster, reconciled
by one owner controller until each is settled. Then every Workload is offered to the owner
controller again with nothing changed, timed three ways in the same run:
- fast path: `OwnerController(..., fast_path=True)` (the default), which compares the
  resourceVersions of what the owner's last settled reconcile read (the owner, its templates,
  stamped objects, ServiceAccount and Namespace; the blueprint kind's version) with those
  recorded then, without copying any object (engine/owner, "the no-op fast path");
- full reconcile: the same controller built with `fast_path=False` (what every offer cost
  before);
- naive: for each Workload, render every template of its supply chain and DeepDiff the result
  against the live stamped object.
Figures are medians of 3 timings, in reconciles per second; ratio = fast path / other. A timing
repeats whole passes over the N Workloads until it has lasted at least 0.3 s (the fast path's
pass alone takes milliseconds: on a loaded machine so short a window measures the scheduler),
and the three are timed in turn, round after round, so that the machine's load falls on each
alike.

    .venv/bin/python benchmarks/owner_noop.py [N]     (default: 1000)
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Sequence

from deepdiff import DeepDiff
from greeter_fleet import objects

from reconciler.chains.blueprint import CARTO_API, Blueprint, Template
from reconciler.chains.realizer import Outputs, OwnerContext
from reconciler.engine.owner import WORKLOAD, OwnerController
from reconciler.model.objects import Obj, name_of, namespace_of
from reconciler.observability.logging import configure_logging
from simulator.environment import SimulatedEnvironment

MIN_TIMING_SECONDS = 0.3


def rate(n: int, work: Callable[[], object]) -> float:
    """Items per second of whole passes of `work` (n items each), repeated until the timing
    has lasted `MIN_TIMING_SECONDS`."""
    passes = 0
    start = time.perf_counter()
    while True:
        work()
        passes += 1
        elapsed = time.perf_counter() - start
        if elapsed >= MIN_TIMING_SECONDS:
            return passes * n / elapsed


def medians(n: int, works: Sequence[Callable[[], object]], repeat: int = 3) -> list[float]:
    """The median of `repeat` rates of each of `works`, timed in turn (one of each, then the
    next round), so that a change of the machine's load falls on all of them alike."""
    rates: list[list[float]] = [[] for _ in works]
    for _ in range(repeat):
        for found, work in zip(rates, works, strict=True):
            found.append(rate(n, work))
    return [statistics.median(found) for found in rates]


def main(n: int) -> None:
    configure_logging(level="warning")
    env = SimulatedEnvironment()
    for loaded in objects(n):
        env.cluster.apply(loaded.obj)
    fast = OwnerController(env.cluster, env.clock, WORKLOAD)
    full = OwnerController(env.cluster, env.clock, WORKLOAD, fast_path=False)

    def workloads() -> list[Obj]:
        return env.cluster.list(CARTO_API, "Workload")

    for _ in range(3):
        for w in workloads():
            fast.reconcile(w)
    settled = workloads()
    assert len(fast._settled) == n, f"only {len(fast._settled)} of {n} settled"
    revision = env.revision()

    def offer(controller: OwnerController) -> Callable[[], None]:
        def work() -> None:
            for w in settled:
                controller.reconcile(w)
        return work

    chain = env.cluster.list(CARTO_API, "ClusterSupplyChain")[0]
    blueprint = Blueprint.of(chain)

    def naive() -> None:
        for w in settled:
            ctx = OwnerContext(owner=w, owner_key="workload", blueprint_key="supply chain",
                               labels=lambda res, tpl: {})
            for resource in blueprint.resources:
                kind = resource.template_kind
                name = resource.template_name or str(resource.options[0].get("name"))
                tpl = env.cluster.get(CARTO_API, kind, "", name)
                assert tpl is not None
                template = Template(kind, name, tpl)
                desired = fast.realizer._stamp(ctx, blueprint, resource, template, Outputs(),
                                               "", {})
                live = env.cluster.get(str(desired["apiVersion"]), str(desired["kind"]),
                                       namespace_of(w), name_of(desired))
                DeepDiff(live, desired)

    fast_rate, full_rate, naive_rate = medians(n, [offer(fast), offer(full), naive])
    assert env.revision() == revision, "a no-op pass changed the cluster"
    refs = len(next(iter(fast._settled.values())).refs)
    print(f"owner reconcile with nothing to change, N={n} settled greeter Workloads "
          f"({refs} objects' versions compared each, and the blueprint kind's)")
    print(f"  fast path        {fast_rate:>10,.0f} /s")
    print(f"  full reconcile   {full_rate:>10,.0f} /s   ratio {fast_rate / full_rate:6.1f}x")
    print(f"  naive + DeepDiff {naive_rate:>10,.0f} /s   ratio {fast_rate / naive_rate:6.1f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
