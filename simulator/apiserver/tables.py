"""`Table` responses (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`), what `kubectl get`
prints: a CRD's additionalPrinterColumns, or for built-in kinds the columns kube-apiserver's
printers give where they are cheap to compute, and NAME plus AGE for everything else."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reconciler.model.jsonpath import compile_path
from reconciler.model.objects import Obj
from simulator.apiserver import events
from simulator.apiserver.resources import ResourceType

TABLE_MEDIA = "as=Table"


def wants_table(accept: str) -> bool:
    return TABLE_MEDIA in accept and "g=meta.k8s.io" in accept


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str
    priority: int = 0
    format: str = ""
    path: str = ""


NAME = Column("Name", "string", "Name must be unique within a namespace.", format="name")
AGE = Column("Age", "string", "CreationTimestamp is a timestamp representing the server time "
                               "when this object was created.", path=".metadata.creationTimestamp")

# Cartographer's own CRDs declare these columns; the generated CRDs here do not (yet), so the
# served Workload and Deliverable print as they would on a cluster running Cartographer.
_CARTO = {
    "Workload": (("Source", ".spec.source['git.url','image']"),
                 ("SupplyChain", ".status.supplyChainRef.name"),
                 ("Ready", ".status.conditions[?(@.type=='Ready')].status"),
                 ("Reason", ".status.conditions[?(@.type=='Ready')].reason")),
    "Deliverable": (("Source", ".spec.source['git.url','image']"),
                    ("Delivery", ".status.deliveryRef.name"),
                    ("Ready", ".status.conditions[?(@.type=='Ready')].status"),
                    ("Reason", ".status.conditions[?(@.type=='Ready')].reason")),
}


def columns(t: ResourceType) -> list[Column]:
    if t.columns:
        out = [NAME]
        for c in t.columns:
            out.append(Column(str(c.get("name", "")), str(c.get("type", "string")),
                              str(c.get("description", "")), int(c.get("priority", 0) or 0),
                              str(c.get("format", "")), str(c.get("jsonPath", ""))))
        return out
    if t.group == "carto.run" and t.kind in _CARTO:
        return [NAME, *(Column(n, "string", "", path=p) for n, p in _CARTO[t.kind]),
                Column("Age", "date", "", path=".metadata.creationTimestamp")]
    if (t.group, t.kind) in _EVENT_KINDS:
        return list(_EVENT_COLUMNS)
    builtin = _BUILTIN.get((t.group, t.kind))
    if builtin is not None:
        return [NAME, *(Column(n, "string", "") for n in builtin[0]), AGE]
    if (t.group, t.kind) == ("apiextensions.k8s.io", "CustomResourceDefinition"):
        return [NAME, Column("Created At", "date", "", path=".metadata.creationTimestamp")]
    return [NAME, AGE]


def table(t: ResourceType, objects: Sequence[Obj], now: float, include: str,
          revision: str = "", continue_token: str = "", headers: bool = True) -> Obj:
    cols = columns(t)
    rows = [{"cells": _cells(t, cols, obj, now), "object": _embedded(obj, include)}
            for obj in objects]
    out: Obj = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {}}
    if revision:
        out["metadata"]["resourceVersion"] = revision
    if continue_token:
        out["metadata"]["continue"] = continue_token
    out["columnDefinitions"] = [
        {"name": c.name, "type": "string" if c is AGE else c.type, "format": c.format,
         "description": c.description, "priority": c.priority} for c in cols] if headers else []
    out["rows"] = rows
    return out


def _embedded(obj: Obj, include: str) -> Any:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata") or {}}


def _cells(t: ResourceType, cols: Sequence[Column], obj: Obj, now: float) -> list[Any]:
    if (t.group, t.kind) in _EVENT_KINDS and not t.columns:
        return _event_cells(obj, now)
    meta = obj.get("metadata") or {}
    builtin = _BUILTIN.get((t.group, t.kind))
    extra = builtin[1](obj) if builtin is not None and not t.columns else []
    cells: list[Any] = []
    for i, c in enumerate(cols):
        if c is NAME:
            cells.append(meta.get("name", ""))
        elif c is AGE:
            cells.append(age(meta.get("creationTimestamp"), now))
        elif builtin is not None and not c.path and i - 1 < len(extra):
            cells.append(extra[i - 1])
        else:
            cells.append(_value(c, obj, now))
    return cells


def _value(c: Column, obj: Obj, now: float) -> Any:
    try:
        found = compile_path(c.path).find(obj) if c.path else []
    except Exception:  # a CRD's column path the evaluator cannot read prints empty, as kubectl's
        return None
    if not found:
        return None
    value = found[0] if len(found) == 1 else ",".join(str(v) for v in found)
    if c.type == "date":
        return age(value, now)
    if c.type in ("integer", "number", "boolean") or isinstance(value, str):
        return value
    return str(value)


def age(timestamp: Any, now: float) -> str:
    if not isinstance(timestamp, str) or not timestamp:
        return "<unknown>"
    try:
        then = datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return "<unknown>"
    return human_duration(now - then)


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery's duration.HumanDuration."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = hours // 24
        return f"{days // 365}y" if days % 365 == 0 else f"{days // 365}y{days % 365}d"
    return f"{hours // 24 // 365}y"


# --- built-in printers (the cheap part of kube-apiserver's) --------------------------------

_EVENT_KINDS = {("", "Event"), ("events.k8s.io", "Event")}
_EVENT_COLUMNS = (
    Column("Last Seen", "string", "Time when last this event was seen."),
    Column("Type", "string", "Type of this event."),
    Column("Reason", "string", "Reason why this event was generated."),
    Column("Object", "string", "The object this event is about."),
    Column("Subobject", "string", "The subobject this event is about.", priority=1),
    Column("Source", "string", "The component reporting this event.", priority=1),
    Column("Message", "string", "A human-readable description of the status of this "
                                "operation."),
    Column("First Seen", "string", "Time when this event was first seen.", priority=1),
    Column("Count", "integer", "How many times this event happened.", priority=1),
    Column("Name", "string", "Name must be unique within a namespace.", priority=1,
           format="name"),
)
"""kube-apiserver's event printer: its columns and cells for both Event APIs."""


def _event_cells(obj: Obj, now: float) -> list[Any]:
    if str(obj.get("apiVersion", "")).startswith("events.k8s.io/"):
        obj = {**events.to_core(obj), "metadata": obj.get("metadata") or {}}
    first = age(obj.get("firstTimestamp"), now) if obj.get("firstTimestamp") else age(
        obj.get("eventTime"), now)
    last = age(obj.get("lastTimestamp"), now) if obj.get("lastTimestamp") else first
    count = obj.get("count") or 1
    series = obj.get("series")
    if isinstance(series, Mapping):
        last = age(series.get("lastObservedTime"), now)
        count = series.get("count") or count
    involved = obj.get("involvedObject") or {}
    kind = str(involved.get("kind") or "").lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    source = obj.get("source") or {}
    reporter = ", ".join(str(x) for x in (
        source.get("component") or obj.get("reportingComponent"),
        source.get("host") or obj.get("reportingInstance")) if x)
    return [last, obj.get("type") or "", obj.get("reason") or "", target,
            involved.get("fieldPath") or "", reporter,
            str(obj.get("message") or "").strip(), first, int(count),
            (obj.get("metadata") or {}).get("name", "")]


def _get(obj: Mapping[str, Any], *path: str) -> Any:
    current: Any = obj
    for step in path:
        current = current.get(step) if isinstance(current, Mapping) else None
    return current


def _count(value: Any) -> int:
    return len(value) if isinstance(value, (Mapping, list)) else 0


def _deployment(obj: Obj) -> list[Any]:
    replicas = _get(obj, "spec", "replicas")
    replicas = 1 if replicas is None else replicas
    return [f"{_get(obj, 'status', 'readyReplicas') or 0}/{replicas}",
            _get(obj, "status", "updatedReplicas") or 0,
            _get(obj, "status", "availableReplicas") or 0]


def _pod(obj: Obj) -> list[Any]:
    containers = _get(obj, "spec", "containers") or []
    statuses = _get(obj, "status", "containerStatuses") or []
    ready = sum(1 for s in statuses if isinstance(s, Mapping) and s.get("ready"))
    restarts = sum(int(s.get("restartCount") or 0) for s in statuses if isinstance(s, Mapping))
    return [f"{ready}/{len(containers)}", _get(obj, "status", "phase") or "Pending", restarts]


def _service(obj: Obj) -> list[Any]:
    ports = _get(obj, "spec", "ports") or []
    shown = ",".join(f"{p.get('port')}{':' + str(p['nodePort']) if p.get('nodePort') else ''}"
                     f"/{p.get('protocol') or 'TCP'}" for p in ports if isinstance(p, Mapping))
    ingress = _get(obj, "status", "loadBalancer", "ingress") or []
    external = ",".join(str(i.get("ip") or i.get("hostname")) for i in ingress
                        if isinstance(i, Mapping)) or (
        "<pending>" if _get(obj, "spec", "type") == "LoadBalancer" else "<none>")
    return [_get(obj, "spec", "type") or "ClusterIP", _get(obj, "spec", "clusterIP") or "<none>",
            external, shown or "<none>"]


_BUILTIN: dict[tuple[str, str], tuple[tuple[str, ...], Any]] = {
    ("", "ConfigMap"): (("Data",), lambda o: [_count(o.get("data")) + _count(
        o.get("binaryData"))]),
    ("", "Secret"): (("Type", "Data"), lambda o: [o.get("type") or "Opaque",
                                                  _count(o.get("data"))]),
    ("", "Namespace"): (("Status",), lambda o: [_get(o, "status", "phase") or "Active"]),
    ("", "Pod"): (("Ready", "Status", "Restarts"), _pod),
    ("", "Service"): (("Type", "Cluster-IP", "External-IP", "Port(s)"), _service),
    ("", "ServiceAccount"): (("Secrets",), lambda o: [_count(o.get("secrets"))]),
    ("apps", "Deployment"): (("Ready", "Up-to-date", "Available"), _deployment),
    ("coordination.k8s.io", "Lease"): (("Holder",), lambda o: [
        _get(o, "spec", "holderIdentity") or ""]),
    ("apps", "ReplicaSet"): (("Desired", "Current", "Ready"), lambda o: [
        _get(o, "spec", "replicas") or 0, _get(o, "status", "replicas") or 0,
        _get(o, "status", "readyReplicas") or 0]),
    ("apps", "StatefulSet"): (("Ready",), lambda o: [
        f"{_get(o, 'status', 'readyReplicas') or 0}/{_get(o, 'spec', 'replicas') or 0}"]),
    ("batch", "Job"): (("Status", "Completions"), lambda o: [
        "Complete" if _get(o, "status", "succeeded") else "Running",
        f"{_get(o, 'status', 'succeeded') or 0}/{_get(o, 'spec', 'completions') or 1}"]),
}
