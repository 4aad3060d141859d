"""Informers: per-kind caches kept current by list-then-watch, and the change feed they give the
runner. Pure: the HTTP side (`Lister`, `Watcher`) is injected by `KubernetesBackend`, and time
(`wait`) and randomness (`Backoff`) by the caller, so the rules are unit-tested without a server.

Cache update rules (`KindCache`):

- an object replaces the cached one only if its resourceVersion is newer (numeric compare when
  both are numbers, as every real API server's are; an opaque one always wins), so a watch event
  that arrives after our own write's response does not roll the cache back;
- a deletion leaves a tombstone with its resourceVersion, so a late event of the deleted object
  does not bring it back; a newer object of the same name (re-created) replaces the tombstone;
- a re-list (after 410 Gone) replaces the kind wholesale: what the list lacks was deleted while
  the watch was down.

Every change bumps the shared `ChangeLog`, whose revisions answer the runner's
`last_change`/`last_kind_change` (`reconciler.engine.tracking.ChangeFeed`), and which tells its
listeners (the daemon's work queue) of each changed key.

`Informer` loop: list (synchronously, in `start`), then watch from the list's resourceVersion in
a thread; BOOKMARKs move the resourceVersion; a watch that ends (its `timeoutSeconds`) is
resumed from the last resourceVersion at once; 410 Gone re-lists; any other failure (connection
reset, 5xx) waits `Backoff.delay(n)` (exponential, full jitter) and resumes, re-listing if the
resumption answers 410.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from reconciler.backends.throttle import Backoff
from reconciler.model.labelsets import LabelSet, label_pairs
from reconciler.model.objects import Obj

log = structlog.get_logger(__name__)

Name = tuple[str, str]  # namespace ("" for cluster-scoped), name


def _meta(obj: Obj) -> Mapping[str, object]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def name_of(obj: Obj) -> Name:
    meta = _meta(obj)
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def version_of(obj: Obj) -> str:
    return str(_meta(obj).get("resourceVersion") or "")


def newer(candidate: str, current: str) -> bool:
    """Whether resourceVersion `candidate` is after `current` (numbers compare; anything
    opaque or missing counts as newer, so it is never ignored)."""
    if candidate.isdigit() and current.isdigit():
        return int(candidate) > int(current)
    return True


def labels_match(obj: Obj, labels: Mapping[str, str] | None) -> bool:
    if not labels:
        return True
    have = _meta(obj).get("labels")
    have = have if isinstance(have, dict) else {}
    return all(have.get(k) == v for k, v in labels.items())


def selector_matcher(selector: str | None) -> Callable[[Obj], bool]:
    """Whether an object matches a label selector string, as the API server filters a list or
    watch with `labelSelector`: comma-separated requirements, each `key`, `!key`, `key=value`,
    `key==value` or `key!=value` (the forms an informer of ours is given; ValueError for the
    set-based `in`/`notin`). None or "": everything."""
    requirements: list[tuple[str, str, str]] = []  # (operator, key, value)
    for raw in (selector or "").split(","):
        term = raw.strip()
        if not term:
            continue
        if "(" in term or " " in term:
            raise ValueError(f"label selector {selector!r}: only equality and existence "
                             "requirements are supported here")
        if term.startswith("!"):
            requirements.append(("absent", term[1:], ""))
        elif "!=" in term:
            key, value = term.split("!=", 1)
            requirements.append(("!=", key, value))
        elif "=" in term:
            key, value = term.replace("==", "=", 1).split("=", 1)
            requirements.append(("=", key, value))
        else:
            requirements.append(("present", term, ""))

    def holds(labels: Mapping[str, object], operator: str, key: str, value: str) -> bool:
        if operator == "absent":
            return key not in labels
        if operator == "present":
            return key in labels
        return (labels.get(key) == value) == (operator == "=")

    def matches(obj: Obj) -> bool:
        have = _meta(obj).get("labels")
        labels = have if isinstance(have, dict) else {}
        return all(holds(labels, *requirement) for requirement in requirements)
    return matches


KeyListener = Callable[[str, str, str, str], None]
"""Told of a changed object: (group, kind, namespace, name)."""

LabelledKeyListener = Callable[[str, str, str, str, LabelSet | None], None]
"""Told of a changed object and the (label, value) pairs it carried before or after the
change: what lets a reader of a list by labels be woken only by a change its selector
matches (`reconciler.engine.tracking.DependencyIndex.readers_of_change`)."""


def _pairs(*objs: Obj | None) -> LabelSet:
    return label_pairs(*(((o.get("metadata") or {}).get("labels")) for o in objs
                         if o is not None))


class ChangeLog:
    """A revision that grows with every cache change, and when each key and kind last changed;
    listeners (the daemon's work queue) are told of each changed key as it changes."""

    def __init__(self) -> None:
        self.revision = 0
        self._keys: dict[tuple[str, str, str, str], int] = {}
        self._kinds: dict[tuple[str, str, str | None], int] = {}
        self.listeners: list[KeyListener] = []
        self.labelled_listeners: list[LabelledKeyListener] = []

    def bump(self, group: str, kind: str, namespace: str, name: str,
             pairs: LabelSet | None = None) -> None:
        """One key changed; `pairs`: the labels its object carried before or after (None: not
        known)."""
        self.revision += 1
        self._keys[(group, kind, namespace, name)] = self.revision
        self._kinds[(group, kind, namespace)] = self.revision
        self._kinds[(group, kind, None)] = self.revision
        for listener in self.listeners:
            listener(group, kind, namespace, name)
        for labelled in self.labelled_listeners:
            labelled(group, kind, namespace, name, pairs)

    def last_change(self, group: str, kind: str, namespace: str, name: str) -> int:
        return self._keys.get((group, kind, namespace, name), 0)

    def last_kind_change(self, group: str, kind: str, namespace: str | None) -> int:
        return self._kinds.get((group, kind, namespace), 0)


class KindCache:
    """The objects of one kind, by (namespace, name); not thread-safe (the backend locks).

    The names are also kept in a sorted list, updated when a name comes or goes (a binary
    search and one insertion or removal), so the runner's `names` and a list are not sorted
    per call: with 10,000 objects, a pass that changes nothing then costs no sort at all."""

    def __init__(self, group: str, kind: str, log_: ChangeLog) -> None:
        self.group, self.kind = group, kind
        self._log = log_
        self._items: dict[Name, Obj] = {}
        self._sorted: list[Name] = []
        self._tombstones: dict[Name, str] = {}

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Name) -> Obj | None:
        """The cached object itself, not a copy: never to be changed."""
        return self._items.get(key)

    def names(self) -> list[Name]:
        return list(self._sorted)

    def _keys(self, namespace: str | None) -> list[Name]:
        """The sorted names, of one namespace (a slice of the sorted list) or all."""
        if namespace is None:
            return self._sorted
        at = bisect.bisect_left(self._sorted, (namespace, ""))
        end = bisect.bisect_left(self._sorted, (namespace + "\0", ""))
        return self._sorted[at:end]

    def items(self, namespace: str | None = None,
              labels: Mapping[str, str] | None = None) -> Iterator[Obj]:
        """The cached objects themselves (not copies), in name order."""
        for key in list(self._keys(namespace)):
            obj = self._items[key]
            if labels_match(obj, labels):
                yield obj

    def versions(self) -> list[tuple[str, str, str]]:
        """(namespace, name, resourceVersion) of every cached object, in name order."""
        items = self._items
        return [(ns, name, version_of(items[(ns, name)])) for ns, name in self._sorted]

    def _store(self, key: Name, obj: Obj) -> None:
        if key not in self._items:
            bisect.insort(self._sorted, key)
        self._items[key] = obj

    def _drop(self, key: Name) -> None:
        del self._items[key]
        at = bisect.bisect_left(self._sorted, key)
        del self._sorted[at]

    def upsert(self, obj: Obj) -> bool:
        """Store `obj` if it is newer than what is cached (or than its tombstone); whether the
        cache changed."""
        key, rv = name_of(obj), version_of(obj)
        current = self._items.get(key)
        if current is not None and not newer(rv, version_of(current)):
            return False
        buried = self._tombstones.get(key)
        if current is None and buried is not None and not newer(rv, buried):
            return False
        self._tombstones.pop(key, None)
        self._store(key, obj)
        self._log.bump(self.group, self.kind, *key, _pairs(current, obj))
        return True

    def remove(self, key: Name, rv: str = "") -> bool:
        """Forget `key`, deleted at `rv` (the deleted object's last resourceVersion; "" when
        unknown); whether the cache changed. A cached object newer than `rv` stays."""
        current = self._items.get(key)
        if current is not None and rv and not newer(rv, version_of(current)) and \
                rv != version_of(current):
            return False
        if rv:
            self._tombstones[key] = rv
        if current is None:
            return False
        self._drop(key)
        self._log.bump(self.group, self.kind, *key, _pairs(current))
        return True

    def replace(self, objs: Iterable[Obj]) -> int:
        """A re-list: the cache becomes `objs`; the number of keys that changed."""
        fresh = {name_of(o): o for o in objs}
        changed = 0
        gone = [k for k in self._items if k not in fresh]
        for key in gone:
            old = self._items.pop(key)
            self._log.bump(self.group, self.kind, *key, _pairs(old))
            changed += 1
        self._tombstones.clear()
        for key, obj in fresh.items():
            current = self._items.get(key)
            if current is None or version_of(current) != version_of(obj):
                self._items[key] = obj
                self._log.bump(self.group, self.kind, *key, _pairs(current, obj))
                changed += 1
        if gone or len(self._sorted) != len(self._items):
            self._sorted = sorted(self._items)  # once per re-list, not per read
        return changed


class WatchExpired(Exception):
    """The watch's resourceVersion is too old (410 Gone): re-list."""


class WatchStream(Protocol):
    """One watch request: iterate its (type, object) events; `close` ends it from any thread."""

    def __iter__(self) -> Iterator[tuple[str, Obj]]: ...

    def close(self) -> None: ...


Lister = Callable[[], tuple[list[Obj], str]]
"""List every object of the kind: (items, the list's resourceVersion)."""
Watcher = Callable[[str], WatchStream]
"""Start a watch from a resourceVersion (bookmarks on). Its iteration raises `WatchExpired` for
an ERROR event with code 410, and any other exception for other failures."""


@dataclass
class InformerStats:
    lists: int = 0
    watches: int = 0
    events: int = 0
    bookmarks: int = 0
    expired: int = 0
    failures: int = 0


@dataclass
class Informer:
    """Keeps one kind's cache current. `apply` is where events go: the backend passes one that
    takes its lock (and may queue events until its next sync point)."""

    name: str
    lister: Lister
    watcher: Watcher
    apply: Callable[[str, Obj | None, Iterable[Obj] | None], None]
    """(type, object, None) for an event; ("RELIST", None, items) after a list."""
    backoff: Backoff = field(default_factory=Backoff)
    wait: Callable[[float], bool] | None = None
    """Sleep up to n seconds, True if stopped meanwhile; default: the stop event's wait."""
    resource_version: str = ""
    stats: InformerStats = field(default_factory=InformerStats)

    def __post_init__(self) -> None:
        self._stopped = threading.Event()
        self._stream: WatchStream | None = None
        self._thread: threading.Thread | None = None
        self._failures = 0
        self._lock = threading.Lock()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def start(self) -> None:
        """List now (errors propagate to the caller), then watch on a daemon thread."""
        self.relist()
        self._thread = threading.Thread(target=self.run, name=f"informer {self.name}",
                                        daemon=True)
        self._thread.start()

    def stop(self, join: float | None = 5.0) -> None:
        self._stopped.set()
        self.break_watch()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(join)

    def break_watch(self) -> None:
        """Close the current watch connection, as a network failure would."""
        with self._lock:
            stream = self._stream
        if stream is not None:
            stream.close()

    def relist(self) -> None:
        items, rv = self.lister()
        self.stats.lists += 1
        self.apply("RELIST", None, items)
        self.resource_version = rv

    def run(self) -> None:
        while not self.stopped:
            self.step()

    def step(self) -> None:
        """One watch session, or one recovery from the previous one's end."""
        try:
            if not self.resource_version:
                self.relist()
            self._watch_once()
            self._failures = 0
        except WatchExpired:
            self.stats.expired += 1
            log.info("watch expired, re-listing", informer=self.name,
                     resource_version=self.resource_version)
            self.resource_version = ""
        except Exception as exc:  # any failure: back off and resume
            if self.stopped:
                return
            self._failures += 1
            self.stats.failures += 1
            delay = self.backoff.delay(self._failures)
            log.info("watch failed, resuming", informer=self.name, error=str(exc)[:300],
                     attempt=self._failures, after_seconds=round(delay, 3))
            self._pause(delay)

    def _pause(self, seconds: float) -> None:
        if self.wait is not None:
            if self.wait(seconds):
                self._stopped.set()
        else:
            self._stopped.wait(seconds)

    def _watch_once(self) -> None:
        stream = self.watcher(self.resource_version)
        self.stats.watches += 1
        with self._lock:
            self._stream = stream
        if self.stopped:
            stream.close()
            return
        try:
            for type_, obj in stream:
                if self.stopped:
                    return
                self._failures = 0  # the connection works: the next failure starts over
                if type_ == "BOOKMARK":
                    self.stats.bookmarks += 1
                elif type_ in ("ADDED", "MODIFIED", "DELETED"):
                    self.stats.events += 1
                    self.apply(type_, obj, None)
                else:
                    continue
                rv = version_of(obj)
                if rv:
                    self.resource_version = rv
        finally:
            with self._lock:
                self._stream = None
            stream.close()
