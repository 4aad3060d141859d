"""`events.k8s.io/v1` Events: the core/v1 Events, converted, as kube-apiserver serves them.

Both API groups show the same stored events (kube keeps one storage for them): `involvedObject`
is `regarding`, `message` is `note`, `source` is `deprecatedSource`, `reportingComponent` is
`reportingController`, `count` and the first and last timestamps are `deprecated*`; `eventTime`,
`series`, `action`, `related`, `reason`, `type` and `reportingInstance` are the same fields.
"""

from __future__ import annotations

from typing import Any

from reconciler.model.objects import Obj

GROUP = "events.k8s.io"
API_VERSION = "events.k8s.io/v1"

# core/v1 field -> events.k8s.io/v1 field
_RENAMES = (
    ("involvedObject", "regarding"), ("message", "note"), ("source", "deprecatedSource"),
    ("reportingComponent", "reportingController"),
    ("firstTimestamp", "deprecatedFirstTimestamp"), ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
)
_SAME = ("metadata", "eventTime", "series", "action", "related", "reason", "type",
         "reportingInstance")


def to_events_v1(core: Obj) -> Obj:
    out: dict[str, Any] = {"apiVersion": API_VERSION, "kind": "Event"}
    for name in _SAME:
        if core.get(name) not in (None, "", {}):
            out[name] = core[name]
    for old, new in _RENAMES:
        if core.get(old) not in (None, "", {}, 0):
            out[new] = core[old]
    out.setdefault("eventTime", None)
    return out


def to_core(event: Obj) -> Obj:
    out: dict[str, Any] = {"apiVersion": "v1", "kind": "Event"}
    for name in _SAME:
        if event.get(name) not in (None, "", {}):
            out[name] = event[name]
    for old, new in _RENAMES:
        if event.get(new) not in (None, "", {}, 0):
            out[old] = event[new]
    out.setdefault("involvedObject", {})
    return out
