"""Apply one desired object: skip when in sync, otherwise create or update it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from reconciler.backends.base import FIELD_MANAGER, Backend
from reconciler.diff.compare import changed_paths, in_sync
from reconciler.model.objects import Obj, name_of, namespace_of


class Action(StrEnum):
    CREATED = "created"
    CONFIGURED = "configured"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class ApplyResult:
    live: Obj
    action: Action
    changed: tuple[str, ...] = ()


def apply_object(backend: Backend, desired: Obj, field_manager: str = FIELD_MANAGER) -> ApplyResult:
    """Bring one object in line with `desired`; raises the backend's errors unchanged."""
    api_version, kind = str(desired["apiVersion"]), str(desired["kind"])
    live = backend.get(api_version, kind, namespace_of(desired), name_of(desired))
    if live is not None and in_sync(desired, live):
        return ApplyResult(live, Action.UNCHANGED)
    changed = tuple(changed_paths(desired, live)) if live is not None else ()
    applied = backend.apply(desired, field_manager)
    return ApplyResult(applied, Action.CREATED if live is None else Action.CONFIGURED, changed)
