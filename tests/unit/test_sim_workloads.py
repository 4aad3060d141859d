"""The simulated built-in controllers (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job,
CronJob, Pod, Service, PersistentVolumeClaim), judged the way the reconciler judges them: run the
simulated cluster for some virtual seconds, then assess the object with Argo CD's health rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from reconciler.apply.health import Health, assess
from reconciler.engine.runner import RunReport, run_until_settled
from reconciler.model.objects import Obj
from simulator.environment import SimulatedEnvironment
from simulator.kube_common import (
    DURATION_ANNOTATION,
    MANUAL_STATUS_ANNOTATION,
    OUTCOME_ANNOTATION,
)

NS = "d"
FAILED = {OUTCOME_ANNOTATION: "Failed"}
TEMPLATE: Obj = {"metadata": {"labels": {"app": "x"}},
                 "spec": {"containers": [{"name": "app", "image": "app:1"}]}}


def _obj(api: str, kind: str, spec: dict[str, Any] | None = None,
         annotations: dict[str, str] | None = None) -> Obj:
    return {"apiVersion": api, "kind": kind,
            "metadata": {"name": "x", "namespace": NS, "annotations": annotations or {}},
            "spec": spec if spec is not None else {}}


def _deploy(annotations: dict[str, str] | None = None, **spec: Any) -> Obj:
    return _obj("apps/v1", "Deployment", {"replicas": 2, "template": TEMPLATE, **spec},
                annotations)


def _sts(annotations: dict[str, str] | None = None, **spec: Any) -> Obj:
    return _obj("apps/v1", "StatefulSet", {"replicas": 2, "template": TEMPLATE, **spec},
                annotations)


def _ds(annotations: dict[str, str] | None = None) -> Obj:
    return _obj("apps/v1", "DaemonSet", {"template": TEMPLATE}, annotations)


def _rs(annotations: dict[str, str] | None = None) -> Obj:
    return _obj("apps/v1", "ReplicaSet", {"replicas": 2, "template": TEMPLATE}, annotations)


def _job(annotations: dict[str, str] | None = None, **spec: Any) -> Obj:
    return _obj("batch/v1", "Job", {"template": TEMPLATE, **spec}, annotations)


def _cron(schedule: str, **spec: Any) -> Obj:
    return _obj("batch/v1", "CronJob", {"schedule": schedule, "jobTemplate": {}, **spec})


def _pod(annotations: dict[str, str] | None = None, **spec: Any) -> Obj:
    return _obj("v1", "Pod", {**TEMPLATE["spec"], **spec}, annotations)


def _svc(kind: str = "LoadBalancer", annotations: dict[str, str] | None = None,
         **spec: Any) -> Obj:
    return _obj("v1", "Service", {"type": kind, "ports": [{"port": 80}], **spec}, annotations)


def _pvc(annotations: dict[str, str] | None = None) -> Obj:
    return _obj("v1", "PersistentVolumeClaim", {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        annotations)


class Sim:
    """A simulated cluster with one namespace and the simulator's controllers."""

    def __init__(self) -> None:
        self.env = SimulatedEnvironment()
        self.cluster = self.env.cluster
        self.cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})

    def run(self, seconds: float) -> RunReport:
        return run_until_settled(self.env, self.env.controllers, lambda: False,
                                 budget_seconds=seconds)

    def live(self, obj: Obj) -> Obj:
        found = self.cluster.get(obj["apiVersion"], obj["kind"], NS, obj["metadata"]["name"])
        assert found is not None
        return found


_STEP = re.compile(r"^([^\[]+)(?:\[([^\]]+)\])?$")


def _at(obj: Any, path: str) -> Any:
    """`status.conditions[Available].reason`: a `[Type]` picks a condition, `[0]` an item."""
    for part in path.split("."):
        match = _STEP.match(part)
        assert match is not None, part
        obj = obj.get(match.group(1)) if isinstance(obj, dict) else None
        pick = match.group(2)
        if pick is not None and isinstance(obj, list):
            if pick.isdigit():
                obj = obj[int(pick)] if int(pick) < len(obj) else None
            else:
                obj = next((c for c in obj if c.get("type") == pick), None)
    return obj


@dataclass(frozen=True)
class Prefix:
    """A string starting with `text` (a value the simulator derives from a hash)."""

    text: str

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and other.startswith(self.text)

    def __hash__(self) -> int:
        return hash(self.text)


@dataclass(frozen=True)
class Case:
    id: str
    obj: Obj
    seconds: float
    health: Health
    expect: dict[str, Any] = field(default_factory=dict)


T0 = "2026-01-01T00:00:00Z"
CASES = [
    # Deployment
    Case("deployment rolling out", _deploy(), 1, Health.PROGRESSING, {
        "status.observedGeneration": 1, "status.updatedReplicas": 2,
        "status.availableReplicas": None, "status.unavailableReplicas": 2,
        "status.conditions[Available].status": "False",
        "status.conditions[Available].reason": "MinimumReplicasUnavailable",
        "status.conditions[Progressing].reason": "ReplicaSetUpdated",
        "status.conditions[Progressing].message": Prefix('ReplicaSet "x-')}),
    Case("deployment rolled out", _deploy(), 10, Health.HEALTHY, {
        "status.replicas": 2, "status.updatedReplicas": 2, "status.readyReplicas": 2,
        "status.availableReplicas": 2, "status.unavailableReplicas": None,
        "status.conditions[Available].reason": "MinimumReplicasAvailable",
        "status.conditions[Available].message": "Deployment has minimum availability.",
        "status.conditions[Progressing].status": "True",
        "status.conditions[Progressing].reason": "NewReplicaSetAvailable",
        "status.conditions[Progressing].lastTransitionTime": T0,
        "status.conditions[Progressing].lastUpdateTime": "2026-01-01T00:00:05Z"}),
    Case("deployment within its duration annotation",
         _deploy({DURATION_ANNOTATION: "60"}), 30, Health.PROGRESSING),
    Case("deployment after its duration annotation",
         _deploy({DURATION_ANNOTATION: "60"}), 61, Health.HEALTHY),
    Case("deployment failed after its duration",
         _deploy({**FAILED, DURATION_ANNOTATION: "20"}), 30, Health.DEGRADED, {
             "status.conditions[Progressing].status": "False",
             "status.conditions[Progressing].reason": "ProgressDeadlineExceeded",
             "status.conditions[Progressing].message": Prefix('ReplicaSet "x-'),
             "status.conditions[Available].reason": "MinimumReplicasUnavailable"}),
    Case("deployment failing before its progress deadline",
         _deploy(FAILED, progressDeadlineSeconds=120), 100, Health.PROGRESSING),
    Case("deployment failed at its progress deadline",
         _deploy(FAILED, progressDeadlineSeconds=120), 130, Health.DEGRADED),
    Case("deployment failing, default deadline of 600s", _deploy(FAILED), 590,
         Health.PROGRESSING),
    Case("deployment paused", _deploy(paused=True), 30, Health.SUSPENDED, {
        "status.observedGeneration": 1,
        "status.conditions[Progressing].status": "Unknown",
        "status.conditions[Progressing].reason": "DeploymentPaused"}),
    Case("deployment scaled to zero", _deploy(replicas=0), 10, Health.HEALTHY, {
        "status.replicas": None, "status.conditions[Available].status": "True"}),
    Case("deployment recreate", _deploy(strategy={"type": "Recreate"}), 10, Health.HEALTHY),
    Case("deployment with manual status", _deploy({MANUAL_STATUS_ANNOTATION: "true"}), 30,
         Health.PROGRESSING, {"status": None}),
    # StatefulSet
    Case("statefulset rolling out", _sts(), 1, Health.PROGRESSING, {
        "status.replicas": 2, "status.readyReplicas": None,
        "status.currentRevision": Prefix("x-"), "status.updateRevision": Prefix("x-")}),
    Case("statefulset rolled out", _sts(), 10, Health.HEALTHY, {
        "status.readyReplicas": 2, "status.currentReplicas": 2, "status.updatedReplicas": 2,
        "status.availableReplicas": 2}),
    Case("statefulset whose pods never get ready", _sts(FAILED), 600, Health.PROGRESSING),
    # DaemonSet
    Case("daemonset rolling out", _ds(), 1, Health.PROGRESSING, {
        "status.desiredNumberScheduled": 3, "status.updatedNumberScheduled": 3,
        "status.numberReady": 0, "status.numberUnavailable": 3}),
    Case("daemonset on every node", _ds(), 10, Health.HEALTHY, {
        "status.desiredNumberScheduled": 3, "status.currentNumberScheduled": 3,
        "status.numberAvailable": 3, "status.numberReady": 3, "status.numberMisscheduled": 0}),
    Case("daemonset whose pods never get ready", _ds(FAILED), 600, Health.PROGRESSING),
    # ReplicaSet
    Case("replicaset rolling out", _rs(), 1, Health.PROGRESSING, {"status.replicas": 2}),
    Case("replicaset ready", _rs(), 10, Health.HEALTHY, {
        "status.availableReplicas": 2, "status.readyReplicas": 2,
        "status.fullyLabeledReplicas": 2}),
    Case("replicaset failing to create pods", _rs(FAILED), 10, Health.DEGRADED, {
        "status.replicas": 0, "status.conditions[ReplicaFailure].reason": "FailedCreate"}),
    # Job
    Case("job running", _job(), 5, Health.PROGRESSING, {
        "status.active": 1, "status.startTime": T0, "status.completionTime": None}),
    Case("job complete", _job(), 11, Health.HEALTHY, {
        "status.succeeded": 1, "status.active": None,
        "status.completionTime": "2026-01-01T00:00:10Z",
        "status.conditions[SuccessCriteriaMet].status": "True",
        "status.conditions[Complete].status": "True",
        "status.conditions[Complete].reason": "CompletionsReached"}),
    Case("job with completions and parallelism", _job(completions=3, parallelism=2), 11,
         Health.HEALTHY, {"status.succeeded": 3}),
    Case("job taking its duration annotation", _job({DURATION_ANNOTATION: "100"}), 50,
         Health.PROGRESSING),
    Case("job failed", _job(FAILED), 11, Health.DEGRADED, {
        "status.failed": 7, "status.completionTime": None,
        "status.conditions[FailureTarget].reason": "BackoffLimitExceeded",
        "status.conditions[Failed].reason": "BackoffLimitExceeded",
        "status.conditions[Failed].message": "Job has reached the specified backoff limit"}),
    Case("job failed with a backoff limit", _job(FAILED, backoffLimit=2), 11, Health.DEGRADED,
         {"status.failed": 3}),
    Case("job past its active deadline", _job(activeDeadlineSeconds=4), 5, Health.DEGRADED, {
        "status.conditions[Failed].reason": "DeadlineExceeded"}),
    Case("job suspended", _job(suspend=True), 30, Health.SUSPENDED, {
        "status.startTime": None, "status.conditions[Suspended].status": "True",
        "status.conditions[Suspended].reason": "JobSuspended"}),
    # CronJob
    Case("cronjob every five minutes", _cron("*/5 * * * *"), 601, Health.HEALTHY, {
        "status.lastScheduleTime": "2026-01-01T00:10:00Z"}),
    Case("cronjob hourly", _cron("@hourly"), 3700, Health.HEALTHY, {
        "status.lastScheduleTime": "2026-01-01T01:00:00Z"}),
    Case("cronjob not yet due", _cron("0 3 * * *"), 600, Health.HEALTHY,
         {"status.lastScheduleTime": None}),
    Case("cronjob suspended", _cron("* * * * *", suspend=True), 600, Health.SUSPENDED,
         {"status": None}),
    # Pod
    Case("pod starting", _pod(), 1, Health.PROGRESSING, {
        "status.phase": "Pending", "status.conditions[PodScheduled].status": "True",
        "status.conditions[Ready].status": "False",
        "status.containerStatuses[0].state.waiting.reason": "ContainerCreating"}),
    Case("pod running", _pod(), 3, Health.HEALTHY, {
        "status.phase": "Running", "status.conditions[Ready].status": "True",
        "status.conditions[ContainersReady].status": "True",
        "status.containerStatuses[0].ready": True, "status.podIP": Prefix("10.244."),
        "status.containerStatuses[0].state.running.startedAt": "2026-01-01T00:00:02Z"}),
    Case("pod crash looping", _pod(FAILED), 10, Health.DEGRADED, {
        "status.phase": "Running", "status.conditions[Ready].reason": "ContainersNotReady",
        "status.containerStatuses[0].state.waiting.reason": "CrashLoopBackOff",
        "status.containerStatuses[0].lastState.terminated.exitCode": 1}),
    Case("pod running to completion", _pod(restartPolicy="Never"), 5, Health.PROGRESSING,
         {"status.phase": "Running"}),
    Case("pod completed", _pod(restartPolicy="Never"), 20, Health.HEALTHY, {
        "status.phase": "Succeeded",
        "status.containerStatuses[0].state.terminated.reason": "Completed"}),
    Case("pod failed", _pod(FAILED, restartPolicy="Never"), 20, Health.DEGRADED, {
        "status.phase": "Failed",
        "status.containerStatuses[0].state.terminated.exitCode": 1}),
    Case("pod restarting on failure", _pod(FAILED, restartPolicy="OnFailure"), 20,
         Health.PROGRESSING, {
             "status.containerStatuses[0].state.waiting.reason": "CrashLoopBackOff"}),
    # Service
    Case("load balancer provisioning", _svc(), 1, Health.PROGRESSING, {"status": None}),
    Case("load balancer assigned", _svc(), 5, Health.HEALTHY, {
        "status.loadBalancer.ingress[0].ip": Prefix("203.0.113.")}),
    Case("load balancer with a requested IP", _svc(loadBalancerIP="198.51.100.7"), 5,
         Health.HEALTHY, {"status.loadBalancer.ingress[0].ip": "198.51.100.7"}),
    Case("load balancer never assigned", _svc(annotations=FAILED), 600, Health.PROGRESSING),
    Case("cluster IP service", _svc("ClusterIP"), 5, Health.HEALTHY, {"status": None}),
    # PersistentVolumeClaim
    Case("volume claim pending", _pvc(), 0.5, Health.PROGRESSING, {"status.phase": "Pending"}),
    Case("volume claim bound", _pvc(), 2, Health.HEALTHY, {
        "status.phase": "Bound", "status.capacity.storage": "1Gi",
        "status.accessModes": ["ReadWriteOnce"]}),
    Case("volume claim never bound", _pvc(FAILED), 600, Health.PROGRESSING,
         {"status.phase": "Pending"}),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_simulated_status_meets_the_health_rules(case: Case) -> None:
    sim = Sim()
    sim.cluster.apply(case.obj)
    sim.run(case.seconds)
    live = sim.live(case.obj)
    assert assess(live).status == case.health, (assess(live), live.get("status"))
    for path, value in case.expect.items():
        assert _at(live, path) == value, (path, live.get("status"))


def _patch(sim: Sim, obj: Obj, spec: dict[str, Any]) -> None:
    sim.cluster.apply({**obj, "spec": {**obj["spec"], **spec}})


def test_deployment_update_surges_then_replaces_the_old_pods() -> None:
    sim = Sim()
    obj = _deploy()
    sim.cluster.apply(obj)
    sim.run(10)
    first = _at(sim.live(obj), "status.conditions[Progressing].message")
    _patch(sim, obj, {"template": {**TEMPLATE, "spec": {"containers": [
        {"name": "app", "image": "app:2"}]}}})
    sim.run(1)
    rolling = sim.live(obj)
    assert assess(rolling).status == Health.PROGRESSING
    # One surged new Pod beside the two old ones, which keep the Deployment available.
    assert [_at(rolling, f"status.{k}") for k in (
        "observedGeneration", "replicas", "updatedReplicas", "availableReplicas")] == [2, 3, 1, 2]
    assert _at(rolling, "status.conditions[Available].status") == "True"
    sim.run(10)
    done = sim.live(obj)
    assert assess(done).status == Health.HEALTHY
    assert _at(done, "status.replicas") == 2
    second = _at(done, "status.conditions[Progressing].message")
    assert second != first and "has successfully progressed" in second


@pytest.mark.parametrize(("strategy", "current_replicas", "updated", "same_revision"), [
    ({}, 2, 2, True),
    ({"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}, 1, 1, False),
    ({"type": "OnDelete"}, 2, None, False),
], ids=["rolling", "partition", "on-delete"])
def test_statefulset_update_strategies(strategy: dict[str, Any], current_replicas: int,
                                       updated: int | None, same_revision: bool) -> None:
    sim = Sim()
    obj = _sts(updateStrategy=strategy)
    sim.cluster.apply(obj)
    sim.run(10)
    before = _at(sim.live(obj), "status.currentRevision")
    _patch(sim, {**obj, "spec": {**obj["spec"], "updateStrategy": strategy}}, {
        "template": {**TEMPLATE, "metadata": {"labels": {"app": "y"}}}})
    sim.run(10)
    live = sim.live(obj)
    assert assess(live).status == Health.HEALTHY
    status = live["status"]
    assert (status.get("currentReplicas"), status.get("updatedReplicas")) == (
        current_replicas, updated)
    assert (status["currentRevision"] == status["updateRevision"]) is same_revision
    assert status["updateRevision"] != before


def test_resumed_job_starts_anew_and_completes() -> None:
    sim = Sim()
    obj = _job(suspend=True)
    sim.cluster.apply(obj)
    sim.run(30)
    sim.env.advance(30)  # nothing wakes a suspended Job: time passes anyway
    _patch(sim, obj, {"suspend": False})
    sim.run(1)
    live = sim.live(obj)
    assert _at(live, "status.conditions[Suspended].reason") == "JobResumed"
    assert _at(live, "status.startTime") == "2026-01-01T00:00:30Z"
    sim.run(20)
    assert assess(sim.live(obj)).status == Health.HEALTHY
    assert _at(sim.live(obj), "status.completionTime") == "2026-01-01T00:00:40Z"


SETTLING = [_deploy(), _sts(), _ds(), _rs(), _job(), _pod(), _svc(), _pvc(),
            _deploy(FAILED, progressDeadlineSeconds=60), _job(FAILED), _pod(FAILED)]


def test_settled_objects_reach_a_fixed_point() -> None:
    """Every controller runs every round: once settled, none may write or ask to wake up."""
    sim = Sim()
    for i, obj in enumerate(SETTLING):
        sim.cluster.apply({**obj, "metadata": {**obj["metadata"], "name": f"x{i}"}})
    report = sim.run(3600)
    assert report.reason == "nothing left to wait for"
    revision = sim.env.revision()
    assert sim.run(3600).reason == "nothing left to wait for"
    assert sim.env.revision() == revision


def test_settled_status_survives_a_saved_state(tmp_path: Path) -> None:
    """Finished rollouts are recognised from their status, not from the controller's memory."""
    sim = Sim()
    objs = [{**o, "metadata": {**o["metadata"], "name": f"x{i}"}}
            for i, o in enumerate(SETTLING)]
    for obj in objs:
        sim.cluster.apply(obj)
    sim.run(3600)
    sim.env.save_state(tmp_path / "state.json")
    again = Sim()
    again.env.load_state(tmp_path / "state.json")
    revision = again.env.revision()
    again.run(3600)
    assert again.env.revision() == revision
    assert [assess(again.live(o)).status for o in objs] == [assess(sim.live(o)).status
                                                             for o in objs]


def test_manual_status_is_left_alone() -> None:
    sim = Sim()
    obj = _deploy({MANUAL_STATUS_ANNOTATION: "true"})
    sim.cluster.apply(obj)
    hand_set = {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2,
                "availableReplicas": 2}
    sim.cluster.update_status({**sim.live(obj), "status": hand_set})
    sim.run(60)
    assert sim.live(obj)["status"] == hand_set


def test_unparseable_cron_schedule_warns_once() -> None:
    sim = Sim()
    sim.cluster.apply(_cron("61 * * * *"))
    sim.cluster.apply(_deploy())  # keeps rounds going while the CronJob is offered each one
    sim.run(60)
    events = [e for e in sim.cluster.events() if e["reason"] == "UnparseableSchedule"]
    assert len(events) == 1 and events[0]["count"] == 1
    assert "minute '61': out of range 0-59" in events[0]["message"]
