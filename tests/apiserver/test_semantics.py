"""API semantics through the real kubectl (and raw requests where kubectl has no verb for it):
create and managedFields, generation, watch events, finalizers, deletion propagation,
deletecollection, preconditions, CRD schema updates, Leases and events.k8s.io Events."""

from __future__ import annotations

import json
from typing import Any

import yaml

from tests.apiserver.conftest import Served, needs_kubectl, wait_for
from tests.conftest import ROOT

pytestmark = needs_kubectl

JSON = {"Content-Type": "application/json"}


def cm(name: str, labels: dict[str, str] | None = None, finalizers: list[str] | None = None,
       owners: list[dict[str, Any]] | None = None, **data: str) -> str:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    if finalizers:
        meta["finalizers"] = finalizers
    if owners:
        meta["ownerReferences"] = owners
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
                           "data": data})


def owner_ref(served: Served, namespace: str, name: str, block: bool = True) -> dict[str, Any]:
    uid = served.get_json("cm", name, "-n", namespace)["metadata"]["uid"]
    return {"apiVersion": "v1", "kind": "ConfigMap", "name": name, "uid": uid,
            "blockOwnerDeletion": block}


def exists(served: Served, namespace: str, *what: str) -> bool:
    return served.kubectl("get", *what, "-n", namespace, "-o", "name",
                          check=False).returncode == 0


def test_kubectl_create_is_an_update_in_managed_fields_and_refuses_a_duplicate(
        served: Served, namespace: str) -> None:
    # kubectl create sends protobuf bodies for built-in kinds
    served.kubectl("create", "configmap", "made", "-n", namespace, "--from-literal=a=1")
    served.kubectl("create", "secret", "generic", "hidden", "-n", namespace,
                   "--from-literal=p=x")
    made = served.get_json("cm", "made", "-n", namespace, "--show-managed-fields")
    assert made["data"] == {"a": "1"}
    assert [(e["manager"], e["operation"]) for e in made["metadata"]["managedFields"]] == [
        ("kubectl-create", "Update")]
    assert "generation" not in made["metadata"]  # ConfigMaps have none, as in kube
    assert "generation" not in served.get_json("secret", "hidden", "-n", namespace)["metadata"]
    again = served.kubectl("create", "configmap", "made", "-n", namespace,
                           "--from-literal=a=2", check=False)
    assert again.returncode == 1
    assert 'configmaps "made" already exists' in again.stderr
    served.kubectl("apply", "--server-side", "-n", namespace, "-f", "-", stdin=cm("ssa", a="1"))
    ssa = served.get_json("cm", "ssa", "-n", namespace, "--show-managed-fields")
    assert [(e["manager"], e["operation"]) for e in ssa["metadata"]["managedFields"]] == [
        ("kubectl", "Apply")]
    served.kubectl("label", "cm", "ssa", "-n", namespace, "x=1")
    ops = {(e["manager"], e["operation"]) for e in served.get_json(
        "cm", "ssa", "-n", namespace, "--show-managed-fields")["metadata"]["managedFields"]}
    assert ops == {("kubectl", "Apply"), ("kubectl-label", "Update")}
    served.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "dep2"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
            "metadata": {"labels": {"a": "b"}}, "spec": {"containers": [
                {"name": "c", "image": "x:1"}]}}}}))
    assert served.get_json("deploy", "dep2", "-n", namespace)["metadata"]["generation"] == 1
    served.kubectl("create", "namespace", f"{namespace}-made")
    assert "generation" not in served.get_json("ns", f"{namespace}-made")["metadata"]


def test_a_watch_sees_every_write_and_objects_leaving_its_selector(
        served: Served, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    code, listing = served.request("GET", base)
    assert code == 200 and isinstance(listing, dict)
    start = listing["metadata"]["resourceVersion"]
    served.kubectl("apply", "-n", namespace, "-f", "-",
                   stdin=cm("w", labels={"team": "a"}, v="1"))
    for value in ("2", "3"):
        served.kubectl("patch", "cm", "w", "-n", namespace, "--type", "merge",
                       "-p", json.dumps({"data": {"v": value}}))
    served.kubectl("label", "cm", "w", "-n", namespace, "team=b", "--overwrite")
    served.kubectl("label", "cm", "w", "-n", namespace, "team=a", "--overwrite")
    served.kubectl("delete", "cm", "w", "-n", namespace)
    code, text = served.request(
        "GET", f"{base}?watch=1&labelSelector=team%3Da&resourceVersion={start}"
               "&timeoutSeconds=1")
    assert code == 200
    events = [json.loads(line) for line in str(text).splitlines()]
    seen = [(e["type"], e["object"]["data"]["v"], e["object"]["metadata"]["labels"]["team"])
            for e in events]
    assert seen == [("ADDED", "1", "a"), ("MODIFIED", "2", "a"), ("MODIFIED", "3", "a"),
                    ("DELETED", "3", "a"),  # left the selector: its previous state
                    ("ADDED", "3", "a"), ("DELETED", "3", "a")]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    assert versions[0] > int(start)


def test_finalizers_hold_a_deleted_object_until_the_last_is_removed(
        served: Served, namespace: str) -> None:
    served.kubectl("apply", "-n", namespace, "-f", "-",
                   stdin=cm("held", finalizers=["example.com/a", "example.com/b"], k="v"))
    out = served.kubectl("delete", "cm", "held", "-n", namespace, "--wait=false")
    assert 'configmap "held" deleted' in out.stdout
    meta = served.get_json("cm", "held", "-n", namespace)["metadata"]
    assert meta["deletionTimestamp"] and meta["deletionGracePeriodSeconds"] == 0
    refused = served.kubectl("patch", "cm", "held", "-n", namespace, "--type", "json", "-p",
                             '[{"op":"add","path":"/metadata/finalizers/-","value":"x.io/c"}]',
                             check=False)
    assert refused.returncode == 1 and "no new finalizers can be added" in refused.stderr
    served.kubectl("patch", "cm", "held", "-n", namespace, "--type", "json",
                   "-p", '[{"op":"remove","path":"/metadata/finalizers/0"}]')
    assert exists(served, namespace, "cm", "held")
    served.kubectl("patch", "cm", "held", "-n", namespace, "--type", "merge",
                   "-p", '{"metadata":{"finalizers":null}}')
    assert not exists(served, namespace, "cm", "held")


def test_delete_cascade_background_orphan_and_foreground(served: Served,
                                                         namespace: str) -> None:
    def family(owner: str, *children: str, hold: str = "") -> None:
        served.kubectl("apply", "-n", namespace, "-f", "-", stdin=cm(owner))
        ref = owner_ref(served, namespace, owner)
        for child in children:
            served.kubectl("apply", "-n", namespace, "-f", "-", stdin=cm(
                child, owners=[ref], finalizers=["example.com/hold"] if child == hold else None))

    family("bg", "bg-1", "bg-2")
    served.kubectl("delete", "cm", "bg", "-n", namespace, "--cascade=background")
    assert not exists(served, namespace, "cm", "bg-1") and not exists(served, namespace,
                                                                       "cm", "bg-2")
    family("or", "or-1")
    served.kubectl("delete", "cm", "or", "-n", namespace, "--cascade=orphan")
    orphan = served.get_json("cm", "or-1", "-n", namespace)["metadata"]
    assert "ownerReferences" not in orphan and "deletionTimestamp" not in orphan
    family("fg", "fg-1", "fg-2", hold="fg-2")
    served.kubectl("delete", "cm", "fg", "-n", namespace, "--cascade=foreground",
                   "--wait=false")
    owner = served.get_json("cm", "fg", "-n", namespace)["metadata"]
    assert owner["finalizers"] == ["foregroundDeletion"] and owner["deletionTimestamp"]
    assert not exists(served, namespace, "cm", "fg-1")
    assert served.get_json("cm", "fg-2", "-n", namespace)["metadata"]["deletionTimestamp"]
    served.kubectl("patch", "cm", "fg-2", "-n", namespace, "--type", "merge",
                   "-p", '{"metadata":{"finalizers":null}}')
    assert not exists(served, namespace, "cm", "fg-2") and not exists(served, namespace,
                                                                       "cm", "fg")


def test_a_workload_deleted_with_orphan_leaves_what_it_stamped(served: Served,
                                                               namespace: str) -> None:
    served.kubectl("apply", "-n", namespace, "-f",
                   str(ROOT / "examples" / "greeter" / "00-workload.yaml"))
    wait_for(lambda: exists(served, namespace, "cm", "hello-greeting"), 30)
    served.kubectl("delete", "workload", "hello", "-n", namespace, "--cascade=orphan")
    left = served.get_json("cm", "hello-greeting", "-n", namespace)["metadata"]
    assert "ownerReferences" not in left


def test_deletecollection_with_a_selector_and_delete_preconditions(
        served: Served, namespace: str) -> None:
    for name, tier in (("a", "p"), ("b", "p"), ("c", "q")):
        served.kubectl("apply", "-n", namespace, "-f", "-", stdin=cm(name, labels={"t": tier}))
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    code, gone = served.request("DELETE", f"{base}?labelSelector=t%3Dp", b"{}", JSON)
    assert code == 200 and isinstance(gone, dict)
    assert sorted(i["metadata"]["name"] for i in gone["items"]) == ["a", "b"]
    left = served.kubectl("get", "cm", "-n", namespace, "-o", "name").stdout.split()
    assert "configmap/c" in left and "configmap/a" not in left
    code, status = served.request("DELETE", f"{base}/c", json.dumps(
        {"preconditions": {"uid": "not-the-uid"}}).encode(), JSON)
    assert code == 409 and isinstance(status, dict) and status["reason"] == "Conflict"
    assert status["message"].startswith("Precondition failed: UID in precondition: not-the-uid")
    live = served.get_json("cm", "c", "-n", namespace)["metadata"]
    code, status = served.request("DELETE", f"{base}/c", json.dumps(
        {"preconditions": {"resourceVersion": "1"}}).encode(), JSON)
    assert code == 409
    code, status = served.request("DELETE", f"{base}/c?propagationPolicy=Sideways")
    assert code == 422 and isinstance(status, dict)
    code, _ = served.request("DELETE", f"{base}/c", json.dumps(
        {"preconditions": {"uid": live["uid"], "resourceVersion": live["resourceVersion"]},
         "propagationPolicy": "Foreground"}).encode(), JSON)
    assert code == 200 and not exists(served, namespace, "cm", "c")


def test_a_terminating_namespace_refuses_new_content_and_goes_when_empty(
        served: Served) -> None:
    served.kubectl("create", "namespace", "ending")
    served.kubectl("apply", "-n", "ending", "-f", "-",
                   stdin=cm("kept", finalizers=["example.com/hold"]))
    served.kubectl("apply", "-n", "ending", "-f", "-", stdin=cm("plain"))
    served.kubectl("delete", "namespace", "ending", "--wait=false")
    ns = served.get_json("ns", "ending")
    assert ns["status"]["phase"] == "Terminating" and ns["metadata"]["deletionTimestamp"]
    assert not exists(served, "ending", "cm", "plain")
    refused = served.kubectl("create", "configmap", "late", "-n", "ending", check=False)
    assert refused.returncode == 1
    assert "unable to create new content in namespace ending because it is being " \
           "terminated" in refused.stderr
    served.kubectl("patch", "cm", "kept", "-n", "ending", "--type", "merge",
                   "-p", '{"metadata":{"finalizers":null}}')
    assert served.kubectl("get", "ns", "ending", check=False).returncode == 1


def test_updating_a_crd_changes_the_schema_objects_are_checked_against(
        served: Served, namespace: str) -> None:
    crd: dict[str, Any] = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gizmos.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"kind": "Gizmo", "plural": "gizmos", "singular": "gizmo"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                     "openAPIV3Schema": {"type": "object", "properties": {"spec": {
                         "type": "object",
                         "properties": {"size": {"type": "integer"}}}}}}}]}}
    served.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(crd))

    def gizmo(size: Any) -> str:
        return yaml.safe_dump({"apiVersion": "example.com/v1", "kind": "Gizmo",
                               "metadata": {"name": "g"}, "spec": {"size": size}})
    assert served.kubectl("apply", "-n", namespace, "-f", "-", stdin=gizmo("big"),
                          check=False).returncode == 1
    served.kubectl("patch", "crd", "gizmos.example.com", "--type", "json", "-p", json.dumps([
        {"op": "replace", "path": "/spec/versions/0/schema/openAPIV3Schema/properties/spec/"
                                  "properties/size/type", "value": "string"}]))
    served.kubectl("apply", "-n", namespace, "-f", "-", stdin=gizmo("big"))
    assert served.get_json("gizmo", "g", "-n", namespace)["metadata"]["generation"] == 1


def test_leases_with_optimistic_concurrency(served: Served, namespace: str) -> None:
    base = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": {"name": "leader"},
             "spec": {"holderIdentity": "one", "leaseDurationSeconds": 15,
                      "acquireTime": "2026-01-01T00:00:00.000000Z", "leaseTransitions": 0}}
    code, created = served.request("POST", base, json.dumps(lease).encode(), JSON)
    assert code == 201 and isinstance(created, dict)
    assert "generation" not in created["metadata"]
    assert served.request("POST", base, json.dumps(lease).encode(), JSON)[0] == 409
    stale_version = created["metadata"]["resourceVersion"]
    taken = {**created, "spec": {**created["spec"], "holderIdentity": "two",
                                 "leaseTransitions": 1}}
    code, updated = served.request("PUT", f"{base}/leader", json.dumps(taken).encode(), JSON)
    assert code == 200 and isinstance(updated, dict)
    assert updated["spec"]["holderIdentity"] == "two"
    code, status = served.request("PUT", f"{base}/leader", json.dumps(
        {**taken, "metadata": {**taken["metadata"], "resourceVersion": stale_version},
         "spec": {**taken["spec"], "holderIdentity": "three"}}).encode(), JSON)
    assert code == 409 and isinstance(status, dict) and status["reason"] == "Conflict"
    table = served.kubectl("get", "leases", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "HOLDER", "AGE"] and table[1].split()[:2] == [
        "leader", "two"]
    assert "leases" in served.kubectl("api-resources", "--api-group",
                                      "coordination.k8s.io").stdout


def test_events_are_served_by_both_event_apis(served: Served, namespace: str) -> None:
    core = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1"},
            "involvedObject": {"kind": "ConfigMap", "name": "x", "namespace": namespace},
            "reason": "Tested", "message": "core event", "type": "Normal",
            "source": {"component": "tester"}, "count": 3,
            "reportingComponent": "tester", "reportingInstance": "tester-1"}
    assert served.request("POST", f"/api/v1/namespaces/{namespace}/events",
                          json.dumps(core).encode(), JSON)[0] == 201
    code, listing = served.request("GET", f"/apis/events.k8s.io/v1/namespaces/{namespace}/events")
    assert code == 200 and isinstance(listing, dict)
    converted = next(e for e in listing["items"] if e["metadata"]["name"] == "e1")
    assert converted["apiVersion"] == "events.k8s.io/v1"
    assert converted["note"] == "core event" and converted["reason"] == "Tested"
    assert converted["regarding"]["name"] == "x"
    assert converted["reportingController"] == "tester"
    assert converted["deprecatedCount"] == 3
    assert converted["deprecatedSource"] == {"component": "tester"}
    new = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e2"},
           "eventTime": "2026-01-01T00:00:00.000000Z", "reason": "Renewed", "note": "new API",
           "type": "Normal", "action": "Renew", "reportingController": "example.com/ctl",
           "reportingInstance": "ctl-1",
           "series": {"count": 2, "lastObservedTime": "2026-01-01T00:00:05.000000Z"},
           "regarding": {"kind": "Lease", "name": "leader", "namespace": namespace}}
    assert served.request("POST", f"/apis/events.k8s.io/v1/namespaces/{namespace}/events",
                          json.dumps(new).encode(), JSON)[0] == 201
    back = served.get_json("events", "e2", "-n", namespace)
    assert back["apiVersion"] == "v1" and back["message"] == "new API"
    assert back["involvedObject"]["kind"] == "Lease" and back["series"]["count"] == 2
    assert back["reportingComponent"] == "example.com/ctl"
    both = served.kubectl("get", "events.events.k8s.io", "-n", namespace, "-o",
                          "name").stdout.split()
    assert len(both) == 2
    # a watch of either API sees the same writes, each in its own form
    code, watched = served.request(
        "GET", f"/apis/events.k8s.io/v1/namespaces/{namespace}/events?watch=1"
               f"&resourceVersion={listing['metadata']['resourceVersion']}&timeoutSeconds=1")
    assert code == 200
    lines = [watched] if isinstance(watched, dict) else [
        json.loads(line) for line in str(watched).splitlines()]
    assert [(e["type"], e["object"]["apiVersion"], e["object"]["note"]) for e in lines] == [
        ("ADDED", "events.k8s.io/v1", "new API")]


def test_events_the_controllers_emit_are_served_with_versions(served: Served,
                                                              namespace: str) -> None:
    served.kubectl("apply", "-n", namespace, "-f",
                   str(ROOT / "examples" / "greeter" / "00-workload.yaml"))

    def emitted() -> list[dict[str, Any]]:
        code, listing = served.request(
            "GET", f"/apis/events.k8s.io/v1/namespaces/{namespace}/events")
        assert code == 200 and isinstance(listing, dict)
        return [e for e in listing["items"] if e.get("regarding", {}).get("kind") == "Workload"]
    events = wait_for(emitted, 30)
    first = events[0]
    assert first["metadata"]["resourceVersion"] and first["metadata"]["uid"]
    assert first["reportingController"] and first["eventTime"]
    for resource in ("events", "events.events.k8s.io"):
        table = served.kubectl("get", resource, "-n", namespace).stdout.splitlines()
        assert table[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
        assert any(line.split()[3] == "workload/hello" for line in table[1:])


def test_kubectl_create_of_service_accounts_and_rbac_objects(served: Served,
                                                             namespace: str) -> None:
    # protobuf bodies, decoded by the server (answers are JSON)
    served.kubectl("create", "serviceaccount", "bot", "-n", namespace)
    served.kubectl("create", "role", "reader", "-n", namespace, "--verb=get,list",
                   "--resource=pods,configmaps", "--resource-name=x")
    served.kubectl("create", "rolebinding", "bot-reads", "-n", namespace, "--role=reader",
                   f"--serviceaccount={namespace}:bot", "--user=alice")
    role = served.get_json("role", "reader", "-n", namespace)
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods", "configmaps"],
                              "resourceNames": ["x"], "verbs": ["get", "list"]}]
    binding = served.get_json("rolebinding", "bot-reads", "-n", namespace)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": "reader"}
    assert {(s["kind"], s["name"]) for s in binding["subjects"]} == {
        ("User", "alice"), ("ServiceAccount", "bot")}
    assert served.get_json("sa", "bot", "-n", namespace)["metadata"]["name"] == "bot"
    refused = served.kubectl("create", "poddisruptionbudget", "pdb", "-n", namespace,
                             "--selector=app=x", "--min-available=1", check=False)
    assert refused.returncode == 1 and "policy/v1, Kind=PodDisruptionBudget" in refused.stderr


def test_kubectl_create_run_and_expose_workloads(served: Served, namespace: str) -> None:
    served.kubectl("create", "deployment", "web", "-n", namespace, "--image=nginx:1.27",
                   "--replicas=2", "--port=8080")
    served.kubectl("create", "deployment", "none", "-n", namespace, "--image=x",
                   "--replicas=0")
    served.kubectl("expose", "deployment", "web", "-n", namespace, "--port=80",
                   "--target-port=8080")
    served.kubectl("create", "service", "clusterip", "named", "-n", namespace,
                   "--tcp=80:http")
    served.kubectl("run", "once", "-n", namespace, "--image=busybox", "--restart=Never",
                   "--env=A=1", "--", "sleep", "1")
    served.kubectl("create", "cronjob", "tick", "-n", namespace, "--image=x",
                   "--schedule=*/5 * * * *")
    served.kubectl("create", "job", "now", "-n", namespace, "--from=cronjob/tick")
    web = served.get_json("deploy", "web", "-n", namespace)
    assert web["spec"]["replicas"] == 2 and web["metadata"]["generation"] == 1
    assert web["spec"]["template"]["spec"]["containers"] == [
        {"name": "nginx", "image": "nginx:1.27", "ports": [{"containerPort": 8080}]}]
    assert served.get_json("deploy", "none", "-n", namespace)["spec"]["replicas"] == 0
    assert served.get_json("svc", "web", "-n", namespace)["spec"]["ports"] == [
        {"port": 80, "protocol": "TCP", "targetPort": 8080}]
    assert served.get_json("svc", "named", "-n", namespace)["spec"]["ports"][0][
        "targetPort"] == "http"
    pod = served.get_json("pod", "once", "-n", namespace)["spec"]
    assert pod["containers"][0]["args"] == ["sleep", "1"] and pod["restartPolicy"] == "Never"
    job = served.get_json("job", "now", "-n", namespace)
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    wait = served.kubectl("wait", "-n", namespace, "--for=condition=Available", "deploy/web",
                          "--timeout=30s", check=False)
    assert wait.returncode == 0, wait.stderr


def test_status_writes_are_recorded_as_updates_of_the_status_subresource(
        served: Served, namespace: str) -> None:
    served.kubectl("apply", "-f", "-", stdin=yaml.safe_dump({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "sprockets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"kind": "Sprocket", "plural": "sprockets", "singular": "sprocket"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "subresources": {"status": {}},
                               "schema": {"openAPIV3Schema": {
                                   "type": "object",
                                   "x-kubernetes-preserve-unknown-fields": True}}}]}}))
    served.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump({
        "apiVersion": "example.com/v1", "kind": "Sprocket", "metadata": {"name": "s"},
        "spec": {"teeth": 12}}))
    served.kubectl("patch", "sprocket", "s", "-n", namespace, "--subresource", "status",
                   "--type", "merge", "-p", '{"status":{"worn":false}}')
    entries = served.get_json("sprocket", "s", "-n", namespace, "--show-managed-fields")[
        "metadata"]["managedFields"]
    status = [e for e in entries if e.get("subresource") == "status"]
    assert [(e["manager"], e["operation"]) for e in status] == [("kubectl-patch", "Update")]
    assert "f:worn" in json.dumps(status[0]["fieldsV1"]["f:status"])
    assert not any("f:status" in e["fieldsV1"] for e in entries if e not in status)
