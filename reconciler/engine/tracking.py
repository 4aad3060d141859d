"""Which objects a reconcile read, so it runs again only when one of them changed.

Cartographer and controller-runtime do this with dynamic watches ("trackers"): a Workload is
reconciled again when its supply chain, a template or a stamped object changes, not on every
change in the cluster. `TrackingBackend` records the reads of one reconcile; a backend that can
say when a key or a kind last changed (`ChangeFeed`) lets the runner skip every object none of
whose reads changed. That makes the no-op reconcile, the common one, cost nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from reconciler.backends.base import FIELD_MANAGER, Backend
from reconciler.model.kinds import KindInfo
from reconciler.model.objects import GroupVersionKind, Obj

# ("key", group, kind, namespace, name) or ("kind", group, kind, namespace-or-"*")
Dependency = tuple[str, str, str, str, str]


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


@dataclass
class Reads:
    dependencies: set[Dependency] = field(default_factory=set)


class TrackingBackend:
    """A Backend that forwards everything and records what the current reconcile reads."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self._reads: Reads | None = None

    def begin(self) -> None:
        self._reads = Reads()

    def end(self) -> Reads:
        reads, self._reads = self._reads or Reads(), None
        return reads

    def _record(self, dep: Dependency) -> None:
        if self._reads is not None:
            self._reads.dependencies.add(dep)

    # --- Backend -------------------------------------------------------------------------

    def kind_info(self, api_version: str, kind: str) -> KindInfo:
        return self.inner.kind_info(api_version, kind)

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        group = GroupVersionKind.parse(api_version, kind).group
        self._record(("key", group, kind, namespace, name))
        return self.inner.get(api_version, kind, namespace, name)

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> list[Obj]:
        group = GroupVersionKind.parse(api_version, kind).group
        self._record(("kind", group, kind, namespace if namespace is not None else "*", ""))
        return self.inner.list(api_version, kind, namespace, labels)

    def apply(self, obj: Obj, field_manager: str = FIELD_MANAGER, force: bool = False) -> Obj:
        return self.inner.apply(obj, field_manager, force)

    def update_status(self, obj: Obj) -> Obj:
        return self.inner.update_status(obj)

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        self.inner.delete(api_version, kind, namespace, name)

    def emit_event(
        self, involved: Obj, type_: str, reason: str, message: str, source: str = FIELD_MANAGER
    ) -> None:
        self.inner.emit_event(involved, type_, reason, message, source)

    def events(self) -> Sequence[Obj]:
        return self.inner.events()


def changed_after(feed: ChangeFeed, dependencies: set[Dependency], revision: int) -> bool:
    for scope, group, kind, namespace, name in dependencies:
        if scope == "key":
            if feed.last_change(group, kind, namespace, name) > revision:
                return True
        elif feed.last_kind_change(group, kind, None if namespace == "*" else namespace) > (
                revision):
            return True
    return False
