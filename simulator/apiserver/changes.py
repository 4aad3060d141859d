"""The watch history: ADDED, MODIFIED and DELETED events with their resourceVersions.

The cluster calls `record` after every write, whoever made it (an HTTP request or an in-process
controller; both hold the store's lock), with the object and its state before. So every write is
its own event carrying its own resourceVersion, a DELETED event carries the object's last state
at the deletion's resourceVersion, and a watch with a selector can tell an object that left the
selection (kube sends it DELETED) from one that entered it (ADDED). `scan()` wakes the watches
of the kinds written since the last scan (each kind has its own condition over the one lock, so
a write wakes its kind's watches, not all of them: with a dozen informers open, waking every
watch on every write was a dozen thread switches per write); the store calls it after each
request and the runtime after each controller tick.

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
from simulator.apiserver.selectors import FIELDS_BY_KIND

Key = tuple[str, str, str, str]


@dataclass(frozen=True)
class Event:
    type: str  # ADDED | MODIFIED | DELETED
    revision: int
    group: str
    kind: str
    namespace: str
    obj: Obj
    before: Obj | None = None
    """The object's previous state (MODIFIED): what a selector matched before. Kept only when
    its labels or selectable fields differ from `obj`'s; otherwise `alike` says so."""
    alike: bool = False
    """A MODIFIED event whose previous state any selector matches as it matches `obj` (same
    labels and selectable fields): a watch sees it MODIFIED if it sees it at all."""


class ChangeLog:
    def __init__(self, cluster: Any, lock: threading.Lock | threading.RLock,
                 capacity: int = 50_000) -> None:
        self._cluster = cluster
        self._lock = lock
        self._conditions: dict[tuple[str, str], threading.Condition] = {}
        self._written: set[tuple[str, str]] = set()
        self._events: collections.deque[Event] = collections.deque(maxlen=capacity)
        self.oldest = cluster.resource_version  # a watch from before this cannot be served
        cluster.add_listener(self.record)

    @property
    def revision(self) -> int:
        return int(self._cluster.resource_version)

    def record(self, type_: str, obj: Obj, before: Obj | None) -> None:
        """The cluster's listener: one write; the caller holds the lock."""
        api_version = str(obj.get("apiVersion", ""))
        meta = obj.get("metadata") or {}
        try:
            revision = int(meta.get("resourceVersion") or 0)
        except ValueError:
            revision = self.revision
        if self._events.maxlen is not None and len(self._events) == self._events.maxlen:
            self.oldest = self._events[0].revision
        group, kind = api_version.rpartition("/")[0], str(obj.get("kind", ""))
        alike = False
        if type_ == "DELETED":
            before = None  # a DELETED event is the object's last state alone
        elif before is not None and _selectable(before, group, kind) == _selectable(
                obj, group, kind):
            # Most writes (a status, a spec) leave labels and selectable fields as they were:
            # the previous state is not kept, and the log holds one copy per write, not two.
            before, alike = None, True
        self._events.append(Event(type_, revision, group, kind,
                                  str(meta.get("namespace") or ""), obj, before, alike))
        self._written.add((group, kind))

    def changed(self, group: str, kind: str) -> threading.Condition:
        """What a watch of one kind waits on (over the store's lock); the caller holds it."""
        condition = self._conditions.get((group, kind))
        if condition is None:
            condition = self._conditions[(group, kind)] = threading.Condition(self._lock)
        return condition

    def scan(self) -> None:
        """Wake the watches of every kind written since the last scan; the caller holds the
        lock."""
        if self._written:
            written, self._written = self._written, set()
            for key in written:
                condition = self._conditions.get(key)
                if condition is not None:
                    condition.notify_all()

    def since(self, revision: int) -> Iterator[Event]:
        """Events after `revision`, oldest first; the caller holds the lock."""
        newer = []
        for event in reversed(self._events):
            if event.revision <= revision:
                break
            newer.append(event)
        return reversed(newer)


def _selectable(obj: Obj, group: str, kind: str) -> tuple[Any, ...]:
    """What a label or field selector can look at in `obj` (name and namespace never change):
    its labels, and the fields the API server selects on for its kind."""
    labels = (obj.get("metadata") or {}).get("labels")
    fields = []
    for path in FIELDS_BY_KIND.get((group, kind), ()):
        current: Any = obj
        for step in path.split("."):
            current = current.get(step) if isinstance(current, dict) else None
        fields.append(current)
    return (labels if isinstance(labels, dict) else {}, *fields)
