"""Apply one desired object: skip when in sync, otherwise create or update it.

A server-side apply answered 409 is one of two things. With `FieldManagerConflict` causes it is
a field conflict (`ApplyConflict`): another manager owns fields we set, and sending the same
apply again cannot help until someone forces or changes something, so it stays a refusal. Without
them it is kube-apiserver's optimistic-concurrency Conflict ("the object has been modified;
please apply your changes to the latest version and try again"): the object changed under the
request (a racing writer, or a `metadata.resourceVersion` in the applied body that is no longer
the live one). That one is retryable, so it becomes `Transient` and the reconcile is retried with
backoff instead of being reported as a template the API server rejected.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import Final

from reconciler.backends.base import FIELD_MANAGER, Backend
from reconciler.diff.compare import changed_paths, in_sync
from reconciler.model.conflicts import ApplyConflict
from reconciler.model.errors import Conflict, Transient
from reconciler.model.objects import Obj, describe, name_of, namespace_of

APPLY_RACED = "Conflict"
"""The `Transient` reason of an apply that met an optimistic-concurrency conflict."""


class Action(StrEnum):
    CREATED = "created"
    CONFIGURED = "configured"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class ApplyResult:
    live: Obj
    action: Action
    # (desired, the live object before) of a configuring apply: what `changed` is computed from
    # when it is asked for (nothing in a reconcile asks; a diff of the two costs a walk of both).
    compared: tuple[Obj, Obj] | None = None

    @cached_property
    def changed(self) -> tuple[str, ...]:
        """The dotted paths the apply changed (empty unless it configured the object)."""
        if self.compared is None:
            return ()
        return tuple(changed_paths(*self.compared))


class Unread:
    def __repr__(self) -> str:
        return "<unread>"


UNREAD: Final = Unread()
"""`apply_object`'s `live` when the caller has not read the object: it is read here."""


def apply_object(backend: Backend, desired: Obj, field_manager: str = FIELD_MANAGER, *,
                 live: Obj | Unread | None = UNREAD) -> ApplyResult:
    """Bring one object in line with `desired`; raises the backend's errors unchanged, but a
    409 that is not a field conflict, which is `Transient` (retry with backoff).

    `live`: the object as the caller just read it through `backend` (None: not found), so it is
    not read twice; by default it is read here."""
    if isinstance(live, Unread):
        live = backend.get(str(desired["apiVersion"]), str(desired["kind"]),
                           namespace_of(desired), name_of(desired))
    if live is not None and in_sync(desired, live):
        return ApplyResult(live, Action.UNCHANGED)
    try:
        applied = backend.apply(desired, field_manager)
    except ApplyConflict:
        raise
    except Conflict as exc:
        raise Transient(APPLY_RACED, f"applying {describe(desired)} met a conflict that is not "
                                     f"a field conflict, retrying: {exc}") from exc
    if live is None:
        return ApplyResult(applied, Action.CREATED)
    return ApplyResult(applied, Action.CONFIGURED, (desired, live))
