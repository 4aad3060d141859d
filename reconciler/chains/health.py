"""The `Healthy` condition of a stamped object, by its template's `healthRule`.

Rules: none (healthy once outputs are read), `alwaysHealthy`, `singleConditionType` (mirror one
condition of the object) and `multiMatch` (unhealthy if any unhealthy matcher holds, healthy if
every healthy matcher holds, unknown otherwise).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.model.conditions import FALSE, TRUE, UNKNOWN, Condition, find_condition
from reconciler.model.jsonpath import JSONPathError, evaluate
from reconciler.model.objects import Obj
from reconciler.model.selectors import display, requirement_holds

HEALTHY = "Healthy"


def health_condition(
    rule: Mapping[str, Any] | None, stamped: Obj | None, has_outputs: bool
) -> Condition:
    if rule is None:
        if stamped is None:
            return Condition(HEALTHY, UNKNOWN, "NoResource")
        if has_outputs:
            return Condition(HEALTHY, TRUE, "OutputsAvailable")
        return Condition(HEALTHY, UNKNOWN, "OutputNotAvailable")
    if "alwaysHealthy" in rule:
        return Condition(HEALTHY, TRUE, "AlwaysHealthy")
    if stamped is not None and rule.get("singleConditionType"):
        return _single_condition(str(rule["singleConditionType"]), stamped)
    multi = rule.get("multiMatch")
    if stamped is not None and isinstance(multi, Mapping):
        return _multi_match(multi, stamped)
    # Nothing to read the rule from (no stamped object yet): Cartographer's catch-all.
    return Condition(HEALTHY, UNKNOWN, "Unknown")


def _status(stamped: Obj) -> Mapping[str, Any]:
    status = stamped.get("status")
    # dict first: the abstract Mapping check costs more, and nearly every one is a dict.
    return status if type(status) is dict or isinstance(status, Mapping) else {}


def _single_condition(type_: str, stamped: Obj) -> Condition:
    cond = find_condition(_status(stamped).get("conditions"), type_)
    if cond is None:
        return Condition(HEALTHY, UNKNOWN, "SingleConditionNoResult")
    value = cond.get("status")
    if value in (TRUE, FALSE):
        return Condition(HEALTHY, str(value), f"{type_}Condition", str(cond.get("message") or ""))
    return Condition(HEALTHY, UNKNOWN, f"{type_}Condition", str(cond.get("message") or ""))


def _lookup(path: str, obj: Obj) -> tuple[bool, Any]:
    try:
        value = evaluate(path, obj)
    except JSONPathError:
        return False, None
    return True, value


def _field_holds(matcher: Mapping[str, Any], stamped: Obj) -> tuple[bool, str]:
    present, value = _lookup(str(matcher.get("key", "")), stamped)
    ok = requirement_holds(present, value, matcher)
    message = ""
    if ok:
        message_path = matcher.get("messagePath")
        shown = value if present else ""
        if message_path:
            _, extra = _lookup(str(message_path), stamped)
            message = f"field value: {display(shown)}, message: {display(extra)}"
        else:
            message = f"field value: {display(shown)}"
    return ok, message


def _condition_holds(matcher: Mapping[str, Any], stamped: Obj) -> tuple[bool, str]:
    cond = find_condition(_status(stamped).get("conditions"), str(matcher.get("type")))
    if cond is None or cond.get("status") != matcher.get("status"):
        return False, ""
    return True, f"condition status: {cond.get('status')}, message: {cond.get('message') or ''}"




def _matchers(block: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    conds: Sequence[Mapping[str, Any]] = block.get("matchConditions") or []
    fields: Sequence[Mapping[str, Any]] = block.get("matchFields") or []
    return [("Condition", c) for c in conds] + [("Field", f) for f in fields]


def _multi_match(multi: Mapping[str, Any], stamped: Obj) -> Condition:
    for kind, matcher in _matchers(multi.get("unhealthy") or {}):
        ok, message = (_condition_holds if kind == "Condition" else _field_holds)(matcher, stamped)
        if ok:
            return Condition(HEALTHY, FALSE, f"Matched{kind}", message)
    healthy = _matchers(multi.get("healthy") or {})
    results = [(kind, *(_condition_holds if kind == "Condition" else _field_holds)(m, stamped))
               for kind, m in healthy]
    if healthy and all(ok for _, ok, _ in results):
        kind, _, message = results[-1]
        return Condition(HEALTHY, TRUE, f"Matched{kind}", message)
    return Condition(HEALTHY, UNKNOWN, "NoMatchesFulfilled")
