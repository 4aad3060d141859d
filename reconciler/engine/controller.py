"""What a controller is: it watches kinds and reconciles one object at a time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from reconciler.model.objects import Obj


class Controller(Protocol):
    name: str

    def watches(self) -> Sequence[tuple[str, str]]:
        """The (apiVersion, kind) pairs whose objects this controller reconciles."""
        ...

    def reconcile(self, obj: Obj) -> float | None:
        """Bring the world closer to `obj`; return seconds until it wants to run again."""
        ...
