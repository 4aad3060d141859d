"""Diff speed: our left-scoped diff against a plain `DeepDiff(desired, live)` per object.

Builds N Deployment-sized objects and their live forms (server metadata, managedFields, defaults,
status), then times, in the same run: our `plan_object` and `DeepDiff(desired, live)`, first on
unchanged objects, then on objects with one changed field. Prints objects/s for both and the
ratio; nothing is asserted (targets: >= 100x unchanged, >= 5x changed).

    .venv/bin/python benchmarks/diff_speed.py [N]
"""

from __future__ import annotations

import copy
import sys
import time
from collections.abc import Callable
from typing import Any

from deepdiff import DeepDiff

from reconciler.diff.changeset import ChangeAction, ObjectChange, plan_object


def desired_deployment(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": f"web-{i}", "namespace": "apps",
                     "labels": {"app": f"web-{i}", "team": "payments", "tier": "backend"},
                     "annotations": {"reconciler.dev/sync-wave": "1"}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": f"web-{i}"}},
            "template": {
                "metadata": {"labels": {"app": f"web-{i}", "tier": "backend"}},
                "spec": {
                    "serviceAccountName": "web",
                    "containers": [{
                        "name": "app", "image": f"registry.example.com/web:{i}",
                        "ports": [{"name": "http", "containerPort": 8080}],
                        "env": [{"name": f"VAR_{k}", "value": str(k)} for k in range(12)],
                        "resources": {"limits": {"cpu": "1000m", "memory": "1Gi"},
                                      "requests": {"cpu": "250m", "memory": "512Mi"}},
                        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
                        "volumeMounts": [{"name": "cfg", "mountPath": "/etc/web"}],
                    }, {
                        "name": "proxy", "image": "envoy:1.30",
                        "args": ["--config", "/etc/envoy/envoy.yaml", "--log-level", "info"],
                    }],
                    "volumes": [{"name": "cfg", "configMap": {"name": f"web-{i}"}}],
                },
            },
        },
    }


def live_of(desired: dict[str, Any]) -> dict[str, Any]:
    """What an API server returns: defaults, canonical quantities, metadata, status."""
    live = copy.deepcopy(desired)
    meta = live["metadata"]
    meta.update(uid="0b7c...", resourceVersion="123456", generation=4,
                creationTimestamp="2024-05-01T10:00:00Z",
                managedFields=[{"manager": "reconciler", "operation": "Apply",
                                "fieldsV1": {"f:spec": {"f:replicas": {}, "f:template": {
                                    "f:spec": {"f:containers": {f"k:{{\"name\":\"{n}\"}}": {
                                        ".": {}, "f:image": {}} for n in ("app", "proxy")}}}}}}])
    spec = live["spec"]
    spec.update(progressDeadlineSeconds=600, revisionHistoryLimit=10,
                strategy={"type": "RollingUpdate",
                          "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
    pod = spec["template"]["spec"]
    pod.update(dnsPolicy="ClusterFirst", restartPolicy="Always", schedulerName="default-scheduler",
               securityContext={}, terminationGracePeriodSeconds=30)
    for c in pod["containers"]:
        c.update(imagePullPolicy="IfNotPresent", terminationMessagePath="/dev/termination-log",
                 terminationMessagePolicy="File")
    app = pod["containers"][0]
    app["resources"] = {"limits": {"cpu": "1", "memory": "1Gi"},
                        "requests": {"cpu": "250m", "memory": "512Mi"}}
    app["ports"][0]["protocol"] = "TCP"
    app["readinessProbe"].update(failureThreshold=3, periodSeconds=10, successThreshold=1,
                                 timeoutSeconds=1)
    app["readinessProbe"]["httpGet"]["scheme"] = "HTTP"
    live["status"] = {"observedGeneration": 4, "replicas": 3, "updatedReplicas": 3,
                      "readyReplicas": 3, "availableReplicas": 3,
                      "conditions": [{"type": "Available", "status": "True",
                                      "lastUpdateTime": "2024-05-01T10:01:00Z",
                                      "reason": "MinimumReplicasAvailable"}]}
    return live


Pairs = list[tuple[dict[str, Any], dict[str, Any]]]


def rate(n: int, run: Callable[[Pairs], object], pairs: Pairs) -> float:
    """Objects per second when `run` handles `pairs` (of which there are `n`)."""
    start = time.perf_counter()
    run(pairs)
    return n / (time.perf_counter() - start)


def ours_all(pairs: Pairs) -> list[ObjectChange]:
    return [plan_object(d, v) for d, v in pairs]


def deepdiff_all(pairs: Pairs) -> list[DeepDiff]:
    return [DeepDiff(d, v) for d, v in pairs]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    desired = [desired_deployment(i) for i in range(n)]
    live = [live_of(d) for d in desired]
    changed = copy.deepcopy(desired)
    for d in changed:
        d["spec"]["template"]["spec"]["containers"][0]["image"] += "-next"
    pairs = list(zip(desired, live, strict=True))
    changed_pairs = list(zip(changed, live, strict=True))
    assert all(plan_object(d, v).action is ChangeAction.UNCHANGED for d, v in pairs)
    assert all(plan_object(d, v).action is ChangeAction.CONFIGURED for d, v in changed_pairs)
    sample = plan_object(changed[0], live[0])
    # DeepDiff is slow; time it on a slice and report per-object rates.
    m = max(n // 10, 50)

    print(f"{n} Deployment-sized objects (DeepDiff timed on {m})")
    for label, todo in (("unchanged", pairs), ("changed (1 field)", changed_pairs)):
        ours = rate(n, ours_all, todo)
        plain = rate(m, deepdiff_all, todo[:m])
        print(f"  {label:18} ours {ours:12,.0f} objects/s   DeepDiff {plain:10,.0f} objects/s"
              f"   ratio {ours / plain:8.1f}x")
    print("\nhuman-readable report for one changed object:")
    print(f"► {sample.title} {sample.action}")
    print(sample.unified_diff())


if __name__ == "__main__":
    main()
