"""The `Backend` protocol: everything the product asks of a cluster.

Two implementations: `reconciler.backends.kubernetes` (a real API server) and the simulator's
in-memory cluster. One contract test suite runs against both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from reconciler.model.kinds import KindInfo
from reconciler.model.objects import Obj

FIELD_MANAGER = "reconciler"


class Backend(Protocol):
    def kind_info(self, api_version: str, kind: str) -> KindInfo:
        """The served resource for a kind; raises `Rejected` if no API serves it."""
        ...

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        ...

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> list[Obj]:
        ...

    def apply(self, obj: Obj, field_manager: str = FIELD_MANAGER, force: bool = False) -> Obj:
        """Create the object or update the fields it declares; return the live object."""
        ...

    def update_status(self, obj: Obj) -> Obj:
        """Write `obj["status"]` through the status subresource; return the live object."""
        ...

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        ...

    def emit_event(
        self, involved: Obj, type_: str, reason: str, message: str, source: str = FIELD_MANAGER
    ) -> None:
        ...

    def events(self) -> Sequence[Obj]:
        ...
