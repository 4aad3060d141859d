"""Which objects a reconcile read, so it runs again only when one of them changed.

Cartographer and controller-runtime do this with dynamic watches ("trackers"): a Workload is
reconciled again when its supply chain, a template or a stamped object changes, not on every
change in the cluster. `TrackingBackend` records the reads of one reconcile; a backend that can
say when a key or a kind last changed (`ChangeFeed`) lets the runner skip every object none of
whose reads changed. That makes the no-op reconcile, the common one, cost nothing.

Reads are recorded per thread, so the daemon's workers can reconcile at once through one
`TrackingBackend`. `DependencyIndex` is the same idea on keys, for the daemon's work queue: it
maps what each key's last reconcile read to that key, so a change of one object enqueues
exactly the keys that read it (and never the others).
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from reconciler.backends.base import (
    Backend,
    Forwarding,
    Ref,
    StatusWritten,
    kind_versions,
    resource_versions,
    write_status,
)
from reconciler.model.labelsets import LabelPairs, LabelSet, list_dependency, selector_pairs
from reconciler.model.objects import Obj

Dependency = tuple[str, str, str, str, str]
"""What one read depends on: ("key", group, kind, namespace, name) for a get;
("kind", group, kind, namespace-or-"*", "") for a list; ("labels", group, kind,
namespace-or-"*", selector) for a list by labels, where selector is `selector_text`'s "k=v,..."
(a change of an object that carries none of those labels before or after leaves it fresh)."""


@runtime_checkable
class ChangeFeed(Protocol):
    def last_change(self, group: str, kind: str, namespace: str, name: str) -> int:
        """The cluster revision at which this object last changed (0 if never)."""
        ...

    def last_kind_change(self, group: str, kind: str, namespace: str | None) -> int:
        """The revision at which any object of this kind (in this namespace) last changed."""
        ...

    def names(self, api_version: str, kind: str) -> list[tuple[str, str]]:
        """(namespace, name) of every object of a kind, cheaply (no copies)."""
        ...

    @property
    def revision(self) -> int: ...


class RecordedReads(Protocol):
    @property
    def dependencies(self) -> set[Dependency]: ...

    @property
    def statuses(self) -> dict[tuple[str, str, str, str], Mapping[str, object]]: ...


ObjectKey = tuple[str, str, str, str]
"""(group, kind, namespace, name)."""

LabelledChange = tuple[ObjectKey, LabelSet | None]
"""A changed key and the label pairs its object carried before or after (None: not known)."""


@runtime_checkable
class LabelLog(Protocol):
    def labelled_changes_since(self, revision: int) -> list[LabelledChange] | None:
        """As `ChangeLog.changes_since`, each key with the label pairs it carried before or
        after its changes since then."""
        ...


@runtime_checkable
class ChangeLog(Protocol):
    def changes_since(self, revision: int) -> list[tuple[str, str, str, str]] | None:
        """(group, kind, namespace, name) of each object written or removed after `revision`,
        once each; None when the log does not reach that far back."""
        ...


@runtime_checkable
class ReadRecorder(Protocol):
    """Records what the reconcile on this thread reads, between `begin` and `end`:
    `TrackingBackend`, or a backend that does it itself (the simulated cluster)."""

    def begin(self) -> None: ...

    def end(self) -> RecordedReads: ...


@dataclass
class Reads:
    dependencies: set[Dependency] = field(default_factory=set)
    statuses: dict[tuple[str, str, str, str], Mapping[str, object]] = field(
        default_factory=dict)
    """The last status this reconcile wrote, by (group, kind, namespace, name)."""


def _group(api_version: str) -> str:
    """The API group of an apiVersion ("" for the core group), as `GroupVersionKind.parse`
    gives it, without building one (every tracked read and status write asks)."""
    return api_version.rpartition("/")[0]


class TrackingBackend(Forwarding):
    """A Backend that forwards everything and records what the current reconcile reads (and
    the statuses it writes), per thread."""

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner)
        self._local = threading.local()
        self._namespaced: dict[tuple[str, str], bool] = {}

    def begin(self) -> None:
        self._local.reads = Reads()

    def end(self) -> Reads:
        reads: Reads | None = getattr(self._local, "reads", None)
        self._local.reads = None
        return reads or Reads()

    def _current(self) -> Reads | None:
        reads: Reads | None = getattr(self._local, "reads", None)
        return reads

    def _record(self, dep: Dependency) -> None:
        reads = self._current()
        if reads is not None:
            reads.dependencies.add(dep)

    def _namespace(self, api_version: str, kind: str, namespace: str) -> str:
        """"" for a cluster-scoped kind, whatever namespace the caller passed, so a read and
        a change of the same object name the same key."""
        if not namespace:
            return namespace
        known = self._namespaced.get((api_version, kind))
        if known is None:
            try:
                known = self.inner.kind_info(api_version, kind).namespaced
            except Exception:
                return namespace  # not served (yet): the read will fail or find nothing
            self._namespaced[(api_version, kind)] = known
        return namespace if known else ""

    # --- Backend -------------------------------------------------------------------------

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        reads = self._current()
        if reads is not None:
            group = _group(api_version)
            reads.dependencies.add(("key", group, kind,
                                    self._namespace(api_version, kind, namespace), name))
        return self.inner.get(api_version, kind, namespace, name)

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> list[Obj]:
        reads = self._current()
        if reads is not None:
            group = _group(api_version)
            scope = "*" if namespace is None else self._namespace(api_version, kind, namespace)
            reads.dependencies.add(list_dependency(group, kind, scope, labels))
        return self.inner.list(api_version, kind, namespace, labels)

    def update_status(self, obj: Obj) -> Obj:
        live = self.inner.update_status(obj)
        self._wrote_status(obj)
        return live

    def write_status(self, obj: Obj) -> StatusWritten:
        """`backends.base.write_status` through the inner backend, recorded as
        `update_status` records its write."""
        written = write_status(self.inner, obj)
        self._wrote_status(obj)
        return written

    def _wrote_status(self, obj: Obj) -> None:
        """Record `obj`'s status as the last this reconcile wrote for its object."""
        reads = self._current()
        if reads is not None:
            meta = obj.get("metadata") or {}
            api_version, kind = str(obj.get("apiVersion")), str(obj.get("kind"))
            group = _group(api_version)
            namespace = self._namespace(api_version, kind, str(meta.get("namespace") or ""))
            reads.statuses[(group, kind, namespace, str(meta.get("name")))] = (
                obj.get("status") or {})

    # --- versions (the owner's no-op fast path): recorded as `get` and `list` record -------

    def resource_versions(self, refs: Sequence[Ref]) -> tuple[str | None, ...]:
        reads = self._current()
        if reads is not None:
            for api_version, kind, namespace, name in refs:
                reads.dependencies.add(("key", _group(api_version), kind,
                                        self._namespace(api_version, kind, namespace), name))
        return resource_versions(self.inner, refs)

    def kind_version(self, api_version: str, kind: str) -> Hashable:
        if self._current() is not None:
            self._record(("kind", _group(api_version), kind, "*", ""))
        return kind_versions(self.inner, api_version, kind)


def changed_after(feed: ChangeFeed, dependencies: set[Dependency], revision: int) -> bool:
    """Whether one of `dependencies` may have changed after `revision`: a list by labels is
    judged by its kind's last change (a yes may be wrong, a no never is)."""
    for scope, group, kind, namespace, name in dependencies:
        if scope == "key":
            if feed.last_change(group, kind, namespace, name) > revision:
                return True
        elif feed.last_kind_change(group, kind, None if namespace == "*" else namespace) > (
                revision):
            return True
    return False


def dependencies_of_change(group: str, kind: str, namespace: str,
                           name: str) -> tuple[Dependency, Dependency, Dependency]:
    """The reads a change of one object makes stale: the object itself, a list of its kind in
    its namespace, and a list of its kind across namespaces."""
    return (("key", group, kind, namespace, name), ("kind", group, kind, namespace, ""),
            ("kind", group, kind, "*", ""))


class DependencyIndex:
    """What each key's last reconcile read, and its inverse: which keys read a dependency.

    Keys are whatever the caller queues (the daemon: (controller, group, kind, namespace,
    name)). Thread-safe: workers record while producers look up.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reads: dict[Hashable, frozenset[Dependency]] = {}
        self._readers: dict[Dependency, set[Hashable]] = {}
        # The selectors read (label dependencies), by (group, kind, scope) and one of their
        # pairs, so that a change finds the selectors it may match from its own labels.
        self._selectors: dict[tuple[str, str, str], dict[tuple[str, str],
                                                          dict[Dependency, LabelPairs]]] = {}

    def record(self, key: Hashable, dependencies: Iterable[Dependency]) -> None:
        fresh = frozenset(dependencies)
        with self._lock:
            old = self._reads.get(key, frozenset())
            if old == fresh and key in self._reads:
                return  # read the same as last time (the common case): nothing to re-index
            for dep in old - fresh:
                readers = self._readers.get(dep)
                if readers is not None:
                    readers.discard(key)
                    if not readers:
                        del self._readers[dep]
                        if dep[0] == "labels":
                            self._unindex_selector(dep)
            for dep in fresh - old:
                readers = self._readers.get(dep)
                if readers is None:
                    readers = self._readers[dep] = set()
                    if dep[0] == "labels":
                        self._index_selector(dep)
                readers.add(key)
            self._reads[key] = fresh

    def _index_selector(self, dep: Dependency) -> None:
        pairs = selector_pairs(dep[4])
        if pairs:
            first = min(pairs)
            self._selectors.setdefault((dep[1], dep[2], dep[3]), {}).setdefault(
                first, {})[dep] = pairs

    def _unindex_selector(self, dep: Dependency) -> None:
        pairs = selector_pairs(dep[4])
        if not pairs:
            return
        first, scope = min(pairs), (dep[1], dep[2], dep[3])
        by_pair = self._selectors.get(scope, {})
        entries = by_pair.get(first)
        if entries is not None:
            entries.pop(dep, None)
            if not entries:
                del by_pair[first]
                if not by_pair:
                    del self._selectors[scope]

    def forget(self, key: Hashable) -> None:
        self.record(key, ())
        with self._lock:
            self._reads.pop(key, None)

    def readers(self, changed: Iterable[Dependency]) -> set[Hashable]:
        """Every key whose last reconcile read one of `changed`."""
        found: set[Hashable] = set()
        with self._lock:
            for dep in changed:
                readers = self._readers.get(dep)
                if readers:
                    found |= readers
        return found

    def readers_of_change(self, group: str, kind: str, namespace: str, name: str,
                          pairs: LabelSet | None) -> set[Hashable]:
        """Every key whose last reconcile read the changed object: by its key, by a list of
        its kind, or by a list whose selector the object matched before or after the change
        (`pairs`: the labels it carried then; None when they are not known, and then every
        selector of the kind counts)."""
        found: set[Hashable] = set()
        with self._lock:
            readers = self._readers
            for dep in dependencies_of_change(group, kind, namespace, name):
                by_key = readers.get(dep)
                if by_key:
                    found |= by_key
            for scope in (namespace, "*"):
                by_pair = self._selectors.get((group, kind, scope))
                if not by_pair:
                    continue
                if pairs is None:
                    matched = [dep for entries in by_pair.values() for dep in entries]
                else:
                    matched = [dep for pair in pairs for dep, wanted in
                               by_pair.get(pair, {}).items() if wanted <= pairs]
                for dep in matched:
                    found |= self._readers.get(dep, set())
        return found

    def reads(self, key: Hashable) -> frozenset[Dependency]:
        with self._lock:
            return self._reads.get(key, frozenset())

    def __len__(self) -> int:
        with self._lock:
            return len(self._reads)
