"""Kubernetes-style conditions (metav1.Condition) and helpers to set and read them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

TRUE = "True"
FALSE = "False"
UNKNOWN = "Unknown"


class Condition(NamedTuple):
    """One condition as a controller decides it (its time is added when it is written).

    Immutable and compared by value. A named tuple rather than a frozen dataclass: every
    reconcile makes a dozen or more (one made in a third of the time), and, holding only
    strings, the cycle collector stops tracking them after its first look."""

    type: str
    status: str
    reason: str
    message: str = ""

    def to_dict(
        self, transition_time: str, observed_generation: int | None = None
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": self.type,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "lastTransitionTime": transition_time,
        }
        if observed_generation is not None:
            out["observedGeneration"] = observed_generation
        return out


def merge_conditions(
    previous: Iterable[Mapping[str, Any]] | None,
    current: Iterable[Condition],
    now: str,
    observed_generation: int | None = None,
) -> list[dict[str, Any]]:
    """Render `current`, keeping each condition's lastTransitionTime unless its status changed."""
    before: dict[str, Mapping[str, Any]] = {}
    for c in previous or ():
        # dict first: the abstract Mapping check costs more, and nearly every one is a dict.
        if type(c) is dict or isinstance(c, Mapping):
            type_ = c.get("type")
            before[type_ if type(type_) is str else str(type_)] = c
    out = []
    for cond in current:
        old = before.get(cond.type)
        when = now
        if old is not None and old.get("status") == cond.status:
            stamp = old.get("lastTransitionTime")
            if stamp:
                when = stamp if type(stamp) is str else str(stamp)
        out.append(cond.to_dict(when, observed_generation))
    return out


def find_condition(
    conditions: Iterable[Mapping[str, Any]] | None, type_: str
) -> Mapping[str, Any] | None:
    for cond in conditions or ():
        if isinstance(cond, (dict, Mapping)) and cond.get("type") == type_:
            return cond
    return None


def condition_status(obj: Mapping[str, Any], type_: str) -> str | None:
    status = obj.get("status")
    if not isinstance(status, Mapping):
        return None
    cond = find_condition(status.get("conditions"), type_)
    return str(cond.get("status")) if cond is not None else None
