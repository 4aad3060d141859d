"""A backend for one that is not thread-safe (the simulator's in-memory cluster): every call
under one re-entrant lock, so the daemon's workers interleave between calls, never inside one,
as requests to a real API server do. The daemon holds the same lock while the simulated
controllers run their round, while it moves the virtual clock, and while it reads the cluster
for the gauges and `/debug/objects`.
"""

from __future__ import annotations

import builtins
import contextlib
import threading
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from reconciler.backends.base import (
    FIELD_MANAGER,
    Backend,
    Ref,
    StatusWritten,
    kind_versions,
    resource_versions,
    write_status,
)
from reconciler.model.kinds import KindInfo
from reconciler.model.objects import Obj


class LockedBackend:
    """`serialize=False` (a thread-safe backend such as `KubernetesBackend`): no lock at all,
    the wrapper only adds `names`."""

    def __init__(self, inner: Backend, serialize: bool = True,
                 lock: contextlib.AbstractContextManager[Any] | None = None) -> None:
        """`lock`: one shared with other users of the cluster (`reconciler serve`'s API
        handlers); by default a new re-entrant lock."""
        self.inner = inner
        self.lock: contextlib.AbstractContextManager[Any] = (
            contextlib.nullcontext() if not serialize
            else lock if lock is not None else threading.RLock())

    def kind_info(self, api_version: str, kind: str) -> KindInfo:
        with self.lock:
            return self.inner.kind_info(api_version, kind)

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        with self.lock:
            return self.inner.get(api_version, kind, namespace, name)

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> builtins.list[Obj]:
        with self.lock:
            return self.inner.list(api_version, kind, namespace, labels)

    def apply(self, obj: Obj, field_manager: str = FIELD_MANAGER, force: bool = False) -> Obj:
        with self.lock:
            return self.inner.apply(obj, field_manager, force)

    def update_status(self, obj: Obj) -> Obj:
        with self.lock:
            return self.inner.update_status(obj)

    def write_status(self, obj: Obj) -> StatusWritten:
        with self.lock:
            return write_status(self.inner, obj)

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        with self.lock:
            self.inner.delete(api_version, kind, namespace, name)

    def emit_event(
        self, involved: Obj, type_: str, reason: str, message: str, source: str = FIELD_MANAGER
    ) -> None:
        with self.lock:
            self.inner.emit_event(involved, type_, reason, message, source)

    def events(self) -> Sequence[Obj]:
        with self.lock:
            return self.inner.events()

    def resource_versions(self, refs: Sequence[Ref]) -> tuple[str | None, ...]:
        with self.lock:
            return resource_versions(self.inner, refs)

    def kind_version(self, api_version: str, kind: str) -> Hashable:
        with self.lock:
            return kind_versions(self.inner, api_version, kind)

    def names(self, api_version: str, kind: str) -> builtins.list[tuple[str, str]]:
        """(namespace, name) of every object of a kind: the inner backend's cheap listing when
        it has one (a change feed), else from a list."""
        with self.lock:
            names = getattr(self.inner, "names", None)
            if callable(names):
                found: builtins.list[tuple[str, str]] = names(api_version, kind)
                return found
            return sorted((str(o["metadata"].get("namespace") or ""),
                           str(o["metadata"]["name"]))
                          for o in self.inner.list(api_version, kind))
