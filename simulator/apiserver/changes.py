"""The watch history: ADDED, MODIFIED and DELETED events with their resourceVersions.

`simulator/cluster.py` keeps a change feed (when each object and kind last changed) but no
history of objects, and it is written by the in-process controllers as well as by HTTP
requests. So this log compares: `scan()` (called under the store lock after every write through
the API and after every controller tick) looks at the kinds that changed since the last scan and
turns the difference between its shadow copy and the cluster into events. Several writes to one
object between two scans become one MODIFIED event, as a watch cache that coalesces would send.

The log keeps the latest `capacity` events; a watch from a resourceVersion older than the oldest
one kept (or older than the server's start) is answered 410 Gone, as an etcd compaction would.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from reconciler.model.objects import Obj

Key = tuple[str, str, str, str]


@dataclass(frozen=True)
class Event:
    type: str  # ADDED | MODIFIED | DELETED
    revision: int
    group: str
    kind: str
    namespace: str
    obj: Obj


class ChangeLog:
    def __init__(self, cluster: Any, lock: threading.Lock, capacity: int = 50_000) -> None:
        self._cluster = cluster
        self.changed = threading.Condition(lock)
        self._events: collections.deque[Event] = collections.deque(maxlen=capacity)
        self._shadow: dict[tuple[str, str], dict[tuple[str, str], Obj]] = {}
        self.revision = cluster.revision
        self.oldest = self.revision  # a watch from before this cannot be served
        for obj in cluster.all_objects():
            info = self._info(obj)
            if info is not None:
                meta = obj["metadata"]
                self._shadow.setdefault((info.group, info.kind), {})[
                    (str(meta.get("namespace") or ""), str(meta["name"]))] = obj

    def _info(self, obj: Obj) -> Any:
        api_version = str(obj.get("apiVersion", ""))
        group = api_version.rpartition("/")[0]
        return self._cluster.registry.lookup_group_kind(group, str(obj.get("kind", "")))

    def scan(self) -> None:
        """Record what changed since the last scan; the caller holds the lock."""
        cluster = self._cluster
        now = cluster.revision
        if now == self.revision:
            return
        found: list[Event] = []
        for info in list(cluster.registry):
            if cluster.last_kind_change(info.group, info.kind, None) <= self.revision:
                continue
            api_version = f"{info.group}/{info.versions[0]}" if info.group else info.versions[0]
            shadow = self._shadow.setdefault((info.group, info.kind), {})
            present = set(cluster.names(api_version, info.kind))
            for namespace, name in present:
                old = shadow.get((namespace, name))
                if old is not None and cluster.last_change(
                        info.group, info.kind, namespace, name) <= self.revision:
                    continue
                obj = cluster.get(api_version, info.kind, namespace, name)
                if obj is None:
                    continue
                rv = _rv(obj)
                if old is not None and _rv(old) == rv:
                    continue
                shadow[(namespace, name)] = obj
                found.append(Event("ADDED" if old is None else "MODIFIED", rv, info.group,
                                   info.kind, namespace, obj))
            for gone in [k for k in shadow if k not in present]:
                obj = shadow.pop(gone)
                obj["metadata"]["resourceVersion"] = str(now)
                found.append(Event("DELETED", now, info.group, info.kind, gone[0], obj))
        found.sort(key=lambda e: e.revision)
        if self._events.maxlen is not None and len(self._events) + len(found) > \
                self._events.maxlen:
            dropped = len(self._events) + len(found) - self._events.maxlen
            kept = list(self._events)
            self.oldest = kept[dropped - 1].revision if dropped <= len(kept) else now
        self._events.extend(found)
        self.revision = now
        self.changed.notify_all()

    def since(self, revision: int) -> Iterator[Event]:
        """Events after `revision`, oldest first; the caller holds the lock."""
        for event in self._events:
            if event.revision > revision:
                yield event

    def current(self, group: str, kind: str) -> list[Obj]:
        """The latest copy of every object of a kind (the shadow); the caller holds the lock."""
        return list(self._shadow.get((group, kind), {}).values())


def _rv(obj: Obj) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0
