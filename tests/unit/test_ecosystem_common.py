"""The helpers the simulated ecosystem controllers (kpack, Knative, scanning) share with the
built-in ones, in simulator.kube_common."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.model.conditions import FALSE, TRUE, UNKNOWN, Condition, merge_conditions
from simulator.cluster import ObjectView
from simulator.kube_common import (
    condition_of,
    conditions_hold,
    env_flag,
    namespace_name,
    parse_time,
    succeeded,
)


@pytest.mark.parametrize(("value", "default", "expected"), [
    ("true", False, True), (" YES ", False, True), ("1", False, True), ("on", False, True),
    ("false", True, False), ("Off", True, False), ("0", True, False), ("no", True, False),
    ("", True, True), ("maybe", False, False), (None, True, True),
])
def test_env_flag(value: str | None, default: bool, expected: bool) -> None:
    environ = {} if value is None else {"FLAG": value}
    assert env_flag("FLAG", default, environ) is expected


def test_parse_time_reads_z_and_offsets_and_nothing_else() -> None:
    assert parse_time("2026-01-01T00:00:00Z") == 1767225600.0
    assert parse_time("2026-01-01T01:00:00+01:00") == 1767225600.0
    for bad in ("2026-01-01T00:00:00", "yesterday", "", None, 5):
        assert parse_time(bad) is None


def test_conditions_and_names() -> None:
    obj = {"metadata": {"namespace": "apps", "name": "web"},
           "status": {"conditions": ["junk", {"type": "Ready", "status": "True"},
                                     {"type": "Succeeded", "status": "False", "reason": "X"}]}}
    assert namespace_name(obj) == ("apps", "web")
    assert namespace_name({"metadata": {"name": "cluster-wide"}}) == ("", "cluster-wide")
    assert condition_of(obj, "Succeeded")["reason"] == "X"
    assert condition_of(obj, "Missing") == {}
    assert succeeded(obj) == "False"
    assert succeeded({"status": {}}) is None


_WANTED = (Condition("Available", TRUE, "", ""), Condition("Ready", UNKNOWN, "Deploying", "x"))
_WRITTEN = merge_conditions(None, _WANTED, "2026-01-01T00:00:00Z")


def _changed(index: int, **fields: Any) -> list[Any]:
    out: list[Any] = [dict(c) for c in _WRITTEN]
    out[index].update(fields)
    return [{k: v for k, v in c.items() if v is not None} for c in out]


@pytest.mark.parametrize("previous", [
    _WRITTEN,
    None, [], "ab", {"a": 1, "b": 2}, _WRITTEN[:1], [*_WRITTEN, _WRITTEN[0]],
    _WRITTEN[::-1], ["junk", _WRITTEN[1]],
    _changed(0, status=FALSE), _changed(1, reason="Other"), _changed(1, message="y"),
    _changed(1, message=None), _changed(0, lastTransitionTime=None),
    _changed(0, lastTransitionTime=""), _changed(0, lastTransitionTime=5),
    _changed(0, observedGeneration=3), _changed(0, type="Other"),
])
def test_conditions_hold_exactly_when_merging_them_again_changes_nothing(
        previous: Any) -> None:
    # What lets a settled object go unwritten must be what merge_conditions would say: a
    # wrong True would leave a stale condition, a wrong False a write that changes nothing.
    again = merge_conditions(previous, _WANTED, "2026-06-01T00:00:00Z")
    assert conditions_hold(previous, _WANTED) is (again == previous)
    if isinstance(previous, list):  # read through the cluster's read-only views alike
        assert conditions_hold(ObjectView({"c": previous})["c"], _WANTED) is (
            again == previous)
