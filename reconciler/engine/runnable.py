"""Reconciling a Runnable (carto.run/v1alpha1) as Cartographer does, in small ordered steps.

Each change of a Runnable's inputs stamps a NEW immutable object (a "run": a Tekton PipelineRun,
a test.run Test, ...) from its ClusterRunTemplate; unchanged inputs stamp nothing. The Runnable
reports the outputs of its newest succeeded run, and finished runs beyond the retention policy
are deleted. Steps share one signature (`engine/reconcile.Step`); a step that meets a
`RunnableError` records it on RunTemplateReady and stops. Status, conditions and observedGeneration
are written once, in `_finish`, run from a `finally`, with Ready from Cartographer's rule in the
one summarizer; a step that raised keeps the last good outputs and says why on Ready.

The runs are written as the Runnable's ServiceAccount (`runnable_identity`: Cartographer's
`spec.serviceAccountName`, else `default`, in the Runnable's namespace), through
`backends.base.impersonated` as the owner and Kustomization controllers do: stamping a run and
deleting runs beyond retention go as it; reads, the Runnable's own status and its events stay
the controller's. A refused stamp is `RunTemplateReady=False StampedObjectRejectedByAPIServer`
with the API server's message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import structlog

from reconciler.backends.base import Backend, Identity, impersonated, write_status
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
from reconciler.model.conditions import FALSE, TRUE, UNKNOWN, Condition, find_condition
from reconciler.model.errors import BackendError, NotFound
from reconciler.model.objects import Obj, meta, name_of, namespace_of, spec_of, status_of
from reconciler.runtime.clock import Clock, rfc3339
from reconciler.runtime.reconcile import (
    DONE,
    STOP,
    CartographerConditions,
    Conditions,
    Ending,
    Result,
    Step,
    reconcile,
    render,
    summarize,
)

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


def runnable_identity(runnable: Obj) -> Identity:
    """The ServiceAccount a Runnable's runs are written as: its `spec.serviceAccountName`, else
    `default`, in the Runnable's namespace (Cartographer's rule)."""
    account = spec_of(runnable).get("serviceAccountName")
    name = account if isinstance(account, str) and account else DEFAULT_SERVICE_ACCOUNT
    return Identity.service_account(namespace_of(runnable), name)


@dataclass
class RunnableReconcile:
    """The state one reconcile builds up, step by step."""

    runnable: Obj
    conditions: Conditions = field(default_factory=Conditions)
    template: Obj | None = None
    stamped: Obj | None = None
    created: bool = False
    runs: list[Obj] = field(default_factory=list)
    outputs: dict[str, Any] | None = None
    error: RunnableError | None = None
    """The error a step stopped on (Cartographer then writes no outputs)."""


class RunnableController:
    name = "runnable-controller"

    def __init__(self, backend: Backend, clock: Clock) -> None:
        self.backend = backend
        self.clock = clock
        self.steps: Sequence[Step[RunnableReconcile]] = (
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
            reconcile(state, self.steps, self._finish)
        finally:
            structlog.contextvars.unbind_contextvars("owner", "kind")
        # Every round of the runner reconciles again; a run finishing is a cluster change.
        return None

    # --- steps ---------------------------------------------------------------------------

    def check_service_account(self, state: RunnableReconcile) -> Result:
        runnable = state.runnable
        account = str(spec_of(runnable).get("serviceAccountName") or DEFAULT_SERVICE_ACCOUNT)
        if account == DEFAULT_SERVICE_ACCOUNT:
            return DONE
        where = f"{namespace_of(runnable)}/{account}"
        try:
            found = self.backend.get("v1", "ServiceAccount", namespace_of(runnable), account)
        except BackendError as exc:
            return self._stop(state, ServiceAccountNotFoundError(
                f"failed to get service account [{where}]: {exc}"))
        if found is None:
            return self._stop(state, ServiceAccountNotFoundError(
                f"failed to get service account [{where}]: serviceaccounts \"{account}\" not "
                f"found. Create it, or fix spec.serviceAccountName of Runnable "
                f"[{namespace_of(runnable)}/{name_of(runnable)}]"))
        return DONE

    def get_run_template(self, state: RunnableReconcile) -> Result:
        ref = spec_of(state.runnable).get("runTemplateRef") or {}
        name = str(ref.get("name") or "")
        template = None
        problem = f"{RUN_TEMPLATE_KIND.lower()}s.carto.run \"{name}\" not found"
        try:
            template = self.backend.get(CARTO_API, RUN_TEMPLATE_KIND, "", name)
        except BackendError as exc:
            problem = str(exc)
        if template is None:
            return self._stop(state, RunTemplateNotFoundError(
                f"unable to get run template [{name}]: failed to get run template object from "
                f"api server [{RUN_TEMPLATE_KIND}/{name}]: {problem}"))
        state.template = template
        return DONE

    def stamp(self, state: RunnableReconcile) -> Result:
        assert state.template is not None
        try:
            selected = resolve_selected(self.backend, state.runnable)
            desired = stamp_run(state.template, state.runnable, selected)
        except RunnableError as exc:
            return self._stop(state, exc)
        api_version, kind = str(desired["apiVersion"]), str(desired["kind"])
        where = (f"unable to apply object [{namespace_of(desired)}/{display_name(desired)}] for "
                 f"run template [{name_of(state.template)}]")
        try:
            live = self.backend.get(api_version, kind, namespace_of(desired), name_of(desired))
            if live is not None and not meta(desired).get("generateName") and not in_sync(
                    desired, live):
                info = self.backend.kind_info(api_version, kind)
                return self._stop(state, RunRejectedError(
                    f"{where}: create: {info.qualified_resource} \"{name_of(desired)}\" already "
                    "exists (runs are immutable: use metadata.generateName in the "
                    f"ClusterRunTemplate [{name_of(state.template)}])"))
            if live is None:
                live = self._writer(state.runnable).apply(desired)
                state.created = True
        except BackendError as exc:
            return self._stop(state, RunRejectedError(f"{where}: {exc}"))
        state.stamped = live
        return DONE

    def list_runs(self, state: RunnableReconcile) -> Result:
        assert state.stamped is not None and state.template is not None
        run = state.stamped
        labels = run_labels(state.runnable, name_of(state.template))
        try:
            state.runs = self.backend.list(str(run["apiVersion"]), str(run["kind"]),
                                           namespace_of(run), labels)
        except BackendError as exc:
            shown = "map[" + " ".join(f"{k}:{v}" for k, v in sorted(labels.items())) + "]"
            return self._stop(state, ListRunsError(
                f"unable to list objects in namespace [{namespace_of(run)}] with labels "
                f"[{shown}]: {exc}"))
        return DONE

    def collect_garbage(self, state: RunnableReconcile) -> Result:
        writer = self._writer(state.runnable)
        for run in runs_to_delete(state.runs, RetentionPolicy.of(state.runnable)):
            try:
                writer.delete(str(run["apiVersion"]), str(run["kind"]), namespace_of(run),
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
        return DONE

    def read_outputs(self, state: RunnableReconcile) -> Result:
        assert state.template is not None
        paths = {str(k): str(v) for k, v in (spec_of(state.template).get("outputs") or {}).items()}
        latest = latest_succeeded_outputs(state.runs, paths)
        if latest.error is not None and latest.source is not None:
            source = latest.source
            ns = namespace_of(source)
            qualified = self._qualified(source)
            in_ns = f" in namespace [{ns}]" if ns else ""
            return self._stop(state, OutputPathNotSatisfiedError(
                f"waiting to read value from resource [{qualified}/{name_of(source)}]{in_ns}: "
                f"unable to retrieve outputs from stamped object [{ns}/{name_of(source)}] of "
                f"type [{qualified}] for run template [{name_of(state.template)}]: failed to "
                f"evaluate path [{latest.path}]: {latest.error}"))
        # No succeeded run yet: keep the outputs reported before, as Cartographer does.
        state.outputs = latest.outputs or status_of(state.runnable).get("outputs") or None
        for cond in runnable_conditions(None, state.stamped):
            state.conditions.set(cond)
        return DONE

    def _writer(self, runnable: Obj) -> Backend:
        """The backend the runs are stamped and deleted through: a view acting as the
        Runnable's ServiceAccount (`runnable_identity`), or the backend itself where there is
        no authentication (the simulated cluster)."""
        return impersonated(self.backend, runnable_identity(runnable))

    def _stop(self, state: RunnableReconcile, error: RunnableError) -> Result:
        """Stop on `error`: RunTemplateReady=False with its reason, as Cartographer writes it."""
        state.error = error
        for cond in runnable_conditions(error, state.stamped):
            state.conditions.set(cond)
        return STOP

    # --- the one place status is written --------------------------------------------------

    def _finish(self, state: RunnableReconcile, ending: Ending) -> None:
        runnable = state.runnable
        if state.created and state.stamped is not None:
            self.backend.emit_event(
                runnable, "Normal", "StampedObjectApplied",
                f"Created object [{self._qualified(state.stamped)}/{name_of(state.stamped)}]")
        previous = status_of(runnable)
        conditions = summarize(state.conditions, ending, CONDITIONS)
        if ending.failure is not None:
            # Keep the outputs of the last good reconcile; say why this one failed.
            status: dict[str, Any] = dict(previous)
        else:
            # On a RunnableError Cartographer writes no outputs: consumers wait instead of
            # reading stale ones.
            status = {}
            if state.error is None and state.outputs:
                status["outputs"] = state.outputs
        status["observedGeneration"] = meta(runnable).get("generation", 1)
        status["conditions"] = render(previous.get("conditions"), conditions, CONDITIONS, ending,
                                      rfc3339(self.clock.now()))
        if ending.failure is None:
            # Cartographer's key order: observedGeneration, conditions, outputs.
            status = {k: status[k] for k in ("observedGeneration", "conditions", "outputs")
                      if k in status}
        if status != previous:
            write_status(self.backend, {**runnable, "status": status})
            ready = conditions[-1]
            log.info("runnable status written", ready=ready.status, reason=ready.reason)

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


CONDITIONS = CartographerConditions(order=(RUN_TEMPLATE_READY, STAMPED_OBJECT_CONDITION),
                                    ready_of=ready_of)
"""A Runnable's conditions as Cartographer writes them; a raised error is reported on Ready."""


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
