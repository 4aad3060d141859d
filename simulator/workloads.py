"""Simulated kube-controller-manager for `apps/v1` workloads: Deployment, StatefulSet, DaemonSet
and ReplicaSet roll out each generation on the virtual clock and report the status real
Kubernetes would, so Argo CD's health rules (`reconciler/apply/health.py`) see them go from
Progressing to Healthy (or Degraded) without a test writing status by hand.

No child ReplicaSets or Pods are created: only the parent's status matters to the reconciler.
Every new generation rolls out like a pod-template change (a scale-only change too).

With `simulator.reconciler.dev/outcome: Failed` (see `kube_common`):

- a Deployment never gets its new Pods available; when its progress deadline passes
  (`spec.progressDeadlineSeconds`, default 600 s, or the duration annotation) it reports
  `Progressing=False` with reason `ProgressDeadlineExceeded`, as the real controller does;
- a ReplicaSet reports a `ReplicaFailure` condition (reason `FailedCreate`) after its duration;
- a StatefulSet or DaemonSet stalls with Pods that never become ready: Kubernetes has no failure
  condition for them, so they stay Progressing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from reconciler.backends.base import Backend
from reconciler.model.conditions import FALSE, TRUE, UNKNOWN, Condition
from reconciler.model.objects import Obj, name_of, spec_of, status_of
from reconciler.runtime.clock import Clock, rfc3339
from simulator.kube_common import (
    KubeTiming,
    Stopwatch,
    duration,
    fails,
    generation,
    manual_status,
    name_hash,
    positive_int,
    set_conditions,
    without_zeros,
    write_status,
)

APPS_API = "apps/v1"
DEFAULT_PROGRESS_DEADLINE = 600  # seconds, the API server's default for a Deployment


class _Phase(StrEnum):
    """Where a generation's rollout is: still going, done, or given up on."""

    ROLLING = "rolling"
    DONE = "done"
    FAILED = "failed"


StatusBuilder = Callable[[Obj, _Phase], dict[str, Any]]


@dataclass
class _Rollout:
    """The shared shape of a rollout controller's reconcile: skip what is settled, else write
    the rolling status until the generation's time is up, then the settled one."""

    backend: Backend
    stopwatch: Stopwatch

    def run(self, obj: Obj, seconds: float, settled_phase: _Phase,
            build: StatusBuilder) -> float | None:
        """`settled_phase` ROLLING is a rollout that stalls for good: nothing to wait for."""
        settled = build(obj, settled_phase)
        if status_of(obj) == settled:
            return None
        remaining = 0.0 if settled_phase == _Phase.ROLLING else self.stopwatch.remaining(
            obj, seconds)
        if remaining > 0:
            write_status(self.backend, obj, build(obj, _Phase.ROLLING))
            return remaining
        write_status(self.backend, obj, settled)
        self.stopwatch.forget(obj)
        return None


def _replicas(obj: Obj) -> int:
    return positive_int(spec_of(obj).get("replicas", 1), 1)


def _scaled(value: Any, total: int, round_up: bool) -> int:
    """An int-or-percent field (maxSurge, maxUnavailable) as a number of Pods."""
    if isinstance(value, str) and value.endswith("%"):
        try:
            share = total * float(value[:-1]) / 100
        except ValueError:
            share = total * 0.25
        return math.ceil(share) if round_up else math.floor(share)
    return positive_int(value, 0)


class DeploymentRollouts:
    """`apps/v1` Deployment: observedGeneration, replica counts and the Available and Progressing
    conditions with the real reasons (ReplicaSetUpdated, NewReplicaSetAvailable,
    ProgressDeadlineExceeded, MinimumReplicasAvailable/Unavailable, DeploymentPaused)."""

    name = "simulated-deployment-controller"

    def __init__(self, backend: Backend, clock: Clock, timing: KubeTiming) -> None:
        self.backend, self.clock, self.timing = backend, clock, timing
        self._rollout = _Rollout(backend, Stopwatch(clock))

    def watches(self) -> Sequence[tuple[str, str]]:
        return [(APPS_API, "Deployment")]

    def reconcile(self, obj: Obj) -> float | None:
        if manual_status(obj):
            return None
        spec = spec_of(obj)
        if spec.get("paused"):
            # A paused Deployment observes its spec but does not roll it out.
            status = dict(status_of(obj))
            status["observedGeneration"] = generation(obj)
            status["conditions"] = set_conditions(
                status.get("conditions"),
                [Condition("Progressing", UNKNOWN, "DeploymentPaused", "Deployment is paused")],
                rfc3339(self.clock.now()))
            write_status(self.backend, obj, status)
            return None
        if fails(obj):
            deadline = positive_int(spec.get("progressDeadlineSeconds"),
                                    DEFAULT_PROGRESS_DEADLINE)
            return self._rollout.run(obj, duration(obj, deadline), _Phase.FAILED, self._status)
        return self._rollout.run(obj, duration(obj, self.timing.rollout), _Phase.DONE,
                                 self._status)

    def _status(self, obj: Obj, phase: _Phase) -> dict[str, Any]:
        spec, previous = spec_of(obj), status_of(obj)
        desired = _replicas(obj)
        replica_set = f"{name_of(obj)}-{name_hash(spec.get('template'))}"
        strategy = spec.get("strategy") or {}
        rolling = strategy.get("rollingUpdate") or {}
        recreate = strategy.get("type") == "Recreate"
        max_unavailable = 0 if recreate else _scaled(rolling.get("maxUnavailable", "25%"),
                                                     desired, round_up=False)
        if phase == _Phase.DONE:
            total = updated = available = desired
        else:
            # The old ReplicaSet's available Pods keep serving (Recreate stops them first); the
            # new ReplicaSet has surged Pods, or all of them on a first rollout, none available.
            old = 0 if recreate else min(positive_int(previous.get("availableReplicas"), 0),
                                         desired)
            surge = max(1, _scaled(rolling.get("maxSurge", "25%"), desired, round_up=True))
            updated = desired if old == 0 else min(desired, surge)
            total, available = old + updated, old
        if available >= desired - max_unavailable:
            available_cond = Condition("Available", TRUE, "MinimumReplicasAvailable",
                                       "Deployment has minimum availability.")
        else:
            available_cond = Condition("Available", FALSE, "MinimumReplicasUnavailable",
                                       "Deployment does not have minimum availability.")
        progressing = {
            _Phase.ROLLING: Condition("Progressing", TRUE, "ReplicaSetUpdated",
                                      f'ReplicaSet "{replica_set}" is progressing.'),
            _Phase.DONE: Condition("Progressing", TRUE, "NewReplicaSetAvailable",
                                   f'ReplicaSet "{replica_set}" has successfully progressed.'),
            _Phase.FAILED: Condition("Progressing", FALSE, "ProgressDeadlineExceeded",
                                     f'ReplicaSet "{replica_set}" has timed out progressing.'),
        }[phase]
        status: dict[str, Any] = {"observedGeneration": generation(obj), **without_zeros({
            "replicas": total, "updatedReplicas": updated, "readyReplicas": available,
            "availableReplicas": available, "unavailableReplicas": total - available})}
        status["conditions"] = set_conditions(previous.get("conditions"),
                                              [available_cond, progressing],
                                              rfc3339(self.clock.now()))
        return status


class StatefulSetRollouts:
    """`apps/v1` StatefulSet: replica counts and currentRevision/updateRevision, honouring the
    OnDelete strategy and a rolling update's partition (old Pods keep the old revision)."""

    name = "simulated-statefulset-controller"

    def __init__(self, backend: Backend, clock: Clock, timing: KubeTiming) -> None:
        self.backend, self.clock, self.timing = backend, clock, timing
        self._rollout = _Rollout(backend, Stopwatch(clock))

    def watches(self) -> Sequence[tuple[str, str]]:
        return [(APPS_API, "StatefulSet")]

    def reconcile(self, obj: Obj) -> float | None:
        if manual_status(obj):
            return None
        settled = _Phase.ROLLING if fails(obj) else _Phase.DONE
        return self._rollout.run(obj, duration(obj, self.timing.rollout), settled, self._status)

    def _status(self, obj: Obj, phase: _Phase) -> dict[str, Any]:
        spec, previous = spec_of(obj), status_of(obj)
        desired = _replicas(obj)
        revision = f"{name_of(obj)}-{name_hash(spec.get('template'))}"
        current = str(previous.get("currentRevision") or revision)
        if phase == _Phase.DONE:
            strategy = spec.get("updateStrategy") or {}
            kept = 0  # Pods left at the old revision
            if current != revision:
                if strategy.get("type") == "OnDelete":
                    kept = desired
                else:
                    partition = (strategy.get("rollingUpdate") or {}).get("partition")
                    kept = min(positive_int(partition, 0), desired)
            ready, updated = desired, desired - kept
            if kept == 0:
                current = revision
            current_replicas = kept or desired
        else:
            ready = min(positive_int(previous.get("readyReplicas"), 0), desired)
            updated = 0 if current != revision else ready
            current_replicas = ready
        return {
            "observedGeneration": generation(obj),
            "replicas": desired,
            **without_zeros({"readyReplicas": ready, "availableReplicas": ready,
                             "currentReplicas": current_replicas, "updatedReplicas": updated}),
            "currentRevision": current,
            "updateRevision": revision,
            "collisionCount": positive_int(previous.get("collisionCount"), 0),
        }


class DaemonSetRollouts:
    """`apps/v1` DaemonSet: one Pod on each of the simulated cluster's nodes."""

    name = "simulated-daemonset-controller"

    def __init__(self, backend: Backend, clock: Clock, timing: KubeTiming) -> None:
        self.backend, self.clock, self.timing = backend, clock, timing
        self._rollout = _Rollout(backend, Stopwatch(clock))

    def watches(self) -> Sequence[tuple[str, str]]:
        return [(APPS_API, "DaemonSet")]

    def reconcile(self, obj: Obj) -> float | None:
        if manual_status(obj):
            return None
        settled = _Phase.ROLLING if fails(obj) else _Phase.DONE
        return self._rollout.run(obj, duration(obj, self.timing.rollout), settled, self._status)

    def _status(self, obj: Obj, phase: _Phase) -> dict[str, Any]:
        nodes = self.timing.nodes
        if phase == _Phase.DONE:
            ready = updated = nodes
        else:
            # Pods replaced node by node: on a first rollout every Pod is new but none is ready.
            ready = min(positive_int(status_of(obj).get("numberReady"), 0), nodes)
            updated = nodes if ready == 0 else 0
        return {
            "observedGeneration": generation(obj),
            "desiredNumberScheduled": nodes,
            "currentNumberScheduled": nodes,
            "numberMisscheduled": 0,
            "numberReady": ready,
            **without_zeros({"updatedNumberScheduled": updated, "numberAvailable": ready,
                             "numberUnavailable": nodes - ready}),
        }


class ReplicaSetRollouts:
    """`apps/v1` ReplicaSet: replica counts; a failed one reports `ReplicaFailure`."""

    name = "simulated-replicaset-controller"

    def __init__(self, backend: Backend, clock: Clock, timing: KubeTiming) -> None:
        self.backend, self.clock, self.timing = backend, clock, timing
        self._rollout = _Rollout(backend, Stopwatch(clock))

    def watches(self) -> Sequence[tuple[str, str]]:
        return [(APPS_API, "ReplicaSet")]

    def reconcile(self, obj: Obj) -> float | None:
        if manual_status(obj):
            return None
        settled = _Phase.FAILED if fails(obj) else _Phase.DONE
        return self._rollout.run(obj, duration(obj, self.timing.rollout), settled, self._status)

    def _status(self, obj: Obj, phase: _Phase) -> dict[str, Any]:
        previous = status_of(obj)
        desired = _replicas(obj)
        if phase == _Phase.DONE:
            total = available = desired
        else:
            available = min(positive_int(previous.get("availableReplicas"), 0), desired)
            total = available if phase == _Phase.FAILED else desired
        status: dict[str, Any] = {"replicas": total, **without_zeros({
            "fullyLabeledReplicas": total, "readyReplicas": available,
            "availableReplicas": available}), "observedGeneration": generation(obj)}
        if phase == _Phase.FAILED:
            pod = f"{name_of(obj)}-{name_hash(name_of(obj), 5)}"
            refused = Condition("ReplicaFailure", TRUE, "FailedCreate",
                                f'pods "{pod}" is forbidden: the simulated cluster refused it '
                                "(simulator.reconciler.dev/outcome: Failed)")
            status["conditions"] = set_conditions(previous.get("conditions"), [refused],
                                                  rfc3339(self.clock.now()),
                                                  stamps=("lastTransitionTime",))
        return status
