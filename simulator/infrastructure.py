"""Simulated node and cloud infrastructure for core `v1` kinds: the kubelet runs Pods, the cloud
controller gives LoadBalancer Services an address, the volume binder binds claims.

- A Pod is Pending (PodScheduled) until its containers start, then Running with every container
  ready and the Ready condition True. A Pod that runs to completion (`restartPolicy` Never or
  OnFailure) then Succeeds after its run time. With `simulator.reconciler.dev/outcome: Failed`
  its containers exit 1: a `restartPolicy: Always` (or OnFailure) Pod sits in CrashLoopBackOff,
  a `Never` Pod fails.
- A `type: LoadBalancer` Service gets `status.loadBalancer.ingress` with an IP from the
  documentation range 203.0.113.0/24 (or its `spec.loadBalancerIP`); a failed one never does.
- A PersistentVolumeClaim is Pending, then Bound with the access modes and capacity it asked
  for; a failed one stays Pending.

The duration annotation sets how long a Pod takes to start (`Always`) or to run (otherwise), a
load balancer to be assigned or a claim to be bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reconciler.backends.base import Backend
from reconciler.model.conditions import FALSE, TRUE, Condition
from reconciler.model.objects import Obj, meta, name_of, namespace_of, spec_of, status_of
from reconciler.runtime.clock import Clock, rfc3339
from simulator.kube_common import (
    KubeTiming,
    Stopwatch,
    duration,
    fails,
    manual_status,
    name_hash,
    parse_time,
    set_conditions,
    stable_number,
    write_status,
)

CORE_API = "v1"
_POD_STAMPS = ("lastTransitionTime",)  # the kubelet leaves lastProbeTime null


class PodLifecycle:
    """`v1` Pod: phase, conditions and container statuses, as the kubelet reports them."""

    name = "simulated-kubelet"

    def __init__(self, backend: Backend, clock: Clock, timing: KubeTiming) -> None:
        self.backend, self.clock, self.timing = backend, clock, timing

    def watches(self) -> Sequence[tuple[str, str]]:
        return [(CORE_API, "Pod")]

    def reconcile(self, obj: Obj) -> float | None:
        status = status_of(obj)
        if manual_status(obj) or status.get("phase") in ("Succeeded", "Failed"):
            return None
        now = self.clock.now()
        start = parse_time(status.get("startTime")) or now
        restart = str(spec_of(obj).get("restartPolicy") or "Always")
        completes = restart != "Always"
        started_at = start + (self.timing.pod_start if completes
                              else duration(obj, self.timing.pod_start))
        ends_at = started_at + duration(obj, self.timing.run) if completes else None
        if now < started_at:
            state, wake = "Pending", started_at - now
        elif ends_at is not None and now < ends_at:
            state, wake = "Running", ends_at - now
        elif ends_at is None:
            state, wake = ("CrashLoopBackOff" if fails(obj) else "Running"), None
        elif fails(obj):
            state, wake = ("CrashLoopBackOff" if restart == "OnFailure" else "Failed"), None
        else:
            state, wake = "Succeeded", None
        write_status(self.backend, obj, self._status(obj, state, start, started_at))
        return wake

    def _status(self, obj: Obj, state: str, start: float, started_at: float) -> dict[str, Any]:
        """`state`: Pending, Running, CrashLoopBackOff, Succeeded or Failed."""
        previous, now = status_of(obj), rfc3339(self.clock.now())
        names = [str(c.get("name")) for c in spec_of(obj).get("containers") or []
                 if isinstance(c, dict)] or ["main"]
        images = {str(c.get("name")): str(c.get("image") or "")
                  for c in spec_of(obj).get("containers") or [] if isinstance(c, dict)}
        ready = state == "Running"
        unready = f"containers with unready status: [{' '.join(names)}]"
        not_ready_reason = {"Succeeded": "PodCompleted", "Failed": "PodFailed"}.get(
            state, "ContainersNotReady")
        # No init containers are simulated: a scheduled Pod is initialized at once.
        wanted = [Condition("PodScheduled", TRUE, ""), Condition("Initialized", TRUE, "")]
        wanted += [Condition(kind, TRUE if ready else FALSE, "" if ready else not_ready_reason,
                             "" if ready or state in ("Succeeded", "Failed") else unready)
                   for kind in ("ContainersReady", "Ready")]
        node = stable_number(f"{namespace_of(obj)}/{name_of(obj)}", self.timing.nodes)
        status: dict[str, Any] = {
            "phase": {"CrashLoopBackOff": "Running"}.get(state, state),
            "conditions": set_conditions(previous.get("conditions"), wanted, now, _POD_STAMPS),
            "hostIP": f"172.18.0.{2 + node}",
            "startTime": rfc3339(start),
            "qosClass": str(previous.get("qosClass") or "BestEffort"),
        }
        if state != "Pending":
            status["podIP"] = f"10.244.{node}.{2 + stable_number(str(meta(obj).get('uid')), 250)}"
            status["podIPs"] = [{"ip": status["podIP"]}]
        status["containerStatuses"] = [
            _container(name, images.get(name, ""), state, started_at, obj) for name in names]
        return status


def _container(name: str, image: str, state: str, started_at: float, pod: Obj) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name, "image": image, "imageID": "", "ready": state == "Running",
        "restartCount": 1 if state == "CrashLoopBackOff" else 0,
        "started": state == "Running",
    }
    if state != "Pending":
        uid = meta(pod).get("uid")
        out["containerID"] = f"containerd://{name_hash([uid, name], 24)}"
    started = rfc3339(started_at)
    if state == "Pending":
        out["state"] = {"waiting": {"reason": "ContainerCreating"}}
    elif state == "Running":
        out["state"] = {"running": {"startedAt": started}}
    elif state == "CrashLoopBackOff":
        out["state"] = {"waiting": {
            "reason": "CrashLoopBackOff",
            "message": f"back-off 10s restarting failed container={name} "
                       f"pod={name_of(pod)}_{namespace_of(pod)}({meta(pod).get('uid')})"}}
        out["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error",
                                           "startedAt": started, "finishedAt": started}}
    else:
        code = 0 if state == "Succeeded" else 1
        out["state"] = {"terminated": {
            "exitCode": code, "reason": "Completed" if code == 0 else "Error",
            "startedAt": started, "finishedAt": started}}
    return out


class LoadBalancers:
    """`v1` Service of `type: LoadBalancer`: an ingress IP after a short provisioning time."""

    name = "simulated-cloud-load-balancer"

    def __init__(self, backend: Backend, clock: Clock, timing: KubeTiming) -> None:
        self.backend, self.clock, self.timing = backend, clock, timing
        self._stopwatch = Stopwatch(clock)

    def watches(self) -> Sequence[tuple[str, str]]:
        return [(CORE_API, "Service")]

    def reconcile(self, obj: Obj) -> float | None:
        spec, status = spec_of(obj), status_of(obj)
        ingress = (status.get("loadBalancer") or {}).get("ingress")
        if manual_status(obj):
            return None
        if spec.get("type") != "LoadBalancer":
            if ingress:  # no longer a load balancer: the cloud releases the address
                write_status(self.backend, obj, {**status, "loadBalancer": {}})
            return None
        if ingress or fails(obj):
            return None
        remaining = self._stopwatch.remaining(obj, duration(obj, self.timing.load_balancer))
        if remaining > 0:
            return remaining
        self._stopwatch.forget(obj)
        seed = f"{namespace_of(obj)}/{name_of(obj)}"
        ip = str(spec.get("loadBalancerIP") or f"203.0.113.{1 + stable_number(seed, 254)}")
        write_status(self.backend, obj, {**status, "loadBalancer": {
            "ingress": [{"ip": ip, "ipMode": "VIP"}]}})
        return None


class VolumeBinder:
    """`v1` PersistentVolumeClaim: Pending, then Bound to a simulated volume."""

    name = "simulated-volume-binder"

    def __init__(self, backend: Backend, clock: Clock, timing: KubeTiming) -> None:
        self.backend, self.clock, self.timing = backend, clock, timing
        self._stopwatch = Stopwatch(clock)

    def watches(self) -> Sequence[tuple[str, str]]:
        return [(CORE_API, "PersistentVolumeClaim")]

    def reconcile(self, obj: Obj) -> float | None:
        spec, status = spec_of(obj), status_of(obj)
        if manual_status(obj) or status.get("phase") in ("Bound", "Lost"):
            return None
        remaining = 0.0 if fails(obj) else self._stopwatch.remaining(
            obj, duration(obj, self.timing.volume_binding))
        if fails(obj) or remaining > 0:
            write_status(self.backend, obj, {**status, "phase": "Pending"})
            return remaining if remaining > 0 else None
        self._stopwatch.forget(obj)
        requested = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
        bound: dict[str, Any] = {**status, "phase": "Bound",
                                 "accessModes": list(spec.get("accessModes") or [])}
        if requested is not None:
            bound["capacity"] = {"storage": requested}
        write_status(self.backend, obj, bound)
        return None
