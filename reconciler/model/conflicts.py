"""Server-side apply conflicts: a field another manager owns with a different value."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.model.errors import Conflict


@dataclass(frozen=True)
class FieldConflict:
    path: str  # .spec.replicas
    manager: str  # kubectl-edit


class ApplyConflict(Conflict):
    """Applying would take fields from other managers; the message lists each field and owner.

    Retry with force (the owner's `spec.force`, or self-heal of an object we applied before) to
    take the fields over, or add an ignore rule for them.
    """

    def __init__(self, obj: str, manager: str, conflicts: Sequence[FieldConflict]) -> None:
        self.obj = obj
        self.conflicts = tuple(conflicts)
        listed = "; ".join(f"{c.path} (owned by {c.manager})" for c in self.conflicts)
        super().__init__(
            f"Apply failed with {len(self.conflicts)} conflict(s) on {obj} for field manager "
            f"{manager!r}: {listed}. Apply with force to take ownership, or ignore these fields")
