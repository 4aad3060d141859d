"""The helpers the simulated ecosystem controllers (kpack, Knative, scanning) share with the
built-in ones, in simulator.kube_common."""

from __future__ import annotations

import pytest

from simulator.kube_common import condition_of, env_flag, namespace_name, parse_time, succeeded


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
