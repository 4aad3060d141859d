"""Applying a set of desired objects: ordered, in sync waves, with drift and conflict handling.

`plan_set` is the dry run (what `reconciler diff` shows); `apply_set` does it. For each object:
plan (normalize, ignore rules, left-scoped compare); skip when unchanged; otherwise apply with
server-side apply under the owner's field manager, carrying the live values of ignored fields.

- Drift is an object that differs from a desired state that did not change since the last
  successful apply (`same_source`). It is corrected (self-heal) unless the owner chose detect-only;
  then it is only reported.
- Conflicts: an object this owner applied before is its own, so fields another manager changed on
  it are taken back (forced) when self-healing. Any other conflict is reported per field unless
  the owner sets `force`.
- A wave starts only when every object of the previous wave is Healthy; otherwise the result is
  incomplete and says which object it waits for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog

from reconciler.apply.health import Health, HealthStatus, assess
from reconciler.apply.inventory import Inventory, ObjectRef
from reconciler.apply.ordering import apply_order
from reconciler.backends.base import FIELD_MANAGER, Backend
from reconciler.diff.changeset import (
    ChangeAction,
    ChangeSet,
    ObjectChange,
    plan_deletion,
    plan_object,
)
from reconciler.diff.ignore import IgnoreRule, ignored_paths, respect
from reconciler.model.conflicts import ApplyConflict, FieldConflict
from reconciler.model.errors import BackendError, Rejected
from reconciler.model.objects import Obj, describe

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ApplyOptions:
    field_manager: str = FIELD_MANAGER
    force: bool = False
    """Take fields other managers own (conflicts) on any object."""
    self_heal: bool = True
    """Correct drift; False reports it only (detect-only)."""
    same_source: bool = False
    """The desired state is the one last applied successfully, so any difference is drift."""
    ignore: Sequence[IgnoreRule] = ()
    previous: Inventory = field(default_factory=Inventory)


@dataclass
class ObjectOutcome:
    change: ObjectChange
    live: Obj | None = None
    applied: bool = False
    drift: bool = False
    error: str | None = None
    conflicts: tuple[FieldConflict, ...] = ()


@dataclass
class SetResult:
    outcomes: list[ObjectOutcome] = field(default_factory=list)
    complete: bool = True
    waiting: str | None = None

    @property
    def errors(self) -> list[str]:
        return [f"{o.change.title}: {o.error}" for o in self.outcomes if o.error]

    @property
    def drifted(self) -> list[ObjectOutcome]:
        return [o for o in self.outcomes if o.drift]

    @property
    def applied(self) -> Inventory:
        """The objects that exist as desired (applied now or already in sync)."""
        return Inventory.of_objects(o.live for o in self.outcomes
                                    if o.live is not None and o.error is None)

    @property
    def changes(self) -> ChangeSet:
        return ChangeSet([o.change for o in self.outcomes])


def _live(backend: Backend, obj: Obj) -> Obj | None:
    try:
        return backend.get(str(obj["apiVersion"]), str(obj["kind"]),
                           str(obj["metadata"].get("namespace") or ""),
                           str(obj["metadata"]["name"]))
    except Rejected:
        return None  # the kind is not served yet (its CRD is part of the same set)


def plan_set(backend: Backend, desired: Sequence[Obj], previous: Inventory | None = None,
             ignore: Sequence[IgnoreRule] = ()) -> ChangeSet:
    """What `apply_set` (and a prune of `previous`) would change, without changing anything."""
    previous = previous or Inventory()
    changes = ChangeSet()
    for wave in apply_order(desired):
        for obj in wave:
            changes.changes.append(plan_object(obj, _live(backend, obj), ignore))
    current = Inventory.of_objects(desired)
    for ref in previous.minus(current):
        try:
            live = backend.get(ref.api_version, ref.kind, ref.namespace, ref.name)
        except BackendError:
            live = None
        if live is not None:
            changes.changes.append(plan_deletion(live))
    return changes


def apply_set(backend: Backend, desired: Sequence[Obj], options: ApplyOptions) -> SetResult:
    result = SetResult()
    waves = apply_order(desired)
    for number, wave in enumerate(waves):
        outcomes = [_apply_one(backend, obj, options) for obj in wave]
        result.outcomes.extend(outcomes)
        if any(o.error for o in outcomes):
            result.complete = False
            break
        if number + 1 < len(waves):
            waiting = _first_unhealthy(outcomes)
            if waiting is not None:
                result.complete = False
                result.waiting = waiting
                break
    return result


def _first_unhealthy(outcomes: Sequence[ObjectOutcome]) -> str | None:
    for o in outcomes:
        health: HealthStatus = assess(o.live)
        if health.status is not Health.HEALTHY:
            detail = f": {health.message}" if health.message else ""
            return f"{o.change.title} is {health.status}{detail}"
    return None


def _apply_one(backend: Backend, desired: Obj, options: ApplyOptions) -> ObjectOutcome:
    try:
        live = _live(backend, desired)
    except BackendError as exc:
        return ObjectOutcome(plan_object(desired, None), error=str(exc))
    change = plan_object(desired, live, options.ignore)
    outcome = ObjectOutcome(change, live)
    if change.action is ChangeAction.UNCHANGED:
        return outcome
    ours = ObjectRef.of(desired) in options.previous
    outcome.drift = change.action is ChangeAction.CONFIGURED and ours and options.same_source
    if outcome.drift and not options.self_heal:
        log.info("drift detected (detect-only)", object=change.title)
        return outcome
    body = respect(desired, live, ignored_paths(options.ignore, desired, live)) if (
        options.ignore and live is not None) else desired
    force = options.force or (ours and options.self_heal)
    try:
        outcome.live = backend.apply(body, options.field_manager, force)
        outcome.applied = True
    except ApplyConflict as exc:
        outcome.error, outcome.conflicts = str(exc), exc.conflicts
    except BackendError as exc:
        # Name the object once: a backend's message may already name it.
        message, name = str(exc), describe(desired)
        outcome.error = message if name in message else f"{name}: {message}"
    return outcome
