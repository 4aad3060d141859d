"""Health rules of stamped objects, as Cartographer evaluates them."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.chains.health import health_condition


def obj(conditions: list[dict[str, str]] | None = None, **data: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"apiVersion": "v1", "kind": "X", "metadata": {"name": "x"},
                           "data": data}
    if conditions is not None:
        out["status"] = {"conditions": conditions}
    return out


READY_TRUE = [{"type": "Ready", "status": "True", "message": "ok"}]
READY_FALSE = [{"type": "Ready", "status": "False", "message": "broken"}]
READY_UNKNOWN = [{"type": "Ready", "status": "Unknown"}]
MULTI = {"multiMatch": {
    "healthy": {"matchFields": [{"key": "data.ok", "operator": "Exists",
                                 "messagePath": "metadata.name"}]},
    "unhealthy": {"matchFields": [{"key": "data.kill", "operator": "Exists"}],
                  "matchConditions": [{"type": "Failed", "status": "True"}]},
}}


@pytest.mark.parametrize(
    ("rule", "stamped", "has_outputs", "status", "reason"),
    [
        (None, None, False, "Unknown", "NoResource"),
        (None, obj(), True, "True", "OutputsAvailable"),
        (None, obj(), False, "Unknown", "OutputNotAvailable"),
        ({"alwaysHealthy": {}}, obj(), False, "True", "AlwaysHealthy"),
        ({"singleConditionType": "Ready"}, obj(READY_TRUE), False, "True", "ReadyCondition"),
        ({"singleConditionType": "Ready"}, obj(READY_FALSE), False, "False", "ReadyCondition"),
        ({"singleConditionType": "Ready"}, obj(READY_UNKNOWN), False, "Unknown",
         "ReadyCondition"),
        ({"singleConditionType": "Ready"}, obj(), False, "Unknown", "SingleConditionNoResult"),
        (MULTI, obj(ok="yes"), False, "True", "MatchedField"),
        (MULTI, obj(ok="yes", kill="now"), False, "False", "MatchedField"),
        (MULTI, obj([{"type": "Failed", "status": "True"}], ok="y"), False, "False",
         "MatchedCondition"),
        (MULTI, obj(), False, "Unknown", "NoMatchesFulfilled"),
        ({"singleConditionType": "Ready"}, None, False, "Unknown", "Unknown"),
        (MULTI, None, False, "Unknown", "Unknown"),
        ({"alwaysHealthy": {}}, None, False, "True", "AlwaysHealthy"),
    ],
)
def test_health_condition(rule: dict[str, Any] | None, stamped: dict[str, Any] | None,
                          has_outputs: bool, status: str, reason: str) -> None:
    cond = health_condition(rule, stamped, has_outputs)
    assert (cond.type, cond.status, cond.reason) == ("Healthy", status, reason)


def test_multi_match_message_names_value_and_message_path() -> None:
    cond = health_condition(MULTI, obj(ok="yes"), False)
    assert cond.message == "field value: yes, message: x"
