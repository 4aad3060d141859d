"""One reconcile shape for every controller: ordered steps, and one summarizer of how it ended.

    step(run) -> Result      DONE: go on to the next step
                             requeue(after): stop here, come back in `after` seconds (work in
                                 flight: a sync wave, a health check)
                             STOP: stop here; the step's conditions already say why
                             or raise: an error of its class (Stalled, Waiting, Transient,
                                 BackendError, DeadlineExceeded) or a crash (a bug)
    run_steps(steps, run)    the tiny loop: each step in order until one does not say DONE
    reconcile(run, steps, finish)
                             the loop with `finish(run, Ending)` in a `finally`: the one place a
                             controller writes status, knowing how the reconcile ended; the error
                             goes on to the runner, which owns retries and metrics
    summarize(conditions, ending, rules)
                             Ready (and for Flux kinds Reconciling and Stalled) derived in one place
                             from the conditions the steps own

A controller's run holds a `Conditions`: each step sets (or clears) only its own conditions. Two
condition sets exist, each exactly as its project writes it:

- `FluxConditions` (GitRepository, Kustomization): negative-polarity conditions in priority order
  (FetchFailed, ArtifactOutdated, ...) and positive ones (ArtifactInStorage, Healthy, ...).
  Success: Ready=True with the success message, no Reconciling, no Stalled. A requeue: Reconciling
  =True, Ready mirrors the most important failing condition (Unknown/Progressing when none). A stop:
  Ready=False mirroring the most important failing condition. A stalling error (`Stalled`):
  Stalled=True, Ready=False with its reason, no Reconciling. Any other error (transient, backend,
  deadline, a crash): Reconciling=True `ProgressingWithRetry`, Ready=False (Unknown for `Waiting`)
  with the error's reason and message. The generation is observed on success and on a stall only.
- `CartographerConditions` (Workload, Deliverable, Runnable): positive conditions in Cartographer's
  order and its own rule for Ready. An error is reported on the kind's failure conditions and on
  Ready, with its reason and message; nothing else changes.

Whatever the kind, an ending that is not a success changes none of the fields only a success may
change (`keep_last_good`: outputs, lastAppliedRevision, artifact): a Ready object never turns Ready
=True with lost fields, nor Unknown without a reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol, TypeVar

from reconciler.model.conditions import FALSE, TRUE, UNKNOWN, Condition, merge_conditions
from reconciler.model.errors import Stalled, Waiting
from reconciler.runtime.controller import ReconcileFailure

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
PROGRESSING = "Progressing"
"""Flux's reason while a reconcile is in progress (Reconciling=True, Ready=Unknown)."""
PROGRESSING_WITH_RETRY = "ProgressingWithRetry"
"""Flux's reason on Reconciling while a failed reconcile is retried."""


class Action(Enum):
    DONE = "done"
    REQUEUE = "requeue"
    STOP = "stop"


@dataclass(frozen=True)
class Result:
    """What a step decided: go on, come back after `after` seconds, or stop here."""

    action: Action
    after: float | None = None

    @property
    def done(self) -> bool:
        return self.action is Action.DONE


DONE = Result(Action.DONE)
STOP = Result(Action.STOP)


def requeue(after: float) -> Result:
    """Stop here and come back in `after` seconds: work in flight, not a failure."""
    return Result(Action.REQUEUE, after)


R = TypeVar("R")
R_contra = TypeVar("R_contra", contravariant=True)


class Step(Protocol[R_contra]):
    """One step of a reconcile: the one signature every controller's steps share."""

    def __call__(self, run: R_contra, /) -> Result: ...


def run_steps(steps: Iterable[Step[R]], run: R,
              between: Callable[[], None] | None = None) -> Result:
    """Run `steps` in order until one does not say DONE; `between` runs before each step (the
    deadline check)."""
    for step in steps:
        if between is not None:
            between()
        result = step(run)
        if not result.done:
            return result
    return DONE


@dataclass(frozen=True)
class Ending:
    """How a reconcile ended: the last step's result, or the error a step raised."""

    result: Result | None
    error: BaseException | None = None

    @property
    def failure(self) -> ReconcileFailure | None:
        return None if self.error is None else ReconcileFailure.of(self.error)

    @property
    def succeeded(self) -> bool:
        return self.error is None and self.result is not None and self.result.done

    @property
    def stalled(self) -> bool:
        return isinstance(self.error, Stalled)

    @property
    def action(self) -> Action | None:
        """DONE, REQUEUE or STOP when the steps returned; None when one raised."""
        return None if self.error is not None or self.result is None else self.result.action


def reconcile(run: R, steps: Iterable[Step[R]], finish: Callable[[R, Ending], None],
              between: Callable[[], None] | None = None) -> Result:
    """Run the steps, then `finish` in a `finally` with how they ended; an error is re-raised
    after it has been recorded (the runner logs it and retries)."""
    ending = Ending(None, None)
    try:
        result = run_steps(steps, run, between)
        ending = Ending(result)
        return result
    except BaseException as exc:
        ending = Ending(None, exc)
        raise
    finally:
        finish(run, ending)


# --- conditions the steps own ------------------------------------------------------------------


class Conditions:
    """The conditions of one reconcile: each step sets or clears its own, in order of setting."""

    def __init__(self, initial: Iterable[Condition] = ()) -> None:
        self._by_type: dict[str, Condition] = {}
        for cond in initial:
            self.set(cond)

    @classmethod
    def of(cls, previous: Iterable[Mapping[str, Any]] | None,
           types: Iterable[str]) -> Conditions:
        """Start from the previous conditions of `types`, as written on the object."""
        wanted = set(types)
        return cls(Condition(str(c.get("type")), str(c.get("status") or UNKNOWN),
                             str(c.get("reason") or ""), str(c.get("message") or ""))
                   for c in previous or [] if isinstance(c, Mapping) and c.get("type") in wanted)

    def set(self, cond: Condition) -> None:
        self._by_type[cond.type] = cond

    def clear(self, *types: str) -> None:
        for type_ in types:
            self._by_type.pop(type_, None)

    def get(self, type_: str) -> Condition | None:
        return self._by_type.get(type_)

    def __iter__(self) -> Iterator[Condition]:
        return iter(list(self._by_type.values()))

    def __contains__(self, type_: object) -> bool:
        return type_ in self._by_type


@dataclass(frozen=True)
class FluxConditions:
    """A Flux kind's condition set: Ready, Reconciling, Stalled and the kind's own."""

    negative: tuple[str, ...]
    """Negative-polarity conditions (True when failing), most important first."""
    positive: tuple[str, ...] = ()
    """Positive-polarity conditions of the kind (False when failing), most important first."""
    success_reason: str = "Succeeded"
    retry_message: str = ""
    """Reconciling's message while a failure is retried, when no step said what is in progress
    (the error's message when empty)."""

    @property
    def owned(self) -> tuple[str, ...]:
        return (READY, RECONCILING, STALLED, *self.negative, *self.positive)


@dataclass(frozen=True)
class CartographerConditions:
    """A Cartographer kind's condition set, exactly as Cartographer writes it."""

    order: tuple[str, ...]
    """The kind's conditions before Ready, in Cartographer's order."""
    ready_of: Callable[[Sequence[Condition]], Condition]
    """Cartographer's rule for Ready from those conditions."""
    failure_types: tuple[str, ...] = ()
    """Conditions that report a raised error besides Ready, unless an earlier one in `order`
    already says the reconcile could not get that far."""

    @property
    def owned(self) -> tuple[str, ...]:
        return (*self.order, READY)


ConditionRules = FluxConditions | CartographerConditions


def summarize(conditions: Conditions, ending: Ending, rules: ConditionRules,
              success_message: str = "") -> list[Condition]:
    """The kind's conditions after this reconcile, Ready included, derived in one place."""
    if isinstance(rules, FluxConditions):
        return _summarize_flux(conditions, ending, rules, success_message)
    return _summarize_cartographer(conditions, ending, rules)


def _summarize_flux(conditions: Conditions, ending: Ending, rules: FluxConditions,
                    success_message: str) -> list[Condition]:
    # A step may say why on Ready itself, as Flux's kustomize-controller does (DependencyNotReady,
    # BuildFailed): the kind has no negative condition of its own for those.
    said = conditions.get(READY)
    own = Conditions(c for c in conditions if c.type not in (READY, STALLED))
    failure = ending.failure
    if ending.succeeded:
        own.clear(RECONCILING, *rules.negative)
        ready = Condition(READY, TRUE, rules.success_reason, success_message)
    elif failure is not None and ending.stalled:
        own.clear(RECONCILING)
        own.set(Condition(STALLED, TRUE, failure.reason, failure.message))
        ready = Condition(READY, FALSE, failure.reason, failure.message)
    elif failure is not None:
        progress = own.get(RECONCILING)
        message = (progress.message if progress is not None and progress.message
                   else rules.retry_message or failure.message)
        reason = PROGRESSING if isinstance(ending.error, Waiting) else PROGRESSING_WITH_RETRY
        own.set(Condition(RECONCILING, TRUE, reason, message))
        ready = Condition(READY, failure.status, failure.reason, failure.message)
    elif ending.action is Action.REQUEUE:
        progress = own.get(RECONCILING) or Condition(RECONCILING, TRUE, PROGRESSING,
                                                      "reconciliation in progress")
        own.set(progress)
        ready = _why(own, rules, said) or Condition(READY, UNKNOWN, progress.reason,
                                                     progress.message)
    else:  # STOP: the steps' conditions say why
        own.clear(RECONCILING)
        ready = _why(own, rules, said) or Condition(
            READY, FALSE, "ReconciliationFailed", "the reconcile stopped without saying why")
    ordered = [ready, *(c for c in (own.get(RECONCILING), own.get(STALLED)) if c is not None)]
    return ordered + [c for c in own if c.type not in (RECONCILING, STALLED)]


def _why(conditions: Conditions, rules: FluxConditions, said: Condition | None
         ) -> Condition | None:
    """What a step said on Ready this reconcile (it knows why it stopped), else Ready mirroring
    the most important failing condition."""
    if said is not None and said.status != TRUE:
        return said
    for type_ in rules.negative:
        cond = conditions.get(type_)
        if cond is not None and cond.status == TRUE:
            return Condition(READY, FALSE, cond.reason, cond.message)
    for type_ in rules.positive:
        cond = conditions.get(type_)
        if cond is not None and cond.status == FALSE:
            return Condition(READY, FALSE, cond.reason, cond.message)
    return None


def _summarize_cartographer(conditions: Conditions, ending: Ending,
                            rules: CartographerConditions) -> list[Condition]:
    ordered = [c for t in rules.order if (c := conditions.get(t)) is not None]
    failure = ending.failure
    if failure is None:
        return [*ordered, rules.ready_of(ordered)]
    out: list[Condition] = []
    broken = False
    for type_ in rules.order:
        cond = conditions.get(type_)
        if type_ in rules.failure_types and not broken:
            out.append(failure.condition(type_))
            broken = True
        elif cond is not None:
            out.append(cond)
            broken = broken or cond.status != TRUE
    return [*out, failure.condition(READY)]


def render(previous: Sequence[Mapping[str, Any]] | None, current: Sequence[Condition],
           rules: ConditionRules, ending: Ending, now: str,
           generation: int | None = None) -> list[dict[str, Any]]:
    """`status.conditions` as written: each condition's lastTransitionTime kept unless its status
    changed. Flux kinds keep conditions they do not own (another writer's); Cartographer kinds
    write their set, and after a raised error keep the previous ones in their previous places."""
    old = [c for c in previous or [] if isinstance(c, Mapping)]
    rendered = merge_conditions(old, current, now, generation)
    if isinstance(rules, FluxConditions):
        written = {c.type for c in current}
        return rendered + [dict(c) for c in old
                           if c.get("type") not in rules.owned and c.get("type") not in written]
    if ending.error is None:
        return rendered
    by_type = {c["type"]: c for c in rendered}
    merged = [by_type.pop(str(c.get("type")), dict(c)) for c in old]
    return merged + list(by_type.values())


def keep_last_good(status: dict[str, Any], previous: Mapping[str, Any], ending: Ending,
                   fields: Iterable[str]) -> dict[str, Any]:
    """`status` with `fields` (those only a successful reconcile may change) as they were in
    `previous` unless the reconcile succeeded."""
    if ending.succeeded:
        return status
    for name in fields:
        if name in previous:
            status[name] = previous[name]
        else:
            status.pop(name, None)
    return status
