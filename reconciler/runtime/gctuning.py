"""Python's cycle collector, tuned once what a process loaded is in memory (issue 14).

A `simulate` run or a daemon holds thousands of long-lived objects (the cluster's objects, the
inputs, the controllers' records) and allocates many short-lived dicts per reconcile, nearly all
freed by reference counting. With Python's default thresholds (700/10/10) the collector runs
every 700 net container allocations and, every hundred of those, walks every long-lived object
again: `benchmarks/memory_gc.py` measured it at a fifth of a first install's time.
`tune_after_load` raises the gen0 threshold to `GEN0_THRESHOLD` and the gen1 threshold to
`GEN1_THRESHOLD`, and, with `freeze`, moves what is in memory now to the permanent generation
(`gc.freeze`) so the collector never walks it again.

Why gen1 too: nearly nothing a first install allocates is cyclic garbage (1,083 objects found by
every collection of a 10,000-workload install together), but what survives a young collection
is walked again by every gen1 collection, which with Python's 10 came after every 10 young ones:
at 10,000 paved-path workloads 20 gen1 collections and one full one cost as much as the 228
young ones (3.8 + 1.9 s against 3.9 s of CPU, timed per generation with `gc.callbacks`; see
docs/performance.md). After 100 young collections instead, the collector's CPU fell from 9.6 to
6.2 s in the same measurement. With fewer cycles made since, a 10,000-workload install took 154
young collections (3.1 s) and, past the 100th, a gen1 one that walked 1.8 million objects and
freed 5 (1.3 s, 30% of the collector); after 1,000 young collections (50 million net
allocations) gen1 collections, and so full ones (after 10 gen1 ones), no longer happen in an
install of that size, and cost less in a larger one: objects that live for a while but not
for ever (a reconcile's copies, replaced object versions) are mostly gone before a gen1
collection walks them. Cyclic garbage that outlives a young collection waits longer to be
freed: up to 50 million net allocations while it is in gen1, and once a gen1 collection has
moved it to the oldest generation, until a full collection, which comes after 10 gen1 ones
(500 million net allocations; Python also waits until a quarter of the long-lived heap is new).
In an install nearly none does (about 1,000 objects in all at 10,000 workloads). The measurements
above are of installs; a daemon's steady state (`run`, `serve`) was not measured with this
threshold. What a daemon holds this way is bounded by what it allocates, not by time: the
thresholds count net container allocations (allocations minus deallocations), and a settled
reconcile frees by reference counting nearly all it allocates, so a daemon at rest may go a long
time between collections, but then also makes next to no garbage.

What is left is the young collections: each walks what survived since the last one, so each
long-lived container (a stored object's maps and lists, the controllers' records) is walked
once whatever the threshold (gen0 at 50,000, 200,000 or 1,000,000 took the same 3.1-3.5 s at
10,000 workloads), and a walked object costs more in a larger heap (about 2x per object at
10,000 workloads than at 1,000: cache misses). Fewer long-lived containers is the only way to
make them cheaper.

Freeze only what lives as long as the process (the daemon's loaded world): the collector never
frees a frozen object, nor anything a reference cycle through it keeps alive, so a world frozen
by a `simulate` call that the caller then drops (the cluster and its controllers refer to each
other through listeners) would stay in memory until the process ends. `simulate` therefore
raises the threshold only. The freeze happens once per process.

A batch run to a fixed point (`engine/runner.run_until_settled`: `simulate` and `plan`, from
applying their inputs on, the kuttl runner) goes further while it runs, with
`sampled_young_collections`: it runs one young collection in `SAMPLE_EVERY` and skips the
others by freezing what they would walk (`gc.freeze` is a list splice: nothing is walked); what
it froze is unfrozen, into the oldest generation, when the run ends. The young collections of a
10,000-workload install took 3.2-3.5 s of CPU and found 797 objects of garbage in all (143 of
them with gen0 at 50,000; 44 at 200,000 and 26 at 500,000 took as long: each survivor is walked
once whatever the threshold); sampled, 0.3 s (measured per generation with `gc.callbacks`).
Skipping stops as soon as a collection that ran finds more than 1% of the
gen0 threshold in garbage (a run that makes cyclic garbage: a failing step keeping its frames,
say), and resumes only after one that finds no more. Garbage made between two sampled collections
is not freed before the run ends: for garbage made at a steady rate that is at most 1% of the
run's net container allocations; after the run it waits, like any old object, for a full
collection. The daemon's driver never does this (`run`, `serve`: a long-lived process collects
as tuned above), nor a run in a process where something is frozen already (its unfreeze would
thaw that too), nor a second run while one is at it; and `tune_after_load(freeze=True)` called
while a run samples (another thread of the same process) does not freeze, so that a later call
still can.

`RECONCILER_GC_TUNING=off` (or 0, false, no) leaves the collector as Python sets it.
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final

GEN0_THRESHOLD: Final = 50_000
"""Net container allocations between young collections (Python's default: 700)."""
GEN1_THRESHOLD: Final = 1_000
"""Young collections between two gen1 collections (Python's default: 10)."""
SAMPLE_EVERY: Final = 8
"""During a batch run, one young collection in this many runs; the others are skipped."""
SWITCH: Final = "RECONCILER_GC_TUNING"
_OFF: Final = frozenset({"off", "0", "false", "no"})

_lock = threading.Lock()
_frozen = False
_sampling = False  # a batch run samples young collections (`sampled_young_collections`)


def enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the tuning is on: unless `RECONCILER_GC_TUNING` says off."""
    value = (os.environ if environ is None else environ).get(SWITCH, "on")
    return value.strip().lower() not in _OFF


def tune_after_load(freeze: bool = False, environ: Mapping[str, str] | None = None) -> bool:
    """Raise the gen0 and gen1 thresholds and, with `freeze` and the first time only, freeze
    what is in memory; nothing unless `enabled`. True when it tuned."""
    global _frozen
    if not enabled(environ):
        return False
    gen2 = gc.get_threshold()[2]
    gc.set_threshold(GEN0_THRESHOLD, GEN1_THRESHOLD, gen2)
    if freeze:
        with _lock:
            # While a batch run samples, its thaw at the end would thaw this freeze too: the
            # freeze is left to a later call (the flag stays down).
            if _frozen or _sampling:
                return True
            _frozen = True
        gc.collect()
        gc.freeze()
    return True


class _Sampler:
    """The `gc.callbacks` entry of `sampled_young_collections`: decides, as each young
    collection starts, whether it runs or what it would walk is frozen instead."""

    def __init__(self) -> None:
        self.young = 0  # young collections started
        self.skipped = 0
        self.skipping = False  # the last collection that ran found (nearly) no garbage
        self._running = False  # the collection under way runs (is not skipped)

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") != 0:
            return
        if phase == "start":
            self.young += 1
            self._running = not self.skipping or self.young % SAMPLE_EVERY == 0
            if not self._running:
                self.skipped += 1
                gc.freeze()  # the collection that follows finds nothing to walk
        elif self._running:
            tolerance = gc.get_threshold()[0] // 100
            self.skipping = int(info.get("collected", 0)) <= tolerance



@contextmanager
def sampled_young_collections(environ: Mapping[str, str] | None = None) -> Iterator[None]:
    """For a batch run's duration: one young collection in `SAMPLE_EVERY` runs, the others
    freeze what they would walk, while those that run find next to no garbage; everything
    frozen is unfrozen at the end (see the module docstring). Nothing unless `enabled`, the
    collector is on, nothing is frozen already and no other run is at it."""
    global _sampling
    with _lock:
        active = (not _sampling and enabled(environ) and gc.isenabled()
                  and gc.get_freeze_count() == 0)
        if active:
            _sampling = True
    if not active:
        yield
        return
    sampler = _Sampler()
    gc.callbacks.append(sampler)
    try:
        yield
    finally:
        gc.callbacks.remove(sampler)
        gc.unfreeze()
        with _lock:
            _sampling = False
