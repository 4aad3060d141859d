"""Python's cycle collector, tuned once what a process loaded is in memory (issue 14).

A `simulate` run or a daemon holds thousands of long-lived objects (the cluster's objects, the
inputs, the controllers' records) and allocates many short-lived dicts per reconcile, nearly all
freed by reference counting. With Python's default thresholds (700/10/10) the collector runs
every 700 net container allocations and, every hundred of those, walks every long-lived object
again: `benchmarks/memory_gc.py` measured it at about a fifth of a first install's CPU time.
`tune_after_load` moves what is in memory now to the permanent generation (`gc.freeze`), so the
collector never walks it again, and raises the gen0 threshold to `GEN0_THRESHOLD`. Frozen
objects are still freed by reference counting when they are dropped; only a reference cycle
among them would stay until the process ends, and the loaded objects are plain trees.

Once per process: the first call after loading tunes; later ones (a test process's many
simulations, `simulate --watch`'s reruns) change nothing. `RECONCILER_GC_TUNING=off` (or 0,
false, no) leaves the collector as Python sets it.
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Mapping
from typing import Final

GEN0_THRESHOLD: Final = 50_000
"""Net container allocations between young collections (Python's default: 700)."""
SWITCH: Final = "RECONCILER_GC_TUNING"
_OFF: Final = frozenset({"off", "0", "false", "no"})

_lock = threading.Lock()
_tuned = False


def enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the tuning is on: unless `RECONCILER_GC_TUNING` says off."""
    value = (os.environ if environ is None else environ).get(SWITCH, "on")
    return value.strip().lower() not in _OFF


def tune_after_load(environ: Mapping[str, str] | None = None) -> bool:
    """Freeze what is in memory and raise the gen0 threshold, the first time it is called in
    this process and only when `enabled`; True when this call tuned."""
    global _tuned
    if not enabled(environ):
        return False
    with _lock:
        if _tuned:
            return False
        _tuned = True
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
    return True
