"""Simulated kube-controller-manager for `batch/v1`: Jobs run to completion and CronJobs keep
their schedule, on the virtual clock.

A Job runs for its duration (`simulator.reconciler.dev/duration`, else the default) from its
`startTime`, then reports `succeeded`, `completionTime` and the `SuccessCriteriaMet` and
`Complete` conditions (reason CompletionsReached). With `simulator.reconciler.dev/outcome:
Failed` it fails instead: `FailureTarget` and `Failed` with reason BackoffLimitExceeded, and
`failed` at `backoffLimit + 1` Pods. `activeDeadlineSeconds` shorter than the run fails it with
DeadlineExceeded. `spec.suspend` holds it with a `Suspended` condition; resuming starts it anew.
Finished Jobs never change again. No Pods are created.

A CronJob records `status.lastScheduleTime`: the latest time its schedule fired since it was
created (or last scheduled), and asks to run again at the next one. A suspended CronJob does not
schedule. No Jobs are created.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reconciler.backends.base import Backend
from reconciler.model.conditions import FALSE, TRUE, Condition, find_condition
from reconciler.model.objects import Obj, meta, spec_of, status_of
from reconciler.runtime.clock import Clock, rfc3339
from reconciler.runtime.controller import Resync
from simulator.cron import CronError, CronSchedule
from simulator.kube_common import (
    KubeTiming,
    duration,
    fails,
    generation,
    manual_status,
    parse_time,
    positive_int,
    set_conditions,
    write_status,
)

BATCH_API = "batch/v1"
_JOB_STAMPS = ("lastProbeTime", "lastTransitionTime")
_DEFAULT_BACKOFF_LIMIT = 6


def _finished(status: dict[str, Any]) -> bool:
    return any(
        (cond := find_condition(status.get("conditions"), kind)) is not None
        and cond.get("status") == TRUE for kind in ("Complete", "Failed"))


class JobRuns:
    """`batch/v1` Job: active, then succeeded or failed, with Kubernetes' conditions."""

    name = "simulated-job-controller"

    def __init__(self, backend: Backend, clock: Clock, timing: KubeTiming) -> None:
        self.backend, self.clock, self.timing = backend, clock, timing

    def watches(self) -> Sequence[tuple[str, str]]:
        return [(BATCH_API, "Job")]

    def reconcile(self, obj: Obj) -> float | None:
        status = status_of(obj)
        if manual_status(obj) or _finished(status):
            return None
        spec, now = spec_of(obj), self.clock.now()
        conditions = status.get("conditions")
        if spec.get("suspend"):
            held = {k: v for k, v in status.items() if k not in ("active", "ready", "startTime")}
            held["conditions"] = set_conditions(
                conditions, [Condition("Suspended", TRUE, "JobSuspended", "Job suspended")],
                rfc3339(now), _JOB_STAMPS)
            write_status(self.backend, obj, held)
            return None
        resumed = (find_condition(conditions, "Suspended") or {}).get("status") == TRUE
        started = parse_time(status.get("startTime"))
        start = now if resumed or started is None else started
        length = duration(obj, self.timing.run)
        deadline = spec.get("activeDeadlineSeconds")
        ending = self._ending(obj, length, deadline)
        if ending is not None and deadline is not None:
            length = min(length, float(positive_int(deadline, 0)))
        new: dict[str, Any] = {**status, "startTime": rfc3339(start)}
        wanted = [Condition("Suspended", FALSE, "JobResumed", "Job resumed")] if resumed else []
        remaining = start + length - now
        if remaining > 0:
            new.update({"active": _parallelism(spec), "ready": _parallelism(spec),
                        "uncountedTerminatedPods": {}})
        elif ending is None:
            new.update({"ready": 0, "succeeded": _completions(spec), "uncountedTerminatedPods": {},
                        "completionTime": rfc3339(start + length)})
            new.pop("active", None)
            message = "Reached expected number of succeeded pods"
            wanted += [Condition("SuccessCriteriaMet", TRUE, "CompletionsReached", message),
                       Condition("Complete", TRUE, "CompletionsReached", message)]
        else:
            reason, message, failed = ending
            new.update({"ready": 0, "failed": failed, "uncountedTerminatedPods": {}})
            new.pop("active", None)
            wanted += [Condition("FailureTarget", TRUE, reason, message),
                       Condition("Failed", TRUE, reason, message)]
        if wanted:
            new["conditions"] = set_conditions(conditions, wanted, rfc3339(now), _JOB_STAMPS)
        write_status(self.backend, obj, new)
        return remaining if remaining > 0 else None

    def _ending(self, obj: Obj, length: float, deadline: Any) -> tuple[str, str, int] | None:
        """How the Job fails (reason, message, failed Pods), or None when it succeeds."""
        spec = spec_of(obj)
        if deadline is not None and positive_int(deadline, 0) < length:
            return ("DeadlineExceeded", "Job was active longer than specified deadline",
                    _parallelism(spec))
        if fails(obj):
            backoff = positive_int(spec.get("backoffLimit"), _DEFAULT_BACKOFF_LIMIT)
            return ("BackoffLimitExceeded", "Job has reached the specified backoff limit",
                    backoff + 1)
        return None


def _completions(spec: dict[str, Any]) -> int:
    return positive_int(spec.get("completions"), 1) if spec.get("completions") is not None else 1


def _parallelism(spec: dict[str, Any]) -> int:
    parallelism = positive_int(spec.get("parallelism"), 1)
    if spec.get("completions") is not None:
        return min(parallelism, _completions(spec))
    return parallelism


class CronJobSchedules:
    """`batch/v1` CronJob: `status.lastScheduleTime` follows the schedule on the virtual clock."""

    name = "simulated-cronjob-controller"

    def __init__(self, backend: Backend, clock: Clock) -> None:
        self.backend, self.clock = backend, clock
        self._warned: set[tuple[str, int]] = set()

    def watches(self) -> Sequence[tuple[str, str]]:
        return [(BATCH_API, "CronJob")]

    def reconcile(self, obj: Obj) -> float | None:
        spec, status = spec_of(obj), status_of(obj)
        if manual_status(obj) or spec.get("suspend"):
            return None
        try:
            schedule = CronSchedule.parse(str(spec.get("schedule") or ""))
        except CronError as exc:
            # Offered every round: warn once per generation, not once per round.
            warned = (str(meta(obj).get("uid")), generation(obj))
            if warned not in self._warned:
                self._warned.add(warned)
                self.backend.emit_event(obj, "Warning", "UnparseableSchedule",
                                        f"unparseable schedule: {exc}", source=self.name)
            return None
        now = self.clock.now()
        since = max(parse_time(meta(obj).get("creationTimestamp")) or now,
                    parse_time(status.get("lastScheduleTime")) or 0.0)
        latest = schedule.latest_at_or_before(now)
        if latest is not None and latest > since:
            write_status(self.backend, obj, {**status, "lastScheduleTime": rfc3339(latest)})
        following = schedule.next_after(now)
        # The next schedule is a periodic wake-up, not work in flight: `simulate` may settle.
        return Resync(following - now) if following is not None else None
