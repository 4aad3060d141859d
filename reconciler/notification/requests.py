"""Requesting a reconcile: `reconcile.fluxcd.io/requestedAt` set to a new value on an object.

The write is a server-side apply of that one annotation under its own field manager, forced:
no other field is declared, so no other field changes owner, and a value another manager set
before (`flux reconcile`, `kubectl annotate`) is taken over rather than refused. Each value is
new: RFC 3339 with nanoseconds from the clock, bumped when the clock has not moved since the
last one, so two webhooks in the same instant are two requests.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Protocol

from reconciler.backends.base import Backend
from reconciler.model.annotations import REQUESTED_AT_ANNOTATION
from reconciler.notification.targets import Target

FIELD_MANAGER = "reconciler-receiver"


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...


def rfc3339_nano(nanoseconds: int) -> str:
    seconds, nanos = divmod(nanoseconds, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{nanos:09d}Z"


class ReconcileRequester:
    """Sets requestedAt on targets through a Backend; safe to call from several threads."""

    def __init__(self, backend: Backend, clock: Clock,
                 field_manager: str = FIELD_MANAGER) -> None:
        self.backend = backend
        self.clock = clock
        self.field_manager = field_manager
        self._last = 0
        self._guard = threading.Lock()

    def stamp(self) -> str:
        with self._guard:
            now = round(self.clock.now() * 1_000_000_000)
            self._last = max(now, self._last + 1)
            return rfc3339_nano(self._last)

    def request(self, target: Target, value: str | None = None) -> str:
        """Write the annotation; returns the value written. Raises what the Backend raises."""
        value = value or self.stamp()
        self.backend.apply({
            "apiVersion": target.api_version,
            "kind": target.kind,
            "metadata": {"name": target.name, "namespace": target.namespace,
                         "annotations": {REQUESTED_AT_ANNOTATION: value}},
        }, field_manager=self.field_manager, force=True)
        return value
