"""The collector's tuning after load (`reconciler/runtime/gctuning.py`): what it changes, once
per process, and its off switch. Each case runs in a fresh interpreter, since the tuning is
process-wide and happens once."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from reconciler.runtime.gctuning import GEN0_THRESHOLD, SWITCH, enabled

PROBE = """
import gc, json
from reconciler.runtime import gctuning
before = gc.get_threshold()
first = gctuning.tune_after_load()
frozen = gc.get_freeze_count()
gc.set_threshold(*before)
second = gctuning.tune_after_load()
print(json.dumps({"before": before, "first": first, "frozen": frozen, "second": second,
                  "after": gc.get_threshold()}))
"""

TUNED = """
import gc, json
from reconciler.simulation import simulate
from reconciler.loader import load_text
before = gc.get_threshold()
result = simulate(load_text('''apiVersion: v1
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


def test_tunes_once_per_process() -> None:
    found = _run(PROBE)
    assert found["first"] is True
    assert isinstance(found["frozen"], int) and found["frozen"] > 0
    # The second call leaves the (restored) defaults alone.
    assert found["second"] is False
    assert found["after"] == found["before"]


@pytest.mark.parametrize("switch", ["off", "0", "False", " no "])
def test_switch_turns_it_off(switch: str) -> None:
    found = _run(PROBE, switch)
    assert found["first"] is False
    assert found["frozen"] == 0
    assert not enabled({SWITCH: switch})


def test_on_unless_switched_off() -> None:
    assert enabled({})
    assert enabled({SWITCH: "on"})


def test_simulate_tunes_after_loading() -> None:
    found = _run(TUNED)
    assert found["before"] != found["after"]
    assert isinstance(found["after"], list) and found["after"][0] == GEN0_THRESHOLD
    assert isinstance(found["frozen"], int) and found["frozen"] > 0
    off = _run(TUNED, "off")
    assert off["after"] == off["before"]
    assert off["frozen"] == 0
