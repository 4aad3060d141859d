"""Reconciling a Runnable (carto.run/v1alpha1) as Cartographer does, in small ordered steps.

Each change of a Runnable's inputs stamps a NEW immutable object (a "run": a Tekton PipelineRun,
a test.run Test, ...) from its ClusterRunTemplate; unchanged inputs stamp nothing. The Runnable
reports the outputs of its newest succeeded run, and finished runs beyond the retention policy
are deleted. Steps share one signature and stop by raising a `RunnableError`; status, conditions
and observedGeneration are written once, in `_finish`, run from a `finally`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import structlog

from reconciler.backends.base import Backend
from reconciler.chains.blueprint import CARTO_API
from reconciler.chains.runnable_errors import (
    ListRunsError,
    OutputPathNotSatisfiedError,
    RunnableError,
    RunRejectedError,
    RunTemplateNotFoundError,
    ServiceAccountNotFoundError,
)
from reconciler.chains.runnable_runs import (
    SUCCEEDED,
    RetentionPolicy,
    latest_succeeded_outputs,
    runs_to_delete,
)
from reconciler.chains.runnable_stamp import (
    RUN_TEMPLATE_KIND,
    display_name,
    resolve_selected,
    run_labels,
    stamp_run,
)
from reconciler.diff.compare import in_sync
from reconciler.engine.clock import Clock, rfc3339
from reconciler.engine.controller import ReconcileFailure
from reconciler.model.conditions import (
    FALSE,
    TRUE,
    UNKNOWN,
    Condition,
    find_condition,
    merge_conditions,
)
from reconciler.model.errors import BackendError, NotFound
from reconciler.model.objects import Obj, meta, name_of, namespace_of, spec_of, status_of

log = structlog.get_logger(__name__)

RUNNABLE_KIND: Final = "Runnable"
READY: Final = "Ready"
RUN_TEMPLATE_READY: Final = "RunTemplateReady"
STAMPED_OBJECT_CONDITION: Final = "StampedObjectCondition"
SUCCEEDED_CONDITION_REASON: Final = "SucceededCondition"
UNKNOWN_STAMPED_REASON: Final = "Unknown"
# Every namespace has a `default` service account (the controller-manager creates it), so only
# a named one is looked up.
DEFAULT_SERVICE_ACCOUNT: Final = "default"


@dataclass
class RunnableReconcile:
    """The state one reconcile builds up, step by step."""

    runnable: Obj
    template: Obj | None = None
    stamped: Obj | None = None
    created: bool = False
    runs: list[Obj] = field(default_factory=list)
    outputs: dict[str, Any] | None = None
    error: RunnableError | None = None
    failure: ReconcileFailure | None = None
    """A step raised something other than a `RunnableError`: never a success."""


Step = Callable[[RunnableReconcile], None]


class RunnableController:
    name = "runnable-controller"

    def __init__(self, backend: Backend, clock: Clock) -> None:
        self.backend = backend
        self.clock = clock
        self.steps: Sequence[Step] = (
            self.check_service_account,
            self.get_run_template,
            self.stamp,
            self.list_runs,
            self.collect_garbage,
            self.read_outputs,
        )

    def watches(self) -> Sequence[tuple[str, str]]:
        return [(CARTO_API, RUNNABLE_KIND)]

    def reconcile(self, obj: Obj) -> float | None:
        state = RunnableReconcile(obj)
        structlog.contextvars.bind_contextvars(
            owner=f"{namespace_of(obj)}/{name_of(obj)}", kind=RUNNABLE_KIND)
        try:
            for step in self.steps:
                step(state)
        except RunnableError as exc:
            state.error = exc
        except Exception as exc:
            state.failure = ReconcileFailure.of(exc)
            raise
        finally:
            self._finish(state)
            structlog.contextvars.unbind_contextvars("owner", "kind")
        # Every round of the runner reconciles again; a run finishing is a cluster change.
        return None

    # --- steps ---------------------------------------------------------------------------

    def check_service_account(self, state: RunnableReconcile) -> None:
        runnable = state.runnable
        account = str(spec_of(runnable).get("serviceAccountName") or DEFAULT_SERVICE_ACCOUNT)
        if account == DEFAULT_SERVICE_ACCOUNT:
            return
        where = f"{namespace_of(runnable)}/{account}"
        try:
            found = self.backend.get("v1", "ServiceAccount", namespace_of(runnable), account)
        except BackendError as exc:
            raise ServiceAccountNotFoundError(
                f"failed to get service account [{where}]: {exc}") from exc
        if found is None:
            raise ServiceAccountNotFoundError(
                f"failed to get service account [{where}]: serviceaccounts \"{account}\" not "
                f"found. Create it, or fix spec.serviceAccountName of Runnable "
                f"[{namespace_of(runnable)}/{name_of(runnable)}]")

    def get_run_template(self, state: RunnableReconcile) -> None:
        ref = spec_of(state.runnable).get("runTemplateRef") or {}
        name = str(ref.get("name") or "")
        template = None
        problem = f"{RUN_TEMPLATE_KIND.lower()}s.carto.run \"{name}\" not found"
        try:
            template = self.backend.get(CARTO_API, RUN_TEMPLATE_KIND, "", name)
        except BackendError as exc:
            problem = str(exc)
        if template is None:
            raise RunTemplateNotFoundError(
                f"unable to get run template [{name}]: failed to get run template object from "
                f"api server [{RUN_TEMPLATE_KIND}/{name}]: {problem}")
        state.template = template

    def stamp(self, state: RunnableReconcile) -> None:
        assert state.template is not None
        selected = resolve_selected(self.backend, state.runnable)
        desired = stamp_run(state.template, state.runnable, selected)
        api_version, kind = str(desired["apiVersion"]), str(desired["kind"])
        where = (f"unable to apply object [{namespace_of(desired)}/{display_name(desired)}] for "
                 f"run template [{name_of(state.template)}]")
        try:
            live = self.backend.get(api_version, kind, namespace_of(desired), name_of(desired))
            if live is not None and not meta(desired).get("generateName") and not in_sync(
                    desired, live):
                info = self.backend.kind_info(api_version, kind)
                raise RunRejectedError(
                    f"{where}: create: {info.qualified_resource} \"{name_of(desired)}\" already "
                    "exists (runs are immutable: use metadata.generateName in the "
                    f"ClusterRunTemplate [{name_of(state.template)}])")
            if live is None:
                live = self.backend.apply(desired)
                state.created = True
        except BackendError as exc:
            raise RunRejectedError(f"{where}: {exc}") from exc
        state.stamped = live

    def list_runs(self, state: RunnableReconcile) -> None:
        assert state.stamped is not None and state.template is not None
        run = state.stamped
        labels = run_labels(state.runnable, name_of(state.template))
        try:
            state.runs = self.backend.list(str(run["apiVersion"]), str(run["kind"]),
                                           namespace_of(run), labels)
        except BackendError as exc:
            shown = "map[" + " ".join(f"{k}:{v}" for k, v in sorted(labels.items())) + "]"
            raise ListRunsError(
                f"unable to list objects in namespace [{namespace_of(run)}] with labels "
                f"[{shown}]: {exc}") from exc

    def collect_garbage(self, state: RunnableReconcile) -> None:
        for run in runs_to_delete(state.runs, RetentionPolicy.of(state.runnable)):
            try:
                self.backend.delete(str(run["apiVersion"]), str(run["kind"]), namespace_of(run),
                                    name_of(run))
            except NotFound:
                continue
            except BackendError as exc:
                # A failed delete is retried on the next reconcile; it must not block outputs.
                log.warning("could not delete run beyond retention policy", run=name_of(run),
                            error=str(exc))
                continue
            self.backend.emit_event(state.runnable, "Normal", "StampedObjectRemoved",
                                    f"Deleted object [{self._qualified(run)}/{name_of(run)}]")

    def read_outputs(self, state: RunnableReconcile) -> None:
        assert state.template is not None
        paths = {str(k): str(v) for k, v in (spec_of(state.template).get("outputs") or {}).items()}
        latest = latest_succeeded_outputs(state.runs, paths)
        if latest.error is not None and latest.source is not None:
            source = latest.source
            ns = namespace_of(source)
            qualified = self._qualified(source)
            in_ns = f" in namespace [{ns}]" if ns else ""
            raise OutputPathNotSatisfiedError(
                f"waiting to read value from resource [{qualified}/{name_of(source)}]{in_ns}: "
                f"unable to retrieve outputs from stamped object [{ns}/{name_of(source)}] of "
                f"type [{qualified}] for run template [{name_of(state.template)}]: failed to "
                f"evaluate path [{latest.path}]: {latest.error}")
        # No succeeded run yet: keep the outputs reported before, as Cartographer does.
        state.outputs = latest.outputs or status_of(state.runnable).get("outputs") or None

    # --- the one place status is written --------------------------------------------------

    def _finish(self, state: RunnableReconcile) -> None:
        runnable = state.runnable
        if state.created and state.stamped is not None:
            self.backend.emit_event(
                runnable, "Normal", "StampedObjectApplied",
                f"Created object [{self._qualified(state.stamped)}/{name_of(state.stamped)}]")
        previous = status_of(runnable)
        if state.failure is not None:
            # Keep the outputs of the last good reconcile; say why this one failed.
            failed: dict[str, Any] = {**previous,
                                      "observedGeneration": meta(runnable).get("generation", 1)}
            failed_ready = merge_conditions(previous.get("conditions"),
                                            [state.failure.condition(READY)],
                                            rfc3339(self.clock.now()))
            failed["conditions"] = [c for c in previous.get("conditions") or []
                                    if c.get("type") != READY] + failed_ready
            if failed != previous:
                self.backend.update_status({**runnable, "status": failed})
            return
        conditions = runnable_conditions(state.error, state.stamped)
        status: dict[str, Any] = {
            "observedGeneration": meta(runnable).get("generation", 1),
            "conditions": merge_conditions(previous.get("conditions"), conditions,
                                           rfc3339(self.clock.now())),
        }
        # On an error Cartographer writes no outputs: consumers wait instead of reading stale ones.
        if state.error is None and state.outputs:
            status["outputs"] = state.outputs
        if status != previous:
            self.backend.update_status({**runnable, "status": status})
            ready = find_condition(status["conditions"], READY) or {}
            log.info("runnable status written", ready=ready.get("status"),
                     reason=ready.get("reason"))

    def _qualified(self, obj: Obj) -> str:
        try:
            return self.backend.kind_info(str(obj["apiVersion"]),
                                          str(obj["kind"])).qualified_resource
        except BackendError:
            return str(obj.get("kind", "")).lower()


def runnable_conditions(error: RunnableError | None, stamped: Obj | None) -> list[Condition]:
    """RunTemplateReady, StampedObjectCondition and the Ready they add up to."""
    if error is None:
        template_ready = Condition(RUN_TEMPLATE_READY, TRUE, "Ready")
    else:
        template_ready = Condition(RUN_TEMPLATE_READY, FALSE, error.reason, str(error))
    run_cond = find_condition(status_of(stamped).get("conditions"), SUCCEEDED) if stamped else None
    if run_cond is None:
        stamped_cond = Condition(STAMPED_OBJECT_CONDITION, UNKNOWN, UNKNOWN_STAMPED_REASON)
    else:
        stamped_cond = Condition(STAMPED_OBJECT_CONDITION, str(run_cond.get("status")),
                                 SUCCEEDED_CONDITION_REASON, _run_message(stamped, run_cond))
    return [template_ready, stamped_cond, ready_of([template_ready, stamped_cond])]


def ready_of(conditions: Sequence[Condition]) -> Condition:
    """Cartographer's condition manager: the last False wins, else the first Unknown, else True."""
    status, reason, message = TRUE, "Ready", ""
    for cond in conditions:
        if cond.status == FALSE:
            status, reason, message = FALSE, cond.reason, cond.message
        elif cond.status == UNKNOWN and status == TRUE:
            status, reason, message = UNKNOWN, cond.reason, cond.message
    return Condition(READY, status, reason, message)


def _run_message(run: Obj | None, cond: Mapping[str, Any]) -> str:
    detail = ": ".join(str(p) for p in (cond.get("reason"), cond.get("message")) if p)
    name = name_of(run) if run is not None else ""
    return f"run [{name}] {SUCCEEDED}={cond.get('status')}" + (f": {detail}" if detail else "")


def runnable_settled(runnable: Mapping[str, Any]) -> bool:
    """Seen its latest generation, and its current run is not still running.

    A run without a Succeeded condition (a ConfigMap, say) has nothing that will ever finish it,
    so it counts as settled.
    """
    status = status_of(runnable)
    if status.get("observedGeneration") != meta(runnable).get("generation"):
        return False
    stamped = find_condition(status.get("conditions"), STAMPED_OBJECT_CONDITION)
    return not (stamped is not None and stamped.get("status") == UNKNOWN
                and stamped.get("reason") == SUCCEEDED_CONDITION_REASON)
