"""The collector's tuning after load (`reconciler/runtime/gctuning.py`): what it changes, the
freeze once per process, and its off switch. Each case runs in a fresh interpreter, since the
tuning is process-wide."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from reconciler.runtime.gctuning import (
    GEN0_THRESHOLD,
    GEN1_THRESHOLD,
    SAMPLE_EVERY,
    SWITCH,
    enabled,
)

PROBE = """
import gc, json
from reconciler.runtime import gctuning
before = gc.get_threshold()
plain = gctuning.tune_after_load()
threshold = gc.get_threshold()
unfrozen = gc.get_freeze_count()
first = gctuning.tune_after_load(freeze=True)
frozen = gc.get_freeze_count()
gc.unfreeze()
again = gctuning.tune_after_load(freeze=True)
print(json.dumps({"before": before, "plain": plain, "threshold": threshold,
                  "unfrozen": unfrozen, "first": first, "frozen": frozen, "again": again,
                  "refrozen": gc.get_freeze_count()}))
"""

SIMULATED = """
import gc, json
from reconciler.simulation import simulate
from reconciler.loader import load_text
before = gc.get_threshold()
simulate(load_text('''apiVersion: v1
kind: ConfigMap
metadata: {name: c, namespace: default}
''', "c.yaml"))
print(json.dumps({"before": before, "after": gc.get_threshold(),
                  "frozen": gc.get_freeze_count()}))
"""


def _run(code: str, switch: str | None = None) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != SWITCH}
    if switch is not None:
        env[SWITCH] = switch
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert isinstance(found, dict)
    return found


def test_threshold_always_freeze_once_and_only_when_asked() -> None:
    found = _run(PROBE)
    assert found["plain"] is True
    assert found["threshold"] != found["before"]
    assert isinstance(found["threshold"], list) and isinstance(found["before"], list)
    assert found["threshold"] == [GEN0_THRESHOLD, GEN1_THRESHOLD, found["before"][2]]
    assert found["unfrozen"] == 0  # no freeze unless asked
    assert found["first"] is True
    assert isinstance(found["frozen"], int) and found["frozen"] > 0
    # Once per process: a second load's caller does not freeze again.
    assert found["again"] is True
    assert found["refrozen"] == 0


@pytest.mark.parametrize("switch", ["off", "0", "False", " no "])
def test_switch_turns_it_off(switch: str) -> None:
    found = _run(PROBE, switch)
    assert found["plain"] is False and found["first"] is False
    assert found["threshold"] == found["before"]
    assert found["frozen"] == 0
    assert not enabled({SWITCH: switch})


def test_on_unless_switched_off() -> None:
    assert enabled({})
    assert enabled({SWITCH: "on"})


def test_simulate_raises_the_threshold_and_freezes_nothing() -> None:
    """A simulation's world is the caller's to drop: frozen, it would never be collected."""
    found = _run(SIMULATED)
    assert isinstance(found["after"], list) and found["after"][:2] == [GEN0_THRESHOLD,
                                                                       GEN1_THRESHOLD]
    assert found["frozen"] == 0
    off = _run(SIMULATED, "off")
    assert off["after"] == off["before"]


SAMPLED = """
import gc, json, os, weakref
from reconciler.runtime import gctuning
gc.set_threshold(1000, 10, 10)
class Node:
    pass
def cycles(n):
    refs = []
    for _ in range(n):
        a, b = Node(), Node()
        a.other, b.other = b, a
        refs.append(weakref.ref(a))
    return refs
def alive(refs):
    return sum(r() is not None for r in refs)
mode = os.environ["MODE"]
if mode == "frozen":
    gc.freeze()
before = gc.get_freeze_count()
kept, refs, during = [], [], []
with gctuning.sampled_young_collections():
    for i in range(24):
        kept.append([{"n": [i]} for _ in range(200)])  # long-lived: what a run builds
        if mode == "garbage" or (mode == "late" and i >= 4):
            refs += cycles(50)
        gc.collect(0)
        during.append(gc.get_freeze_count())
    freed_during = len(refs) - alive(refs)
after = gc.get_freeze_count()
gc.collect()
print(json.dumps({"before": before, "during": during, "after": after, "made": len(refs),
                  "freed_during": freed_during, "left": alive(refs)}))
"""


def test_a_batch_run_skips_young_collections_that_find_nothing_and_thaws_after() -> None:
    found = _run(SAMPLED.replace('os.environ["MODE"]', '"clean"'))
    during = found["during"]
    assert isinstance(during, list)
    # The first collection runs and finds nothing; later ones freeze instead of walking,
    # one in SAMPLE_EVERY running; everything is thawed at the end.
    assert during[0] == 0 and max(during) > 0
    assert found["after"] == 0


def test_garbage_found_by_a_collection_keeps_every_collection_running() -> None:
    found = _run(SAMPLED.replace('os.environ["MODE"]', '"garbage"'))
    assert found["during"] == [0] * 24  # nothing frozen: each collection ran
    made, freed = found["made"], found["freed_during"]
    assert isinstance(made, int) and isinstance(freed, int) and made == 24 * 50
    # (A collection Python starts while a batch is being made moves it out of gen0.)
    assert freed >= made - 50


def test_garbage_that_starts_later_is_found_by_a_sample_and_all_of_it_freed_after() -> None:
    found = _run(SAMPLED.replace('os.environ["MODE"]', '"late"'))
    made, freed = found["made"], found["freed_during"]
    assert isinstance(made, int) and isinstance(freed, int)
    # At most the periods skipped before a sample found the garbage wait for the run's end
    # (SAMPLE_EVERY - 1 of them here); after it, a full collection frees all of it.
    assert made - freed <= (SAMPLE_EVERY - 1) * 50
    assert freed > 0
    assert found["after"] == 0 and found["left"] == 0


@pytest.mark.parametrize("switch, mode", [("off", "clean"), (None, "frozen")])
def test_no_skipping_when_switched_off_or_something_is_frozen(switch: str | None,
                                                              mode: str) -> None:
    """Frozen already (a daemon's loaded world): the run's thaw would thaw that too."""
    found = _run(SAMPLED.replace('os.environ["MODE"]', repr(mode)), switch)
    assert found["during"] == [found["before"]] * 24
    assert found["after"] == found["before"]


DAEMON_DURING_A_RUN = """
import gc, json
from reconciler.runtime import gctuning
with gctuning.sampled_young_collections():
    during = gctuning.tune_after_load(freeze=True)
    frozen_during = gc.get_freeze_count()
thawed = gc.get_freeze_count()
later = gctuning.tune_after_load(freeze=True)
print(json.dumps({"during": during, "frozen_during": frozen_during, "thawed": thawed,
                  "later": later, "frozen_later": gc.get_freeze_count()}))
"""


def test_a_freeze_asked_for_while_a_batch_run_samples_is_left_to_a_later_call() -> None:
    """The run's thaw at its end would thaw that freeze too, and the once-per-process flag
    would then keep it from ever being made again."""
    found = _run(DAEMON_DURING_A_RUN)
    assert found["during"] is True and found["frozen_during"] == 0 and found["thawed"] == 0
    assert found["later"] is True
    frozen_later = found["frozen_later"]
    assert isinstance(frozen_later, int) and frozen_later > 0
