"""`reconciler_resource_info`: one series per object the daemon manages, as Flux's
`gotk_resource_info`, to alert on (`reconciler_resource_info{ready="False"} == 1`).

The series are kept from the objects' changes, never by listing every object on a timer: `track`
lists the managed kinds once, then listens to the environment's change notifications, the same
two producers the daemon's work queues have:
- the simulator's cluster (`add_listener(listener(type, obj, before))`) hands over each written
  object, whose labels are computed there and then (a cheap look at its conditions);
- `KubernetesBackend` (`add_change_listener(listener(group, kind, namespace, name))`) calls its
  listener under its cache lock, so the key is only marked there, and read back from the cache
  (no API request) when Prometheus next scrapes.
The exposition is built from one entry per object at scrape time, so an object's series goes the
moment the object is deleted or its labels change: no stale series is left behind.

The same entries keep the daemon's counts (`count`: objects per kind, and per Ready state), up to
date as each one changes, so that the gauges cost nothing to refresh however many objects exist.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from reconciler.model.conditions import find_condition
from reconciler.model.errors import ReconcilerError
from reconciler.model.objects import GroupVersionKind, Obj
from reconciler.model.schema import (
    CLUSTER_DELIVERY,
    CLUSTER_SUPPLY_CHAIN,
    DELIVERABLE,
    GIT_REPOSITORY,
    KUSTOMIZATION,
    RECEIVER,
    RUNNABLE,
    WORKLOAD,
    KindSchema,
)

NAME = "reconciler_resource_info"
LABELS = ("kind", "name", "namespace", "ready", "suspended", "revision")
HELP = ("The objects the reconciler manages, always 1: kind, name, namespace, Ready condition "
        "(True, False, Unknown), suspended (true, false) and the revision (a source's artifact, "
        "a Kustomization's last applied; empty for other kinds).")
MANAGED_KINDS: tuple[KindSchema, ...] = (
    WORKLOAD, DELIVERABLE, RUNNABLE, CLUSTER_SUPPLY_CHAIN, CLUSTER_DELIVERY,
    GIT_REPOSITORY, KUSTOMIZATION, RECEIVER,
)

Key = tuple[str, str, str, str]  # group, kind, namespace, name
Labels = tuple[str, str, str]  # ready, suspended, revision


class Reader(Protocol):
    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None: ...

    def list(self, api_version: str, kind: str) -> list[Obj]: ...


@runtime_checkable
class _ObjectChanges(Protocol):
    def add_listener(self, listener: Callable[[str, Obj, Obj | None], None]) -> None: ...


@runtime_checkable
class _KeyChanges(Protocol):
    def add_change_listener(self, listener: Callable[[str, str, str, str], None]) -> None: ...


def info_labels(obj: Mapping[str, Any]) -> Labels:
    """(ready, suspended, revision) of one object, as its series shows them."""
    status = obj.get("status")
    status = status if isinstance(status, dict) else {}
    conditions = status.get("conditions")
    cond = find_condition(conditions if isinstance(conditions, list) else None, "Ready")
    ready = str(cond.get("status")) if cond is not None else "Unknown"
    if ready not in ("True", "False"):
        ready = "Unknown"
    spec = obj.get("spec")
    suspended = "true" if isinstance(spec, dict) and spec.get("suspend") is True else "false"
    revision: Any = ""
    artifact = status.get("artifact")
    if isinstance(artifact, dict) and artifact.get("revision"):
        revision = artifact["revision"]
    elif status.get("lastAppliedRevision"):
        revision = status["lastAppliedRevision"]
    return ready, suspended, str(revision)


class ResourceInfo(Collector):
    """The `reconciler_resource_info` series, one per managed object; register it in a
    registry and `track` an environment's backend."""

    def __init__(self, kinds: Iterable[KindSchema] = MANAGED_KINDS,
                 api_kinds: Iterable[tuple[str, str]] = ()) -> None:
        """`kinds`, or `api_kinds` ((apiVersion, kind) pairs) as well."""
        self._api_versions = {(k.group, k.kind): k.api_version for k in kinds}
        for api_version, kind in api_kinds:
            group = GroupVersionKind.parse(api_version, kind).group
            self._api_versions.setdefault((group, kind), api_version)
        self._kinds = {kind for _, kind in self._api_versions}
        self._series: dict[Key, Labels] = {}
        self._counts: dict[tuple[str, str, str], int] = {}
        """By (group, kind, ready) and (group, kind, "*"): kept as `_series` changes."""
        self._dirty: set[Key] = set()
        self._reader: Reader | None = None
        self._lock = threading.Lock()

    # --- feeding ----------------------------------------------------------------------------

    def track(self, source: object, reader: Reader | None = None) -> int:
        """Listen to `source`'s change notifications (the environment's backend), then record
        every managed object it holds now (one list per kind, once); how many were recorded.
        `reader` (default: `source`) answers the lists and the reads of changed keys: pass the
        daemon's locked backend when `source` is not thread-safe."""
        read: Any = reader if reader is not None else source
        self._reader = read
        if isinstance(source, _KeyChanges):
            source.add_change_listener(self.key_changed)
        elif isinstance(source, _ObjectChanges):
            source.add_listener(self.object_changed)
        recorded = 0
        for (_, kind), api_version in self._api_versions.items():
            try:
                objects = read.list(api_version, kind)
            except ReconcilerError:
                # A kind whose CRD is not installed (yet), or not readable now: its objects
                # come as changes.
                continue
            for obj in objects:
                self.observe(obj)
                recorded += 1
        return recorded

    def object_changed(self, type_: str, obj: Obj, before: Obj | None = None) -> None:
        """The simulator's listener: `obj` as written (`type_` DELETED: gone)."""
        kind = obj.get("kind")
        if kind not in self._kinds:  # most writes: stamped objects, Events
            return
        key = self._key(obj)
        if key is None:
            return
        if type_ == "DELETED":
            self.forget(key)
        else:
            self._set(key, info_labels(obj))

    def key_changed(self, group: str, kind: str, namespace: str, name: str) -> None:
        """`KubernetesBackend`'s listener (under its cache lock): read back at the next
        scrape."""
        if (group, kind) in self._api_versions:
            with self._lock:
                self._dirty.add((group, kind, namespace, name))

    def observe(self, obj: Obj) -> None:
        """Record `obj` as it is now (ignored when it is not of a managed kind)."""
        if obj.get("kind") in self._kinds and (key := self._key(obj)) is not None:
            self._set(key, info_labels(obj))

    def forget(self, key: Key) -> None:
        with self._lock:
            self._put(key, None)
            self._dirty.discard(key)

    def refresh(self) -> None:
        """Read back the keys changed since the last refresh (a scrape refreshes first)."""
        with self._lock:
            dirty, self._dirty = self._dirty, set()
        reader = self._reader
        if not dirty or reader is None:
            return
        found: dict[Key, Labels | None] = {}
        for key in dirty:
            group, kind, namespace, name = key
            try:
                obj = reader.get(self._api_versions[(group, kind)], kind, namespace, name)
            except ReconcilerError:
                with self._lock:
                    self._dirty.add(key)  # try again at the next scrape
                continue
            found[key] = info_labels(obj) if obj is not None else None
        with self._lock:
            for key, labels in found.items():
                self._put(key, labels)

    def _key(self, obj: Mapping[str, Any]) -> Key | None:
        meta = obj.get("metadata")
        if not isinstance(meta, dict) or not meta.get("name"):
            return None
        kind = str(obj.get("kind"))
        group = GroupVersionKind.parse(str(obj.get("apiVersion") or ""), kind).group
        if (group, kind) not in self._api_versions:
            return None
        return group, kind, str(meta.get("namespace") or ""), str(meta["name"])

    def _set(self, key: Key, labels: Labels) -> None:
        with self._lock:
            self._put(key, labels)

    def _put(self, key: Key, labels: Labels | None) -> None:
        """Under the lock: the series of `key` (None: gone), its counts moved with it."""
        old = self._series.pop(key, None) if labels is None else self._series.get(key)
        if labels is not None:
            self._series[key] = labels
        if old == labels:
            return
        group, kind = key[0], key[1]
        counts = self._counts
        if old is not None:
            counts[(group, kind, old[0])] -= 1
            if labels is None:
                counts[(group, kind, "*")] -= 1
        if labels is not None:
            counts[(group, kind, labels[0])] = counts.get((group, kind, labels[0]), 0) + 1
            if old is None:
                counts[(group, kind, "*")] = counts.get((group, kind, "*"), 0) + 1

    def count(self, group: str, kind: str, ready: str = "*") -> int:
        """How many objects of a kind are recorded (with this Ready state: "True", "False",
        "Unknown"; "*": any); read back what changed first. Costs nothing per object."""
        self.refresh()
        with self._lock:
            return self._counts.get((group, kind, ready), 0)

    # --- exposition -------------------------------------------------------------------------

    def __len__(self) -> int:
        with self._lock:
            return len(self._series)

    def collect(self) -> Iterator[Metric]:
        self.refresh()
        family = GaugeMetricFamily(NAME, HELP, labels=LABELS)
        with self._lock:
            series = sorted(self._series.items())
        for (_, kind, namespace, name), (ready, suspended, revision) in series:
            family.add_metric([kind, name, namespace, ready, suspended, revision], 1.0)
        yield family

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(NAME, HELP, labels=LABELS)
