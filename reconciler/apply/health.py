"""Health assessment of live objects with Argo CD's rules (gitops-engine `pkg/health`).

`assess(live)` returns one of Healthy, Progressing, Degraded, Suspended, Missing (no live object)
or Unknown, with a message. Built-in kinds have their own rule; any other object is judged by its
`Ready` condition (Knative Service and most custom resources); an object with neither a rule
nor a `Ready` condition is Healthy once it exists (nothing to wait for), as in Argo CD.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from reconciler.model.conditions import find_condition
from reconciler.model.objects import GroupVersionKind, Obj, meta, spec_of, status_of


class Health(StrEnum):
    HEALTHY = "Healthy"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"
    SUSPENDED = "Suspended"
    MISSING = "Missing"
    UNKNOWN = "Unknown"


# Worst first: the aggregate health of a set is its worst member's (as Argo CD's app health).
SEVERITY = (Health.DEGRADED, Health.MISSING, Health.UNKNOWN, Health.PROGRESSING,
            Health.SUSPENDED, Health.HEALTHY)


@dataclass(frozen=True)
class HealthStatus:
    status: Health
    message: str = ""


def worst(statuses: Iterable[HealthStatus]) -> HealthStatus:
    found = list(statuses)
    if not found:
        return HealthStatus(Health.HEALTHY)
    return min(found, key=lambda h: SEVERITY.index(h.status))


def assess(live: Obj | None) -> HealthStatus:
    if live is None:
        return HealthStatus(Health.MISSING, "the object does not exist")
    gvk = GroupVersionKind.of(live)
    rule = _RULES.get((gvk.group, gvk.kind))
    if rule is not None:
        return rule(live)
    return _ready_condition(live) or HealthStatus(Health.HEALTHY)


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _observed_behind(obj: Obj) -> bool:
    return _int(meta(obj).get("generation"), 0) > _int(status_of(obj).get("observedGeneration"))


def _deployment(obj: Obj) -> HealthStatus:
    spec, status = spec_of(obj), status_of(obj)
    if spec.get("paused"):
        return HealthStatus(Health.SUSPENDED, "Deployment is paused")
    if _observed_behind(obj):
        return HealthStatus(Health.PROGRESSING, "Waiting for rollout to finish: observed "
                            "deployment generation less than desired generation")
    progressing = find_condition(status.get("conditions"), "Progressing")
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        return HealthStatus(Health.DEGRADED,
                            f"Deployment {meta(obj).get('name')!r} exceeded its progress deadline")
    replicas = _int(spec.get("replicas"), 1)
    updated = _int(status.get("updatedReplicas"))
    total = _int(status.get("replicas"))
    available = _int(status.get("availableReplicas"))
    if updated < replicas:
        return HealthStatus(Health.PROGRESSING, f"Waiting for rollout to finish: {updated} out of "
                            f"{replicas} new replicas have been updated...")
    if total > updated:
        return HealthStatus(Health.PROGRESSING, f"Waiting for rollout to finish: {total - updated}"
                            " old replicas are pending termination...")
    if available < updated:
        return HealthStatus(Health.PROGRESSING, f"Waiting for rollout to finish: {available} of "
                            f"{updated} updated replicas are available...")
    return HealthStatus(Health.HEALTHY)


def _statefulset(obj: Obj) -> HealthStatus:
    spec, status = spec_of(obj), status_of(obj)
    if _int(status.get("observedGeneration")) == 0 or _observed_behind(obj):
        return HealthStatus(Health.PROGRESSING,
                            "Waiting for statefulset spec update to be observed...")
    ready = _int(status.get("readyReplicas"))
    if spec.get("replicas") is not None and ready < _int(spec.get("replicas")):
        return HealthStatus(Health.PROGRESSING,
                            f"Waiting for {_int(spec.get('replicas')) - ready} pods to be ready...")
    strategy = spec.get("updateStrategy") or {}
    updated = _int(status.get("updatedReplicas"))
    if strategy.get("type", "RollingUpdate") == "RollingUpdate" and strategy.get("rollingUpdate"):
        partition = (strategy.get("rollingUpdate") or {}).get("partition")
        if spec.get("replicas") is not None and partition is not None:
            wanted = _int(spec.get("replicas")) - _int(partition)
            if updated < wanted:
                return HealthStatus(Health.PROGRESSING, "Waiting for partitioned roll out to "
                                    f"finish: {updated} out of {wanted} new pods have been "
                                    "updated...")
        return HealthStatus(Health.HEALTHY,
                            f"partitioned roll out complete: {updated} new pods have been "
                            "updated...")
    if strategy.get("type") == "OnDelete":
        return HealthStatus(Health.HEALTHY, f"statefulset has {ready} ready pods")
    if status.get("updateRevision") != status.get("currentRevision"):
        return HealthStatus(Health.PROGRESSING, "waiting for statefulset rolling update to "
                            f"complete {updated} pods at revision {status.get('updateRevision')}"
                            "...")
    return HealthStatus(Health.HEALTHY, "statefulset rolling update complete "
                        f"{_int(status.get('currentReplicas'))} pods at revision "
                        f"{status.get('currentRevision')}...")


def _daemonset(obj: Obj) -> HealthStatus:
    spec, status = spec_of(obj), status_of(obj)
    if _observed_behind(obj):
        return HealthStatus(Health.PROGRESSING, "Waiting for rollout to finish: observed daemon "
                            "set generation less than desired generation")
    if (spec.get("updateStrategy") or {}).get("type") == "OnDelete":
        return HealthStatus(Health.HEALTHY, "daemon set has OnDelete update strategy")
    desired = _int(status.get("desiredNumberScheduled"))
    updated = _int(status.get("updatedNumberScheduled"))
    available = _int(status.get("numberAvailable"))
    if updated < desired:
        return HealthStatus(Health.PROGRESSING, f"Waiting for daemon set {meta(obj).get('name')!r}"
                            f" rollout to finish: {updated} out of {desired} new pods have been "
                            "updated...")
    if available < desired:
        return HealthStatus(Health.PROGRESSING, f"Waiting for daemon set {meta(obj).get('name')!r}"
                            f" rollout to finish: {available} of {desired} updated pods are "
                            "available...")
    return HealthStatus(Health.HEALTHY)


def _replicaset(obj: Obj) -> HealthStatus:
    spec, status = spec_of(obj), status_of(obj)
    if _observed_behind(obj):
        return HealthStatus(Health.PROGRESSING, "Waiting for rollout to finish: observed replica "
                            "set generation less than desired generation")
    failure = find_condition(status.get("conditions"), "ReplicaFailure")
    if failure is not None and failure.get("status") == "True":
        return HealthStatus(Health.DEGRADED, str(failure.get("message") or ""))
    replicas, available = _int(spec.get("replicas"), 1), _int(status.get("availableReplicas"))
    if available < replicas:
        return HealthStatus(Health.PROGRESSING, f"Waiting for rollout to finish: {available} out "
                            f"of {replicas} new replicas are available...")
    return HealthStatus(Health.HEALTHY)


def _job(obj: Obj) -> HealthStatus:
    status = status_of(obj)
    for cond in status.get("conditions") or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Failed":
            return HealthStatus(Health.DEGRADED, str(cond.get("message") or "Job failed"))
        if cond.get("type") == "Complete":
            return HealthStatus(Health.HEALTHY, str(cond.get("message") or "Job completed"))
    if spec_of(obj).get("suspend"):
        return HealthStatus(Health.SUSPENDED, "Job is suspended")
    return HealthStatus(Health.PROGRESSING, "Job is running")


def _cronjob(obj: Obj) -> HealthStatus:
    if spec_of(obj).get("suspend"):
        return HealthStatus(Health.SUSPENDED, "CronJob is suspended")
    return HealthStatus(Health.HEALTHY)


def _pod(obj: Obj) -> HealthStatus:
    spec, status = spec_of(obj), status_of(obj)
    message = str(status.get("message") or "")
    restart = spec.get("restartPolicy", "Always")
    containers: list[Mapping[str, Any]] = status.get("containerStatuses") or []
    if restart == "Always":
        failing = [str((c.get("state") or {}).get("waiting", {}).get("message") or "")
                   for c in containers if _waiting_badly(c)]
        if failing:
            return HealthStatus(Health.DEGRADED, ", ".join(failing))
    phase = status.get("phase")
    if phase == "Pending":
        return HealthStatus(Health.PROGRESSING, message)
    if phase == "Succeeded":
        return HealthStatus(Health.HEALTHY, message)
    if phase == "Failed":
        if message:
            return HealthStatus(Health.DEGRADED, message)
        for c in [*(status.get("initContainerStatuses") or []), *containers]:
            terminated = (c.get("state") or {}).get("terminated") or {}
            if terminated.get("message"):
                return HealthStatus(Health.DEGRADED, str(terminated["message"]))
            if terminated.get("reason") == "OOMKilled":
                return HealthStatus(Health.DEGRADED, "OOMKilled")
            if _int(terminated.get("exitCode")) != 0:
                return HealthStatus(Health.DEGRADED, f"container {c.get('name')!r} failed with "
                                    f"exit code {terminated.get('exitCode')}")
        return HealthStatus(Health.DEGRADED)
    if phase == "Running":
        if restart != "Always":
            return HealthStatus(Health.PROGRESSING, message)
        ready = find_condition(status.get("conditions"), "Ready")
        if ready is not None and ready.get("status") == "True":
            return HealthStatus(Health.HEALTHY, message)
        if any((c.get("lastState") or {}).get("terminated") for c in containers):
            return HealthStatus(Health.DEGRADED, message)
        return HealthStatus(Health.PROGRESSING, message)
    return HealthStatus(Health.UNKNOWN, message)


def _waiting_badly(container: Mapping[str, Any]) -> bool:
    reason = str(((container.get("state") or {}).get("waiting") or {}).get("reason") or "")
    return bool(reason) and (reason.startswith("Err") or reason.endswith(("Error", "BackOff")))


def _load_balanced(obj: Obj) -> HealthStatus:
    ingress = (status_of(obj).get("loadBalancer") or {}).get("ingress") or []
    if ingress:
        return HealthStatus(Health.HEALTHY)
    return HealthStatus(Health.PROGRESSING, "Waiting for the load balancer to be assigned")


def _service(obj: Obj) -> HealthStatus:
    if spec_of(obj).get("type") == "LoadBalancer":
        return _load_balanced(obj)
    return HealthStatus(Health.HEALTHY)


def _pvc(obj: Obj) -> HealthStatus:
    phase = status_of(obj).get("phase")
    if phase == "Lost":
        return HealthStatus(Health.DEGRADED, "the volume claim lost its volume")
    if phase == "Pending":
        return HealthStatus(Health.PROGRESSING, "Waiting for the volume claim to be bound")
    if phase == "Bound":
        return HealthStatus(Health.HEALTHY)
    return HealthStatus(Health.UNKNOWN, f"unknown volume claim phase {phase!r}")


def _ready_condition(obj: Obj) -> HealthStatus | None:
    """Knative and most custom resources: the `Ready` condition, once the spec is observed."""
    status = status_of(obj)
    ready = find_condition(status.get("conditions"), "Ready")
    if ready is None:
        return None
    if "observedGeneration" in status and _observed_behind(obj):
        return HealthStatus(Health.PROGRESSING, "Waiting for the spec update to be observed")
    message = str(ready.get("message") or "")
    if ready.get("status") == "True":
        return HealthStatus(Health.HEALTHY, message)
    if ready.get("status") == "False":
        return HealthStatus(Health.DEGRADED, message or str(ready.get("reason") or ""))
    return HealthStatus(Health.PROGRESSING, message or str(ready.get("reason") or ""))


def _knative_service(obj: Obj) -> HealthStatus:
    return _ready_condition(obj) or HealthStatus(Health.PROGRESSING,
                                                 "Waiting for the Ready condition")


_RULES: dict[tuple[str, str], Callable[[Obj], HealthStatus]] = {
    ("apps", "Deployment"): _deployment,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "DaemonSet"): _daemonset,
    ("apps", "ReplicaSet"): _replicaset,
    ("batch", "Job"): _job,
    ("batch", "CronJob"): _cronjob,
    ("", "Pod"): _pod,
    ("", "Service"): _service,
    ("networking.k8s.io", "Ingress"): _load_balanced,
    ("", "PersistentVolumeClaim"): _pvc,
    ("serving.knative.dev", "Service"): _knative_service,
}
