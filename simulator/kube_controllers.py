"""The simulated kube-controller-manager, kubelet and cloud: every built-in controller the
simulated cluster runs, so built-in workloads report status as on a real cluster."""

from __future__ import annotations

from reconciler.backends.base import Backend
from reconciler.runtime.clock import Clock
from reconciler.runtime.controller import Controller
from simulator.batch import CronJobSchedules, JobRuns
from simulator.infrastructure import LoadBalancers, PodLifecycle, VolumeBinder
from simulator.kube_common import KubeTiming
from simulator.workloads import (
    DaemonSetRollouts,
    DeploymentRollouts,
    ReplicaSetRollouts,
    StatefulSetRollouts,
)


def kube_controllers(backend: Backend, clock: Clock,
                     timing: KubeTiming | None = None) -> tuple[Controller, ...]:
    timing = timing or KubeTiming()
    return (
        DeploymentRollouts(backend, clock, timing),
        StatefulSetRollouts(backend, clock, timing),
        DaemonSetRollouts(backend, clock, timing),
        ReplicaSetRollouts(backend, clock, timing),
        JobRuns(backend, clock, timing),
        CronJobSchedules(backend, clock),
        PodLifecycle(backend, clock, timing),
        LoadBalancers(backend, clock, timing),
        VolumeBinder(backend, clock, timing),
    )
