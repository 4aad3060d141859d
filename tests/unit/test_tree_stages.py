"""An owner's path stage by stage (report.stages) and as the tree draws it: supply-chain order,
template, inputs, outputs, and the newest failed TaskRun's logs for a stage that is not healthy."""

from __future__ import annotations

import json
from typing import Any

from reconciler.report import LOGS_ANNOTATION, failed_run_logs, log_lines, render_table, stages
from reconciler.tree import build, render, to_json


def obj(api: str, kind: str, name: str, uid: str, owner: str | None = None,
        **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "dev", "uid": uid,
                            "creationTimestamp": extra.pop("created", "2026-01-01T00:00:00Z")}
    if owner:
        meta["ownerReferences"] = [{"uid": owner, "controller": True}]
    if "annotations" in extra:
        meta["annotations"] = extra.pop("annotations")
    return {"apiVersion": api, "kind": kind, "metadata": meta, **extra}


def cond(type_: str, status: str, reason: str = "", message: str = "") -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": message}


def resource(name: str, template: str, kind: str, api: str, stamped: str, ready: str,
             inputs: tuple[str, ...] = (), outputs: dict[str, str] | None = None,
             message: str = "") -> dict[str, Any]:
    return {"name": name,
            "templateRef": {"kind": template.split("/")[0], "name": template.split("/")[1]},
            "stampedRef": {"apiVersion": api, "kind": kind, "name": stamped, "namespace": "dev"},
            "inputs": [{"name": i} for i in inputs],
            "outputs": [{"name": k, "preview": v + "\n"} for k, v in (outputs or {}).items()],
            "conditions": [cond("Ready", ready, "", message)]}


FAILED = 'step "test" in task "test" exited with code 2'
WORKLOAD = obj("carto.run/v1alpha1", "Workload", "app", "w1", status={
    "supplyChainRef": {"kind": "ClusterSupplyChain", "name": "tested"},
    "conditions": [cond("Ready", "False", "HealthyConditionRule", FAILED)],
    "resources": [
        resource("source-provider", "ClusterSourceTemplate/source", "GitRepository",
                 "source.toolkit.fluxcd.io/v1", "app", "True",
                 outputs={"revision": "main@sha1:abc", "url": "http://artifacts/app.tar.gz"}),
        resource("source-tester", "ClusterSourceTemplate/testing", "Runnable",
                 "carto.run/v1alpha1", "app", "False", inputs=("source-provider",),
                 outputs={"revision": "main@sha1:old"}, message=FAILED),
        resource("image-provider", "ClusterImageTemplate/kpack", "Image", "kpack.io/v1alpha2",
                 "app", "True", inputs=("source-tester",),
                 outputs={"image": "registry.example.com/app@sha256:" + "0" * 64}),
    ]})


def task_run(name: str, uid: str, owner: str, status: str, created: str,
             logs: dict[str, str], steps: list[tuple[str, int]]) -> dict[str, Any]:
    return obj("tekton.dev/v1", "TaskRun", name, uid, owner=owner, created=created,
               annotations={LOGS_ANNOTATION: json.dumps(logs)},
               status={"conditions": [cond("Succeeded", status, "Failed" if status == "False"
                                           else "Succeeded")],
                       "steps": [{"name": s, "terminated": {"exitCode": c}} for s, c in steps]})


OBJECTS = [
    WORKLOAD,
    # Stamped in another order than the chain's, to show the tree reorders them.
    obj("kpack.io/v1alpha2", "Image", "app", "i1", owner="w1",
        status={"conditions": [cond("Ready", "True")]}),
    obj("carto.run/v1alpha1", "Runnable", "app", "r1", owner="w1",
        status={"conditions": [cond("Ready", "False", "SucceededCondition", FAILED)]}),
    obj("source.toolkit.fluxcd.io/v1", "GitRepository", "app", "g1", owner="w1",
        status={"conditions": [cond("Ready", "True", "Succeeded")]}),
    obj("tekton.dev/v1", "PipelineRun", "app-old", "p1", owner="r1",
        created="2026-01-01T00:00:00Z",
        status={"conditions": [cond("Succeeded", "False", "Failed")]}),
    task_run("app-old-test", "t1", "p1", "False", "2026-01-01T00:00:01Z",
             {"test": "an older failure\n"}, [("test", 1)]),
    obj("tekton.dev/v1", "PipelineRun", "app-new", "p2", owner="r1",
        created="2026-01-01T00:05:00Z",
        status={"conditions": [cond("Succeeded", "False", "Failed")]}),
    task_run("app-new-test", "t2", "p2", "False", "2026-01-01T00:05:01Z",
             {"prepare": "ok\n", "test": "".join(f"line {i}\n" for i in range(30))},
             [("prepare", 0), ("test", 2)]),
]


def test_stages_in_supply_chain_order_with_inputs_and_outputs() -> None:
    found = stages(WORKLOAD, OBJECTS)
    assert [(s.name, s.template, s.stamped_title, s.status, s.inputs) for s in found] == [
        ("source-provider", "ClusterSourceTemplate/source", "GitRepository/dev/app", "True", ()),
        ("source-tester", "ClusterSourceTemplate/testing", "Runnable/dev/app", "False",
         ("source-provider",)),
        ("image-provider", "ClusterImageTemplate/kpack", "Image/dev/app", "True",
         ("source-tester",)),
    ]
    assert found[0].outputs == {"revision": "main@sha1:abc", "url": "http://artifacts/app.tar.gz"}
    assert found[0].logs is None and found[2].logs is None


def test_a_failed_stage_carries_its_newest_failed_task_runs_logs() -> None:
    logs = stages(WORKLOAD, OBJECTS)[1].logs
    assert logs is not None
    assert logs.run == "TaskRun/dev/app-new-test"
    assert [(s.step, s.exit_code) for s in logs.steps] == [("prepare", 0), ("test", 2)]
    lines = log_lines(logs)
    # Only the failed step, and only its last lines.
    assert lines[0] == "logs of TaskRun/dev/app-new-test, step test, exit code 2:"
    assert lines[1:] == [f"  line {i}" for i in range(10, 30)]


def test_no_logs_without_a_failed_run_or_an_annotation() -> None:
    assert stages(WORKLOAD)[1].logs is None  # no objects given
    succeeded = task_run("ok", "t9", "r1", "True", "2026-01-01T00:00:00Z", {"s": "x"}, [("s", 0)])
    assert failed_run_logs(OBJECTS[2], [OBJECTS[2], succeeded]) is None
    garbled = task_run("bad", "t8", "r1", "False", "2026-01-01T00:00:00Z", {}, [])
    garbled["metadata"]["annotations"][LOGS_ANNOTATION] = "{not json"
    assert failed_run_logs(OBJECTS[2], [OBJECTS[2], garbled]) is None


def test_tree_orders_an_owners_children_by_stage_and_shows_the_details() -> None:
    lines = render(build(OBJECTS)).splitlines()
    assert lines[0] == "Workload/dev/app  Ready=False (HealthyConditionRule)  supply chain: tested"
    assert [line for line in lines if line[:4] in ("├── ", "└── ")] == [
        "├── source-provider: GitRepository/dev/app  Ready=True (Succeeded)",
        "├── source-tester: Runnable/dev/app  Ready=False (SucceededCondition)",
        "└── image-provider: Image/dev/app  Ready=True",
    ]
    assert "│   │   template: ClusterSourceTemplate/testing  inputs: source-provider" in lines
    assert f"│   │   ! {FAILED}" in lines
    assert "│   │   logs of TaskRun/dev/app-new-test, step test, exit code 2:" in lines
    assert "│   │     line 29" in lines
    # Tekton runs show their Succeeded condition.
    assert "│   ├── PipelineRun/dev/app-new  Succeeded=False (Failed)" in lines
    assert "        image: registry.example.com/app@sha256:" + "0" * 64 in lines


def test_tree_json_carries_the_stage() -> None:
    root = to_json(build(OBJECTS))[0]
    assert root["blueprint"] == "supply chain: tested"
    tester = root["children"][1]
    assert tester["stage"]["name"] == "source-tester"
    assert tester["stage"]["logs"]["run"] == "TaskRun/dev/app-new-test"
    assert tester["stage"]["logs"]["steps"][1] == {
        "step": "test", "exitCode": 2, "text": "".join(f"line {i}\n" for i in range(30))}


def test_table_lists_stages_with_outputs_and_logs() -> None:
    text = render_table([WORKLOAD], "0/1 workloads Ready", OBJECTS)
    lines = text.splitlines()
    assert lines[0] == "Workload dev/app  Ready=False (HealthyConditionRule)  supply chain: tested"
    assert lines[2].split() == ["source-provider", "GitRepository/app", "True"]
    assert "      revision: main@sha1:abc" in lines
    assert "      logs of TaskRun/dev/app-new-test, step test, exit code 2:" in lines
    assert lines[-1] == "0/1 workloads Ready"


def test_table_lists_deliverables_after_workloads() -> None:
    delivered = obj("carto.run/v1alpha1", "Deliverable", "app", "d1", status={
        "deliveryRef": {"kind": "ClusterDelivery", "name": "basic"},
        "conditions": [cond("Ready", "True", "Ready")],
        "resources": [resource("deployer", "ClusterDeploymentTemplate/deploy", "Kustomization",
                               "kustomize.toolkit.fluxcd.io/v1", "app", "True")]})
    lines = render_table([WORKLOAD], "0/1 workloads Ready", [*OBJECTS, delivered]).splitlines()
    at = lines.index("Deliverable dev/app  Ready=True (Ready)  delivery: basic")
    assert at > lines.index(
        "Workload dev/app  Ready=False (HealthyConditionRule)  supply chain: tested")
    assert lines[at + 1].split() == ["deployer", "Kustomization/app", "True"]


ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x1b[31mFAKE: all tests passed\x1b[0m\x9b2J\rover"


def test_logs_and_messages_reach_the_terminal_without_control_characters() -> None:
    hostile = [dict(o) for o in OBJECTS]
    workload = json.loads(json.dumps(WORKLOAD))
    workload["status"]["conditions"][0]["message"] = "failed " + ESCAPES
    workload["status"]["resources"][1]["conditions"][0]["message"] = "stage " + ESCAPES
    workload["status"]["resources"][0]["outputs"][0]["preview"] = "rev " + ESCAPES + "\n"
    hostile[0] = workload
    hostile[-1] = task_run("app-new-test", "t2", "p2", "False", "2026-01-01T00:05:01Z",
                           {"test": "ok\r\n" + ESCAPES + "\n\tindented\n"}, [("test", 2)])
    for text in (render(build(hostile)),
                 render_table([workload], "0/1 workloads Ready", hostile)):
        assert not any(c in text for c in "\x1b\x07\x9b\r"), repr(text)
        assert "\ufffd]0;pwned\ufffd\ufffd[2J\ufffd[31mFAKE: all tests passed" in text
        assert "\ufffd2J\ufffdover" in text
        assert "  ok\n" in text  # a CRLF line end is a line end
        assert "\tindented" in text  # tab is kept
        assert "! stage \ufffd]0;pwned" in text
        assert "revision: rev \ufffd]0;pwned" in text
    assert "  ! failed \ufffd]0;pwned" in render_table([workload], "x", hostile)
    logs = stages(workload, hostile)[1].logs
    assert logs is not None
    assert all("\x1b" not in line for line in log_lines(logs))
