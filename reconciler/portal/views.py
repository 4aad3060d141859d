"""The portal's JSON documents, read from a `Backend`: the owners and sources (filtered by
namespace and label selector), one owner's path as its blueprint's stages, an object's events and
a stage's Tekton logs.

Every string a user or a build wrote (names, labels, messages, logs) is passed on as data, never
as markup; the page puts it in text nodes. Every list is capped (`MAX_ITEMS`, `MAX_EVENTS`) and
every text cut (`MAX_TEXT`, `MAX_LOG_BYTES`), with a flag saying so, so a response stays bounded
whatever the cluster holds. Secrets are never read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.backends.base import Backend
from reconciler.model.annotations import SUSPEND_ANNOTATION
from reconciler.model.conditions import find_condition
from reconciler.model.errors import BackendError, ReconcilerError
from reconciler.model.objects import Obj, labels_of, name_of, namespace_of, status_of
from reconciler.model.schema import (
    CLUSTER_DELIVERY,
    CLUSTER_SUPPLY_CHAIN,
    DELIVERABLE,
    GIT_REPOSITORY,
    KUSTOMIZATION,
    WORKLOAD,
    KindSchema,
)

MAX_ITEMS = 2000
"""Objects of one kind in a listing; more are counted, not sent."""
MAX_EVENTS = 100
"""Events of one object, newest first."""
MAX_TEXT = 2048
"""Characters of one message, preview or label value."""
MAX_LABELS = 32
MAX_LOG_BYTES = 64 * 1024
"""Bytes of logs in one response (the simulator keeps at most 32 KiB per TaskRun)."""
MAX_SELECTOR = 1024
MAX_RUNS = 200
"""TaskRuns looked at when finding a stage's latest run."""

LOGS_ANNOTATION = "simulator.reconciler.dev/logs"
TEKTON_API = "tekton.dev/v1"
PIPELINE_RUN_LABEL = "tekton.dev/pipelineRun"
RUNNABLE_LABEL = "carto.run/runnable-name"

OWNERS: Mapping[str, KindSchema] = {"Workload": WORKLOAD, "Deliverable": DELIVERABLE}
BLUEPRINTS: Mapping[str, tuple[KindSchema, str]] = {
    "Workload": (CLUSTER_SUPPLY_CHAIN, "supplyChainRef"),
    "Deliverable": (CLUSTER_DELIVERY, "deliveryRef"),
}
LISTED: Mapping[str, KindSchema] = {
    "Workload": WORKLOAD, "Deliverable": DELIVERABLE, "GitRepository": GIT_REPOSITORY,
    "Kustomization": KUSTOMIZATION,
}
"""The kinds the portal shows, by the name the API and the page use."""


class QueryError(ReconcilerError):
    """A query parameter the portal cannot use (a malformed label selector); answered 400."""


# --- filters -----------------------------------------------------------------------------

_KEY = r"(?:[A-Za-z0-9.\-]+/)?[A-Za-z0-9]([A-Za-z0-9_.\-]*[A-Za-z0-9])?"
_VALUE = r"(?:[A-Za-z0-9]([A-Za-z0-9_.\-]*[A-Za-z0-9])?)?"
_SET = re.compile(rf"^\s*({_KEY})\s+(in|notin)\s*\(([^)]*)\)\s*$")
_EQUALS = re.compile(rf"^\s*({_KEY})\s*(==|=|!=)\s*({_VALUE})\s*$")
_EXISTS = re.compile(rf"^\s*(!?)\s*({_KEY})\s*$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # in | notin | exists | !exists
    values: frozenset[str] = frozenset()

    def holds(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op == "in":
            return present and labels[self.key] in self.values
        return not present or labels[self.key] not in self.values


def parse_selector(text: str) -> tuple[Requirement, ...]:
    """kubectl's `-l` syntax: `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a)`,
    joined by commas; raises QueryError naming the term it cannot read."""
    if len(text) > MAX_SELECTOR:
        raise QueryError(f"label selector: longer than {MAX_SELECTOR} characters")
    terms: list[str] = []
    depth, start = 0, 0
    for i, ch in enumerate(text):  # split on commas outside parentheses
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    found: list[Requirement] = []
    for term in terms:
        if not term.strip():
            if len(terms) > 1:
                raise QueryError(f"label selector {text!r}: an empty term")
            continue
        if m := _SET.match(term):
            values = frozenset(v.strip() for v in m.group(4).split(",") if v.strip())
            found.append(Requirement(m.group(1), m.group(3), values))
        elif m := _EQUALS.match(term):
            op = "notin" if m.group(3) == "!=" else "in"
            found.append(Requirement(m.group(1), op, frozenset([m.group(4)])))
        elif m := _EXISTS.match(term):
            found.append(Requirement(m.group(2), "!exists" if m.group(1) else "exists"))
        else:
            raise QueryError(f"label selector: cannot read {term.strip()!r} (try app=web, "
                             "tier!=db, env in (dev,qa), or !legacy)")
    return tuple(found)


@dataclass(frozen=True)
class Filter:
    namespace: str | None = None
    selector: tuple[Requirement, ...] = ()

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> Filter:
        namespace = query.get("namespace") or None
        return cls(namespace, parse_selector(query.get("selector") or ""))

    def admits(self, obj: Mapping[str, Any]) -> bool:
        if self.namespace is not None and namespace_of(obj) != self.namespace:
            return False
        labels = labels_of(obj)
        return all(r.holds(labels) for r in self.selector)


# --- pieces --------------------------------------------------------------------------------

def text(value: Any, limit: int = MAX_TEXT) -> str:
    shown = "" if value is None else str(value)
    return shown if len(shown) <= limit else shown[:limit] + "…"


def condition(obj: Mapping[str, Any] | None, type_: str) -> dict[str, str] | None:
    if obj is None:
        return None
    conditions = status_of(obj).get("conditions")
    found = find_condition(conditions if isinstance(conditions, list) else None, type_)
    if found is None:
        return None
    return {"type": type_, "status": text(found.get("status"), 16),
            "reason": text(found.get("reason"), 256), "message": text(found.get("message")),
            "lastTransitionTime": text(found.get("lastTransitionTime"), 64)}


def _labels(obj: Mapping[str, Any]) -> dict[str, str]:
    items = sorted(labels_of(obj).items())[:MAX_LABELS]
    return {text(k, 317): text(v) for k, v in items}


def _list(backend: Backend, kind: KindSchema, namespace: str | None = None) -> list[Obj]:
    try:
        return backend.list(kind.api_version, kind.kind, namespace)
    except BackendError:
        return []  # the kind's CRD is not installed: nothing to show


def suspended(obj: Mapping[str, Any]) -> bool:
    spec = obj.get("spec")
    if isinstance(spec, dict) and spec.get("suspend") is True:
        return True
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(SUSPEND_ANNOTATION, "")).lower() == "true"


def _outputs(entry: Mapping[str, Any]) -> list[dict[str, str]]:
    outputs = entry.get("outputs")
    if not isinstance(outputs, list):
        return []
    return [{"name": text(o.get("name"), 256), "preview": text(o.get("preview")),
             "lastTransitionTime": text(o.get("lastTransitionTime"), 64)}
            for o in outputs[:16] if isinstance(o, dict)]


def _revision(obj: Mapping[str, Any]) -> str:
    """The newest revision an object shows: a source's artifact, a Kustomization's last
    applied, an owner's first `revision` output."""
    status = status_of(obj)
    artifact = status.get("artifact")
    if isinstance(artifact, dict) and artifact.get("revision"):
        return text(artifact["revision"], 256)
    if status.get("lastAppliedRevision"):
        return text(status["lastAppliedRevision"], 256)
    for entry in status.get("resources") or []:
        if isinstance(entry, dict):
            for out in _outputs(entry):
                if out["name"] == "revision":
                    return text(out["preview"].strip(), 256)
    return ""


def summary(obj: Obj) -> dict[str, Any]:
    kind = str(obj.get("kind"))
    status = status_of(obj)
    item: dict[str, Any] = {
        "kind": kind, "namespace": namespace_of(obj), "name": name_of(obj),
        "labels": _labels(obj), "ready": condition(obj, "Ready"),
        "suspended": suspended(obj), "revision": _revision(obj),
    }
    if kind in BLUEPRINTS:
        ref = status.get(BLUEPRINTS[kind][1])
        item["blueprint"] = text(ref.get("name"), 256) if isinstance(ref, dict) else ""
    if kind == "GitRepository":
        spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
        item["url"] = text((spec or {}).get("url"), 512)
    return item


# --- documents -----------------------------------------------------------------------------

def overview(backend: Backend, where: Filter) -> dict[str, Any]:
    """The owners and sources `where` admits, sorted by namespace and name, and every
    namespace any of them is in (for the namespace filter's choices)."""
    namespaces: set[str] = set()
    document: dict[str, Any] = {"truncated": {}}
    for key, kind in (("workloads", WORKLOAD), ("deliverables", DELIVERABLE),
                      ("sources", GIT_REPOSITORY), ("kustomizations", KUSTOMIZATION)):
        objects = _list(backend, kind)
        namespaces.update(namespace_of(o) for o in objects)
        chosen = sorted((o for o in objects if where.admits(o)),
                        key=lambda o: (namespace_of(o), name_of(o)))
        document[key] = [summary(o) for o in chosen[:MAX_ITEMS]]
        if len(chosen) > MAX_ITEMS:
            document["truncated"][key] = len(chosen)
    document["namespaces"] = sorted(namespaces)[:MAX_ITEMS]
    return document


def owner_path(backend: Backend, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    """One owner and its path: the stages of its blueprint in order, each with its template,
    stamped object, health, outputs and whether it has Tekton logs; None if there is no such
    owner."""
    schema = OWNERS.get(kind)
    if schema is None:
        return None
    owner = backend.get(schema.api_version, schema.kind, namespace, name)
    if owner is None:
        return None
    blueprint_kind, ref_field = BLUEPRINTS[kind]
    ref = status_of(owner).get(ref_field)
    blueprint = None
    if isinstance(ref, dict) and ref.get("name"):
        try:
            blueprint = backend.get(blueprint_kind.api_version, blueprint_kind.kind, "",
                                    str(ref["name"]))
        except BackendError:
            blueprint = None
    entries = {str(e.get("name")): e for e in status_of(owner).get("resources") or []
               if isinstance(e, dict)}
    order: list[str] = []
    declared: dict[str, Mapping[str, Any]] = {}
    if blueprint is not None:
        for res in (blueprint.get("spec") or {}).get("resources") or []:
            if isinstance(res, dict) and res.get("name"):
                order.append(str(res["name"]))
                declared[str(res["name"])] = res
    order += [n for n in entries if n not in declared]  # a stage the blueprint since dropped
    stages = [_stage(backend, n, declared.get(n), entries.get(n)) for n in order[:MAX_ITEMS]]
    document = summary(owner)
    document.update({
        "conditions": [c for t in ("Ready", "SupplyChainReady", "DeliveryReady",
                                   "ResourcesSubmitted", "ResourcesHealthy")
                       if (c := condition(owner, t)) is not None],
        "stages": stages,
    })
    return document


def _stage(backend: Backend, name: str, declared: Mapping[str, Any] | None,
           entry: Mapping[str, Any] | None) -> dict[str, Any]:
    template_ref = (entry or {}).get("templateRef") or (declared or {}).get("templateRef") or {}
    stamped_ref = (entry or {}).get("stampedRef")
    stage: dict[str, Any] = {
        "name": text(name, 256),
        "template": {"kind": text(template_ref.get("kind"), 128),
                     "name": text(template_ref.get("name"), 256)} if template_ref else None,
        "stamped": None, "health": None, "ready": None, "outputs": [], "logs": False,
        "inputs": [text(i.get("resource") or i.get("name"), 256)
                   for key in ("sources", "images", "configs", "deployment")
                   for i in _as_list((declared or {}).get(key)) if isinstance(i, dict)],
    }
    if entry is None:
        stage["ready"] = {"type": "Ready", "status": "Unknown", "reason": "NotReached",
                          "message": "no status for this stage yet", "lastTransitionTime": ""}
        return stage
    stage["health"] = _entry_condition(entry, "Healthy")
    stage["ready"] = _entry_condition(entry, "Ready")
    stage["submitted"] = _entry_condition(entry, "ResourceSubmitted")
    stage["outputs"] = _outputs(entry)
    if isinstance(stamped_ref, dict):
        stage["stamped"] = {"apiVersion": text(stamped_ref.get("apiVersion"), 256),
                            "kind": text(stamped_ref.get("kind"), 128),
                            "namespace": text(stamped_ref.get("namespace"), 256),
                            "name": text(stamped_ref.get("name"), 256)}
        stage["logs"] = str(stamped_ref.get("kind")) in ("TaskRun", "PipelineRun", "Runnable")
    return stage


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    return [value] if isinstance(value, dict) else []


def _entry_condition(entry: Mapping[str, Any], type_: str) -> dict[str, str] | None:
    found = find_condition(entry.get("conditions") if isinstance(entry.get("conditions"), list)
                           else None, type_)
    if found is None:
        return None
    return {"type": type_, "status": text(found.get("status"), 16),
            "reason": text(found.get("reason"), 256), "message": text(found.get("message")),
            "lastTransitionTime": text(found.get("lastTransitionTime"), 64)}


def object_events(backend: Backend, kind: str, namespace: str, name: str) -> dict[str, Any]:
    """The Events about one object, newest first (at most `MAX_EVENTS`)."""
    found = []
    for event in backend.events():
        involved = event.get("involvedObject") or {}
        if (involved.get("kind") == kind and involved.get("name") == name
                and (involved.get("namespace") or "") == namespace):
            found.append(event)
    found.sort(key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""),
               reverse=True)
    return {"kind": kind, "namespace": namespace, "name": name, "truncated": len(found) >
            MAX_EVENTS, "events": [{
                "type": text(e.get("type"), 32), "reason": text(e.get("reason"), 256),
                "message": text(e.get("message")), "count": int(e.get("count") or 1),
                "lastTimestamp": text(e.get("lastTimestamp") or e.get("eventTime"), 64),
                "source": text((e.get("source") or {}).get("component")
                               or e.get("reportingComponent"), 256),
            } for e in found[:MAX_EVENTS]]}


def stage_logs(backend: Backend, kind: str, namespace: str, name: str,
               stage: str) -> dict[str, Any] | None:
    """The latest Tekton logs of one stage: the TaskRun it stamped, the TaskRuns of the
    PipelineRun it stamped, or those of the latest run of the Runnable it stamped; None when
    there is no such owner or stage."""
    path = owner_path(backend, kind, namespace, name)
    if path is None:
        return None
    chosen = next((s for s in path["stages"] if s["name"] == stage), None)
    if chosen is None:
        return None
    document: dict[str, Any] = {"stage": stage, "runs": [], "truncated": False}
    stamped = chosen.get("stamped")
    if not stamped:
        return document
    run_ns = stamped["namespace"] or namespace
    runs = _task_runs(backend, stamped, run_ns)
    budget = MAX_LOG_BYTES
    for run in runs:
        steps: list[dict[str, str]] = []
        for step, log in _logs_of(run).items():
            data = log.encode()
            if len(data) > budget:
                # Keep the tail: a failure is at the end of a log.
                log = "…" + data[len(data) - budget:].decode(errors="ignore")
                document["truncated"] = True
            budget = max(0, budget - len(data))
            steps.append({"step": text(step, 256), "log": log})
        document["runs"].append({
            "kind": text(run.get("kind"), 64), "name": text(name_of(run), 256),
            "succeeded": condition(run, "Succeeded"), "steps": steps,
        })
    return document


def _task_runs(backend: Backend, stamped: Mapping[str, str], namespace: str) -> list[Obj]:
    kind, name = stamped["kind"], stamped["name"]
    api = stamped["apiVersion"] or TEKTON_API
    if kind == "TaskRun":
        run = backend.get(api, "TaskRun", namespace, name)
        return [run] if run is not None else []
    if kind == "PipelineRun":
        return _children(backend, api, namespace, {PIPELINE_RUN_LABEL: name})
    if kind == "Runnable":
        latest: Obj | None = None
        for run_kind in ("TaskRun", "PipelineRun"):
            try:
                listed = backend.list(TEKTON_API, run_kind, namespace, {RUNNABLE_LABEL: name})
            except BackendError:
                continue
            for run in listed[:MAX_RUNS]:
                if latest is None or _created(run) >= _created(latest):
                    latest = run
        if latest is None:
            return []
        if latest.get("kind") == "PipelineRun":
            return _children(backend, str(latest.get("apiVersion")), namespace,
                             {PIPELINE_RUN_LABEL: name_of(latest)}) or [latest]
        return [latest]
    return []


def _children(backend: Backend, api: str, namespace: str,
              labels: Mapping[str, str]) -> list[Obj]:
    try:
        listed = backend.list(api, "TaskRun", namespace, labels)
    except BackendError:
        return []
    return sorted(listed[:MAX_RUNS], key=lambda r: (_created(r), name_of(r)))


def _created(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("creationTimestamp") or "")


def _logs_of(run: Mapping[str, Any]) -> dict[str, str]:
    annotations = (run.get("metadata") or {}).get("annotations") or {}
    raw = annotations.get(LOGS_ANNOTATION)
    if not isinstance(raw, str) or not raw:
        return {}
    try:
        parsed = json.loads(raw[:4 * MAX_LOG_BYTES])
    except ValueError:
        return {"(logs)": raw[:MAX_LOG_BYTES]}
    if not isinstance(parsed, dict):
        return {}
    return {str(k): str(v) for k, v in list(parsed.items())[:64]}


def lookup(backend: Backend, kind: str, namespace: str, name: str) -> Obj | None:
    schema = LISTED.get(kind)
    if schema is None:
        return None
    return backend.get(schema.api_version, schema.kind, namespace, name)

