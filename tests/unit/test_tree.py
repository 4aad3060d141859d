"""The ownership tree: controller ownerReferences and Kustomization inventories, with health."""

from __future__ import annotations

from typing import Any

from reconciler.tree import build, render, to_json


def obj(api: str, kind: str, name: str, uid: str, owner: str | None = None,
        ns: str = "default", **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns, "uid": uid}
    if owner:
        meta["ownerReferences"] = [{"uid": owner, "controller": True}]
    return {"apiVersion": api, "kind": kind, "metadata": meta, **extra}


def ready(status: str, reason: str) -> dict[str, Any]:
    return {"status": {"conditions": [{"type": "Ready", "status": status, "reason": reason}]}}


OBJECTS = [
    obj("carto.run/v1alpha1", "Workload", "app", "w1", **ready("True", "Ready")),
    obj("v1", "ConfigMap", "app-config", "c1", owner="w1"),
    obj("carto.run/v1alpha1", "Runnable", "app-tests", "r1", owner="w1",
        **ready("Unknown", "Running")),
    obj("tekton.dev/v1", "PipelineRun", "app-tests-abcde", "p1", owner="r1"),
    obj("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "apps", "k1",
        status={"inventory": {"entries": [{"id": "default_web_apps_Deployment", "v": "v1"}]},
                "conditions": [{"type": "Ready", "status": "False",
                                "reason": "HealthCheckFailed"}]}),
    obj("apps/v1", "Deployment", "web", "d1",
        spec={"replicas": 1}, status={"observedGeneration": 1, "replicas": 1,
                                      "updatedReplicas": 1, "availableReplicas": 1}),
    obj("v1", "ConfigMap", "unowned", "u1"),
]


def test_tree_follows_owner_references_and_inventories() -> None:
    assert to_json(build(OBJECTS)) == [
        {"object": "Workload/default/app", "state": "Ready=True (Ready)", "children": [
            {"object": "ConfigMap/default/app-config", "state": "Healthy", "children": []},
            {"object": "Runnable/default/app-tests", "state": "Ready=Unknown (Running)",
             "children": [{"object": "PipelineRun/default/app-tests-abcde",
                           "state": "Healthy", "children": []}]},
        ]},
        {"object": "Kustomization/default/apps", "state": "Ready=False (HealthCheckFailed)",
         "children": [{"object": "Deployment/default/web", "state": "Healthy",
                       "children": []}]},
    ]


def test_render_draws_branches() -> None:
    text = render(build(OBJECTS))
    assert text.splitlines() == [
        "Workload/default/app  Ready=True (Ready)",
        "├── ConfigMap/default/app-config  Healthy",
        "└── Runnable/default/app-tests  Ready=Unknown (Running)",
        "    └── PipelineRun/default/app-tests-abcde  Healthy",
        "Kustomization/default/apps  Ready=False (HealthCheckFailed)",
        "└── Deployment/default/web  Healthy",
    ]
    assert "unowned" not in text
