"""Simulated Tekton Pipelines: PipelineRuns and TaskRuns run on the virtual clock and finish.

What real Tekton reports, a run reports here: `status.startTime`, a `Succeeded` condition that is
Unknown/Running until the run's duration has passed and then True/Succeeded (or False), a
`completionTime`, and the results its Pipeline or Task declares (`status.results` in v1,
`status.pipelineResults` / `status.taskResults` in v1beta1). A `pipelineRef`/`taskRef` naming an
object that does not exist fails the run at once (CouldntGetPipeline / CouldntGetTask), as Tekton
does; a cancelled run (`spec.status`) fails with reason Cancelled.

Annotations on a run steer the simulation. They usually come from the ClusterRunTemplate, so a
supply chain author can exercise the failure path without a cluster:

- `simulator.reconciler.dev/outcome: Failed` makes the run fail.
- `simulator.reconciler.dev/results: '{"digest": "sha256:..."}'` sets result values.
- `simulator.reconciler.dev/duration: "45"` sets the run's virtual duration in seconds.

Finished runs never change again: runs are immutable records.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from reconciler.backends.base import Backend
from reconciler.model.conditions import FALSE, TRUE, UNKNOWN, Condition, merge_conditions
from reconciler.model.errors import BackendError
from reconciler.model.objects import Obj, meta, name_of, namespace_of, spec_of, status_of
from reconciler.runtime.clock import Clock, rfc3339

TEKTON_API: Final = "tekton.dev/v1"
ANNOTATION_PREFIX: Final = "simulator.reconciler.dev/"
OUTCOME_ANNOTATION: Final = ANNOTATION_PREFIX + "outcome"
RESULTS_ANNOTATION: Final = ANNOTATION_PREFIX + "results"
DURATION_ANNOTATION: Final = ANNOTATION_PREFIX + "duration"
SUCCEEDED: Final = "Succeeded"
_CANCELLED = ("Cancelled", "CancelledRunFinally", "StoppedRunFinally", "TaskRunCancelled")


@dataclass
class TektonTiming:
    """Virtual seconds a run takes unless its duration annotation says otherwise."""

    pipeline_run: float = 20.0
    task_run: float = 10.0


@dataclass(frozen=True)
class _Flavour:
    """What differs between PipelineRuns and TaskRuns."""

    kind: str
    ref_field: str  # pipelineRef
    spec_field: str  # pipelineSpec
    definition_kind: str  # Pipeline
    definition_plural: str  # pipelines
    missing_reason: str  # CouldntGetPipeline
    v1beta1_results: str  # pipelineResults
    running_message: str
    succeeded_message: str
    failed_message: str


PIPELINE_RUN = _Flavour(
    kind="PipelineRun", ref_field="pipelineRef", spec_field="pipelineSpec",
    definition_kind="Pipeline", definition_plural="pipelines",
    missing_reason="CouldntGetPipeline", v1beta1_results="pipelineResults",
    running_message="Tasks Completed: 0 (Failed: 0, Cancelled 0), Skipped: 0",
    succeeded_message="Tasks Completed: {tasks} (Failed: 0, Cancelled 0), Skipped: 0",
    failed_message="Tasks Completed: {tasks} (Failed: 1, Cancelled 0), Skipped: 0",
)

TASK_RUN = _Flavour(
    kind="TaskRun", ref_field="taskRef", spec_field="taskSpec",
    definition_kind="Task", definition_plural="tasks",
    missing_reason="CouldntGetTask", v1beta1_results="taskResults",
    running_message="Not all Steps in the Task have finished executing",
    succeeded_message="All Steps have completed executing",
    failed_message="\"step-{step}\" exited with code 1",
)


class TektonRuns:
    """Runs PipelineRuns and TaskRuns to completion on the virtual clock."""

    name = "simulated-tekton"

    def __init__(self, backend: Backend, clock: Clock, timing: TektonTiming | None = None) -> None:
        self.backend, self.clock = backend, clock
        self.timing = timing or TektonTiming()

    def watches(self) -> Sequence[tuple[str, str]]:
        return [(TEKTON_API, PIPELINE_RUN.kind), (TEKTON_API, TASK_RUN.kind)]

    def reconcile(self, obj: Obj) -> float | None:
        flavour = PIPELINE_RUN if obj.get("kind") == PIPELINE_RUN.kind else TASK_RUN
        status = status_of(obj)
        if _succeeded_status(status) in (TRUE, FALSE):
            return None
        now = self.clock.now()
        start = _parse_time(status.get("startTime")) or now
        definition, missing = self._definition(obj, flavour)
        if missing:
            self._write(obj, start, Condition(SUCCEEDED, FALSE, flavour.missing_reason, missing),
                        results=None)
            return None
        if str(spec_of(obj).get("status") or "") in _CANCELLED:
            self._write(obj, start, Condition(
                SUCCEEDED, FALSE, "Cancelled",
                f"{flavour.kind} \"{name_of(obj)}\" was cancelled"), results=None)
            return None
        remaining = start + self._duration(obj, flavour) - now
        if remaining > 0:
            self._write(obj, start, Condition(SUCCEEDED, UNKNOWN, "Running",
                                              flavour.running_message), results=None)
            return remaining
        tasks = len(definition.get("tasks") or []) or 1
        steps = definition.get("steps") or [{}]
        if str(_annotations(obj).get(OUTCOME_ANNOTATION, "")).lower() == "failed":
            step = str((steps[0] or {}).get("name") or "unnamed-0")
            done = Condition(SUCCEEDED, FALSE, "Failed",
                             flavour.failed_message.format(tasks=tasks, step=step))
            self._write(obj, start, done, results=None)
            return None
        done = Condition(SUCCEEDED, TRUE, "Succeeded",
                         flavour.succeeded_message.format(tasks=tasks, step=""))
        self._write(obj, start, done, results=_results(obj, definition))
        return None

    # --- helpers -------------------------------------------------------------------------

    def _definition(self, run: Obj, flavour: _Flavour) -> tuple[Mapping[str, Any], str]:
        """The Pipeline/Task spec the run executes, or why it cannot be found."""
        spec = spec_of(run)
        inline = spec.get(flavour.spec_field)
        if isinstance(inline, Mapping):
            return inline, ""
        ref = spec.get(flavour.ref_field)
        if not isinstance(ref, Mapping) or not ref.get("name"):
            # Resolver references (bundles, git, hub) and ClusterTasks live outside the cluster's
            # namespaced objects: assume they resolve.
            return {}, ""
        if ref.get("kind") not in (None, flavour.definition_kind):
            return {}, ""
        name = str(ref["name"])
        try:
            found = self.backend.get(TEKTON_API, flavour.definition_kind, namespace_of(run), name)
        except BackendError:
            found = None
        if found is None:
            what = "retrieving pipeline" if flavour is PIPELINE_RUN else "listing tasks"
            run_kind = "pipelinerun" if flavour is PIPELINE_RUN else "taskRun"
            return {}, (f"Error {what} for {run_kind} {namespace_of(run)}/{name_of(run)}: "
                        f"{flavour.definition_plural}.tekton.dev \"{name}\" not found")
        return spec_of(found), ""

    def _duration(self, run: Obj, flavour: _Flavour) -> float:
        given = _annotations(run).get(DURATION_ANNOTATION)
        if given is not None:
            try:
                return max(0.0, float(given))
            except ValueError:
                pass
        return self.timing.pipeline_run if flavour is PIPELINE_RUN else self.timing.task_run

    def _write(self, run: Obj, start: float, succeeded: Condition,
               results: list[dict[str, str]] | None) -> None:
        previous = status_of(run)
        status = dict(previous)
        now = self.clock.now()
        status["startTime"] = previous.get("startTime") or rfc3339(start)
        status["conditions"] = merge_conditions(previous.get("conditions"), [succeeded],
                                                rfc3339(now))
        if succeeded.status != UNKNOWN:
            status["completionTime"] = rfc3339(now)
        if results:
            status[_results_field(run)] = results
        if status != previous:
            self.backend.update_status({**run, "status": status})


def _succeeded_status(status: Mapping[str, Any]) -> str | None:
    for cond in status.get("conditions") or []:
        if isinstance(cond, Mapping) and cond.get("type") == SUCCEEDED:
            return str(cond.get("status"))
    return None


def _annotations(obj: Obj) -> dict[str, Any]:
    found = meta(obj).get("annotations")
    return found if isinstance(found, dict) else {}


def _parse_time(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def _results_field(run: Obj) -> str:
    """`results` for v1 runs; the v1beta1 name for runs created as v1beta1.

    The cluster serves every version of a kind, so the version a run was created with is read
    from its managedFields, as the API server records it.
    """
    managed = meta(run).get("managedFields") or [{}]
    created_as = str((managed[0] or {}).get("apiVersion") or TEKTON_API)
    if created_as.endswith("/v1beta1"):
        return PIPELINE_RUN.v1beta1_results if run.get("kind") == PIPELINE_RUN.kind \
            else TASK_RUN.v1beta1_results
    return "results"


def _results(run: Obj, definition: Mapping[str, Any]) -> list[dict[str, str]]:
    """One value per declared result: from the results annotation, else a stable placeholder."""
    given: dict[str, Any] = {}
    raw = _annotations(run).get(RESULTS_ANNOTATION)
    if isinstance(raw, str) and raw:
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = {}
        given = parsed if isinstance(parsed, dict) else {}
    names = [str(r.get("name")) for r in definition.get("results") or []
             if isinstance(r, Mapping) and r.get("name")]
    names += [n for n in given if n not in names]
    out = []
    for name in names:
        if name in given:
            value = given[name] if isinstance(given[name], str) else json.dumps(given[name])
        else:
            seed = f"{namespace_of(run)}/{name_of(run)}/{name}".encode()
            value = f"{name}-{hashlib.sha256(seed).hexdigest()[:12]}"
        out.append({"name": name, "value": value})
    return out
