"""The collector's tuning after load (`reconciler/runtime/gctuning.py`): what it changes, the
freeze once per process, and its off switch. Each case runs in a fresh interpreter, since the
tuning is process-wide."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from reconciler.runtime.gctuning import GEN0_THRESHOLD, GEN1_THRESHOLD, SWITCH, enabled

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
