"""Health assessment with Argo CD's rules, one row per rule."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.apply.health import Health, HealthStatus, assess, worst


def _o(api: str, kind: str, spec: dict[str, Any] | None = None,
       status: dict[str, Any] | None = None, generation: int = 1) -> dict[str, Any]:
    return {"apiVersion": api, "kind": kind,
            "metadata": {"name": "x", "namespace": "d", "generation": generation},
            "spec": spec or {}, "status": status or {}}


def _ready(value: str) -> dict[str, Any]:
    return {"conditions": [{"type": "Ready", "status": value, "message": "m"}]}


DEPLOY_OK = {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}
CASES = [
    ("missing", None, Health.MISSING),
    ("deployment healthy", _o("apps/v1", "Deployment", {"replicas": 2}, DEPLOY_OK),
     Health.HEALTHY),
    ("deployment paused", _o("apps/v1", "Deployment", {"paused": True}), Health.SUSPENDED),
    ("deployment generation not observed", _o("apps/v1", "Deployment", {}, DEPLOY_OK, 2),
     Health.PROGRESSING),
    ("deployment updating", _o("apps/v1", "Deployment", {"replicas": 3}, DEPLOY_OK),
     Health.PROGRESSING),
    ("deployment deadline", _o("apps/v1", "Deployment", {"replicas": 2}, {
        **DEPLOY_OK, "conditions": [{"type": "Progressing", "status": "False",
                                     "reason": "ProgressDeadlineExceeded"}]}), Health.DEGRADED),
    ("statefulset rolling", _o("apps/v1", "StatefulSet", {"replicas": 1}, {
        "observedGeneration": 1, "readyReplicas": 1, "updateRevision": "b",
        "currentRevision": "a"}), Health.PROGRESSING),
    ("statefulset healthy", _o("apps/v1", "StatefulSet", {"replicas": 1}, {
        "observedGeneration": 1, "readyReplicas": 1, "updateRevision": "a",
        "currentRevision": "a"}), Health.HEALTHY),
    ("statefulset not ready", _o("apps/v1", "StatefulSet", {"replicas": 2}, {
        "observedGeneration": 1, "readyReplicas": 1}), Health.PROGRESSING),
    ("daemonset healthy", _o("apps/v1", "DaemonSet", {}, {
        "observedGeneration": 1, "desiredNumberScheduled": 2, "updatedNumberScheduled": 2,
        "numberAvailable": 2}), Health.HEALTHY),
    ("daemonset rolling", _o("apps/v1", "DaemonSet", {}, {
        "observedGeneration": 1, "desiredNumberScheduled": 2, "updatedNumberScheduled": 1}),
     Health.PROGRESSING),
    ("replicaset failure", _o("apps/v1", "ReplicaSet", {"replicas": 1}, {
        "observedGeneration": 1, "conditions": [{"type": "ReplicaFailure", "status": "True"}]}),
     Health.DEGRADED),
    ("replicaset healthy", _o("apps/v1", "ReplicaSet", {"replicas": 1}, {
        "observedGeneration": 1, "availableReplicas": 1}), Health.HEALTHY),
    ("job complete", _o("batch/v1", "Job", {}, {"conditions": [
        {"type": "Complete", "status": "True"}]}), Health.HEALTHY),
    ("job failed", _o("batch/v1", "Job", {}, {"conditions": [
        {"type": "Failed", "status": "True", "message": "BackoffLimitExceeded"}]}),
     Health.DEGRADED),
    ("job suspended", _o("batch/v1", "Job", {"suspend": True}), Health.SUSPENDED),
    ("job running", _o("batch/v1", "Job"), Health.PROGRESSING),
    ("cronjob suspended", _o("batch/v1", "CronJob", {"suspend": True}), Health.SUSPENDED),
    ("cronjob", _o("batch/v1", "CronJob"), Health.HEALTHY),
    ("pod pending", _o("v1", "Pod", {}, {"phase": "Pending"}), Health.PROGRESSING),
    ("pod crashloop", _o("v1", "Pod", {}, {"phase": "Running", "containerStatuses": [
        {"state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}}}]}),
     Health.DEGRADED),
    ("pod ready", _o("v1", "Pod", {}, {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True"}]}), Health.HEALTHY),
    ("pod succeeded", _o("v1", "Pod", {"restartPolicy": "Never"}, {"phase": "Succeeded"}),
     Health.HEALTHY),
    ("pod failed", _o("v1", "Pod", {"restartPolicy": "Never"}, {"phase": "Failed"}),
     Health.DEGRADED),
    ("service clusterip", _o("v1", "Service", {"type": "ClusterIP"}), Health.HEALTHY),
    ("service lb pending", _o("v1", "Service", {"type": "LoadBalancer"}), Health.PROGRESSING),
    ("service lb ready", _o("v1", "Service", {"type": "LoadBalancer"}, {
        "loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}), Health.HEALTHY),
    ("ingress pending", _o("networking.k8s.io/v1", "Ingress"), Health.PROGRESSING),
    ("pvc bound", _o("v1", "PersistentVolumeClaim", {}, {"phase": "Bound"}), Health.HEALTHY),
    ("pvc pending", _o("v1", "PersistentVolumeClaim", {}, {"phase": "Pending"}),
     Health.PROGRESSING),
    ("pvc lost", _o("v1", "PersistentVolumeClaim", {}, {"phase": "Lost"}), Health.DEGRADED),
    ("pvc unknown", _o("v1", "PersistentVolumeClaim"), Health.UNKNOWN),
    ("knative ready", _o("serving.knative.dev/v1", "Service", {}, _ready("True")),
     Health.HEALTHY),
    ("knative failed", _o("serving.knative.dev/v1", "Service", {}, _ready("False")),
     Health.DEGRADED),
    ("knative no status", _o("serving.knative.dev/v1", "Service"), Health.PROGRESSING),
    ("custom Ready unknown", _o("example.com/v1", "Widget", {}, _ready("Unknown")),
     Health.PROGRESSING),
    ("custom without status", _o("example.com/v1", "Widget"), Health.HEALTHY),
    ("configmap", _o("v1", "ConfigMap"), Health.HEALTHY),
]


@pytest.mark.parametrize(("obj", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_assess(obj: dict[str, Any] | None, expected: Health) -> None:
    assert assess(obj).status is expected


def test_worst_of_a_set() -> None:
    statuses = [HealthStatus(Health.HEALTHY), HealthStatus(Health.PROGRESSING, "p"),
                HealthStatus(Health.DEGRADED, "d")]
    assert worst(statuses).message == "d"
    assert worst([]).status is Health.HEALTHY
