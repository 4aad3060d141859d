"""The real kubectl v1.35 against `reconciler serve` (a subprocess, over HTTPS)."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from tests.apiserver.conftest import KUBECTL, Served, needs_kubectl, wait_for
from tests.conftest import ROOT

pytestmark = needs_kubectl

WIDGET_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget, shortNames: [wdg],
          categories: [gadgets]}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Color, type: string, jsonPath: .spec.color}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            description: What a widget should be.
            properties:
              size: {type: integer, description: How big the widget is.}
              color: {type: string}
              tags: {type: array, items: {type: string}}
          status:
            type: object
            properties:
              phase: {type: string}
"""


def widget(name: str, size: int = 1, color: str = "red",
           labels: dict[str, str] | None = None) -> str:
    return yaml.safe_dump({"apiVersion": "example.com/v1", "kind": "Widget",
                           "metadata": {"name": name, "labels": labels or {}},
                           "spec": {"size": size, "color": color}})


def configmap(name: str, **data: str) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": name}, "data": data})


@pytest.fixture(scope="module")
def widgets(served: Served) -> None:
    served.kubectl("apply", "-f", "-", stdin=WIDGET_CRD)


def test_api_resources_lists_workloads_with_short_names_and_categories(served: Served) -> None:
    out = served.kubectl("api-resources", "--api-group", "carto.run", "-o", "wide").stdout
    line = next(line for line in out.splitlines() if line.startswith("workloads "))
    assert "wrk" in line.split()
    assert "carto.run/v1alpha1" in line
    assert "all" in line  # categories
    assert "create,delete,deletecollection,get,list,patch,update,watch" in line
    assert served.kubectl("get", "wrk").returncode == 0


def test_a_crd_is_served_as_soon_as_it_is_applied(served: Served, widgets: None,
                                                  namespace: str) -> None:
    out = served.kubectl("api-resources", "--api-group", "example.com").stdout
    assert "widgets" in out and "wdg" in out
    served.kubectl("apply", "-n", namespace, "-f", "-", stdin=widget("w1", 3, "blue"))
    table = served.kubectl("get", "wdg", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "SIZE", "COLOR", "AGE"]
    assert table[1].split()[:3] == ["w1", "3", "blue"]
    assert served.kubectl("get", "gadgets", "-n", namespace).stdout.count("w1") == 1


def test_a_crd_is_established_and_its_names_accepted(served: Served, widgets: None) -> None:
    # What `kubectl wait` and `helm install --wait` look for, as kube-apiserver writes it.
    for condition in ("Established", "NamesAccepted"):
        done = served.kubectl("wait", f"--for=condition={condition}",
                              "crd/widgets.example.com", "--timeout=10s")
        assert "condition met" in done.stdout, condition
    status = served.get_json("crd", "widgets.example.com")["status"]
    reasons = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert reasons == {"NamesAccepted": ("True", "NoConflicts"),
                       "Established": ("True", "InitialNamesAccepted")}
    assert status["acceptedNames"] == {"kind": "Widget", "listKind": "WidgetList",
                                       "plural": "widgets", "singular": "widget",
                                       "shortNames": ["wdg"], "categories": ["gadgets"]}
    assert status["storedVersions"] == ["v1"]
    # Re-applying changes nothing: the conditions keep their transition times.
    version = served.get_json("crd", "widgets.example.com")["metadata"]["resourceVersion"]
    served.kubectl("apply", "-f", "-", stdin=WIDGET_CRD)
    again = served.get_json("crd", "widgets.example.com")
    assert again["metadata"]["resourceVersion"] == version
    assert again["status"] == status


def test_get_yaml_label_selectors_and_all_namespaces(served: Served, widgets: None,
                                                     namespace: str) -> None:
    for name, tier in (("a", "web"), ("b", "db"), ("c", "")):
        labels = {"tier": tier} if tier else {}
        served.kubectl("apply", "-n", namespace, "-f", "-", stdin=widget(name, labels=labels))

    def names(*selector: str) -> list[str]:
        out = served.kubectl("get", "widgets", "-n", namespace, *selector, "-o", "name").stdout
        return sorted(line.rsplit("/", 1)[1] for line in out.split())

    assert names("-l", "tier=web") == ["a"]
    assert names("-l", "tier!=web") == ["b", "c"]
    assert names("-l", "tier in (web,db)") == ["a", "b"]
    assert names("-l", "tier notin (web)") == ["b", "c"]
    assert names("-l", "tier") == ["a", "b"]
    assert names("-l", "!tier") == ["c"]
    assert names("--field-selector", "metadata.name=b") == ["b"]
    doc = yaml.safe_load(served.kubectl("get", "widget", "a", "-n", namespace,
                                        "-o", "yaml").stdout)
    assert doc["kind"] == "Widget" and doc["metadata"]["namespace"] == namespace
    assert doc["metadata"]["uid"] and doc["metadata"]["resourceVersion"]
    everywhere = served.kubectl("get", "widgets", "-A").stdout.splitlines()
    assert everywhere[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert sum(1 for line in everywhere if line.split()[0] == namespace) == 3
    # limit/continue: kubectl pages through with --chunk-size
    paged = served.kubectl("get", "widgets", "-n", namespace, "--chunk-size", "1",
                           "-o", "name").stdout.split()
    assert len(paged) == 3


def test_apply_client_side_creates_then_configures(served: Served, namespace: str) -> None:
    assert "created" in served.kubectl("apply", "-n", namespace, "-f", "-",
                                       stdin=configmap("c", a="1", b="2")).stdout
    assert "configured" in served.kubectl("apply", "-n", namespace, "-f", "-",
                                          stdin=configmap("c", a="9")).stdout
    live = served.get_json("cm", "c", "-n", namespace)
    assert live["data"] == {"a": "9"}  # b was removed through last-applied-configuration
    assert "unchanged" in served.kubectl("apply", "-n", namespace, "-f", "-",
                                         stdin=configmap("c", a="9")).stdout


def test_server_side_apply_conflict_and_force(served: Served, namespace: str) -> None:
    served.kubectl("apply", "--server-side", "--field-manager", "alice", "-n", namespace,
                   "-f", "-", stdin=configmap("s", key="alice"))
    refused = served.kubectl("apply", "--server-side", "--field-manager", "bob", "-n",
                             namespace, "-f", "-", stdin=configmap("s", key="bob"), check=False)
    assert refused.returncode == 1
    assert 'Apply failed with 1 conflict: conflict with "alice" using v1: .data.key' in \
        refused.stderr
    assert served.get_json("cm", "s", "-n", namespace)["data"] == {"key": "alice"}
    forced = served.kubectl("apply", "--server-side", "--field-manager", "bob",
                            "--force-conflicts", "-n", namespace, "-f", "-",
                            stdin=configmap("s", key="bob"))
    assert "serverside-applied" in forced.stdout
    live = served.get_json("cm", "s", "-n", namespace, "--show-managed-fields")
    assert live["data"] == {"key": "bob"}
    owners = {e["manager"]: e for e in live["metadata"]["managedFields"]}
    assert "f:key" in json.dumps(owners["bob"]["fieldsV1"])
    assert "alice" not in owners or "f:key" not in json.dumps(owners["alice"]["fieldsV1"])


def test_patch_merge_json_and_strategic(served: Served, widgets: None, namespace: str) -> None:
    served.kubectl("apply", "-n", namespace, "-f", "-", stdin=widget("p", 1, "red"))
    served.kubectl("patch", "widget", "p", "-n", namespace, "--type", "merge",
                   "-p", '{"spec":{"color":"green"}}')
    served.kubectl("patch", "widget", "p", "-n", namespace, "--type", "json",
                   "-p", '[{"op":"replace","path":"/spec/size","value":7}]')
    assert served.get_json("widget", "p", "-n", namespace)["spec"] == {"size": 7,
                                                                       "color": "green"}
    refused = served.kubectl("patch", "widget", "p", "-n", namespace, "--type", "strategic",
                             "-p", '{"spec":{"size":8}}', check=False)
    assert refused.returncode != 0 and "not supported" in refused.stderr
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "d"}},
                 "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [
                     {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
                     {"name": "b", "image": "b:1"}]}}}}
    served.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(deployment))
    served.kubectl("patch", "deployment", "d", "-n", namespace, "--type", "strategic", "-p",
                   json.dumps({"spec": {"template": {"spec": {"containers": [
                       {"name": "b", "image": "b:2"},
                       {"name": "a", "env": [{"name": "Y", "value": "2"}]}]}}}}))
    containers = served.get_json("deploy", "d", "-n", namespace)["spec"]["template"]["spec"][
        "containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("a", "a:1"), ("b", "b:2")]
    assert containers[0]["env"] == [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]


def test_label_annotate_and_delete(served: Served, widgets: None, namespace: str) -> None:
    served.kubectl("apply", "-n", namespace, "-f", "-", stdin=widget("l"))
    served.kubectl("label", "widget", "l", "-n", namespace, "team=blue")
    served.kubectl("annotate", "widget", "l", "-n", namespace, "note=hello")
    meta = served.get_json("widget", "l", "-n", namespace)["metadata"]
    assert meta["labels"] == {"team": "blue"} and meta["annotations"]["note"] == "hello"
    served.kubectl("label", "widget", "l", "-n", namespace, "team-")
    assert "labels" not in served.get_json("widget", "l", "-n", namespace)["metadata"] or \
        served.get_json("widget", "l", "-n", namespace)["metadata"]["labels"] == {}
    assert 'widget.example.com "l" deleted' in served.kubectl(
        "delete", "widget", "l", "-n", namespace).stdout
    missing = served.kubectl("get", "widget", "l", "-n", namespace, check=False)
    assert missing.returncode == 1
    assert 'Error from server (NotFound): widgets.example.com "l" not found' in missing.stderr


def test_stale_update_is_a_conflict_and_dry_run_stores_nothing(served: Served,
                                                               namespace: str) -> None:
    served.kubectl("apply", "-n", namespace, "-f", "-", stdin=configmap("r", a="1"))
    old = served.kubectl("get", "cm", "r", "-n", namespace, "-o", "yaml").stdout
    served.kubectl("label", "cm", "r", "-n", namespace, "x=1")
    stale = served.kubectl("replace", "-n", namespace, "-f", "-", stdin=old, check=False)
    assert stale.returncode == 1
    assert ('Operation cannot be fulfilled on configmaps "r": the object has been modified; '
            "please apply your changes to the latest version and try again") in stale.stderr
    dry = served.kubectl("apply", "-n", namespace, "--dry-run=server", "-f", "-",
                         stdin=configmap("r", a="2"))
    assert "(server dry run)" in dry.stdout
    served.kubectl("delete", "cm", "r", "-n", namespace, "--dry-run=server")
    assert served.get_json("cm", "r", "-n", namespace)["data"] == {"a": "1"}
    served.kubectl("apply", "-n", namespace, "--dry-run=server", "-f", "-",
                   stdin=configmap("new", a="1"))
    assert served.kubectl("get", "cm", "new", "-n", namespace, check=False).returncode == 1


def test_explain_reads_the_crd_schema(served: Served, widgets: None) -> None:
    out = served.kubectl("explain", "widgets.spec").stdout
    assert "KIND:       Widget" in out and "What a widget should be." in out
    assert "size\t<integer>" in out and "How big the widget is." in out
    workload = served.kubectl("explain", "workloads.carto.run.spec").stdout
    assert "KIND:       Workload" in workload and "params" in workload


def test_get_watch_sees_a_change(served: Served, widgets: None, namespace: str) -> None:
    served.kubectl("apply", "-n", namespace, "-f", "-", stdin=widget("w", 1))
    env = {"HOME": str(served.home), "KUBECONFIG": str(served.kubeconfig)}
    # kubectl's own --request-timeout bounds every readline below (it exits, the pipe ends).
    with subprocess.Popen([str(KUBECTL), "get", "widgets", "-n", namespace, "-w",
                           "--request-timeout", "20s"], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True, env=env) as watcher:
        try:
            assert watcher.stdout is not None
            header, first = watcher.stdout.readline(), watcher.stdout.readline()
            assert header.split()[:3] == ["NAME", "SIZE", "COLOR"]
            assert first.split()[:2] == ["w", "1"]
            served.kubectl("patch", "widget", "w", "-n", namespace, "--type", "merge",
                           "-p", '{"spec":{"size":5}}')
            assert watcher.stdout.readline().split()[:2] == ["w", "5"]
            served.kubectl("delete", "widget", "w", "-n", namespace, "--wait=false")
        finally:
            watcher.terminate()


def test_a_workload_applied_with_kubectl_goes_ready(served: Served, namespace: str) -> None:
    served.kubectl("apply", "-n", namespace, "-f",
                   str(ROOT / "examples" / "greeter" / "00-workload.yaml"))
    wait = served.kubectl("wait", "-n", namespace, "--for=condition=Ready", "workload/hello",
                          "--timeout=30s", check=False)
    assert wait.returncode == 0, wait.stderr
    row = served.kubectl("get", "workloads", "-n", namespace).stdout.splitlines()
    assert row[0].split() == ["NAME", "SOURCE", "SUPPLYCHAIN", "READY", "REASON", "AGE"]
    assert row[1].split()[:4] == ["hello", "greeter", "True", "Ready"]
    greeting = wait_for(lambda: served.kubectl("get", "cm", "hello-greeting", "-n", namespace,
                                               "-o", "jsonpath={.data.greeting}",
                                               check=False).stdout)
    assert greeting == "hello hello"


def test_status_subresource(served: Served, widgets: None, namespace: str) -> None:
    served.kubectl("apply", "-n", namespace, "-f", "-", stdin=widget("s"))
    served.kubectl("patch", "widget", "s", "-n", namespace, "--subresource", "status",
                   "--type", "merge", "-p", '{"status":{"phase":"Shiny"}}')
    live = served.get_json("widget", "s", "-n", namespace)
    assert live["status"] == {"phase": "Shiny"} and live["metadata"]["generation"] == 1
    # status on the main resource is ignored, as with a real status subresource
    served.kubectl("patch", "widget", "s", "-n", namespace, "--type", "merge",
                   "-p", '{"status":{"phase":"Dull"}}')
    assert served.get_json("widget", "s", "-n", namespace)["status"] == {"phase": "Shiny"}


def test_diff_exit_codes_over_server_dry_run(served: Served, namespace: str) -> None:
    served.kubectl("apply", "-n", namespace, "-f", "-", stdin=configmap("d", a="1"))
    same = served.kubectl("diff", "-n", namespace, "-f", "-", stdin=configmap("d", a="1"),
                          check=False)
    assert same.returncode == 0, same.stdout + same.stderr
    changed = served.kubectl("diff", "-n", namespace, "-f", "-", stdin=configmap("d", a="2"),
                             check=False)
    assert changed.returncode == 1 and '+  a: "2"' in changed.stdout
    assert "resourceVersion" not in "".join(
        line for line in changed.stdout.splitlines() if line.startswith(("+", "-"))
        and not line.startswith(("+++", "---")))
    assert served.get_json("cm", "d", "-n", namespace)["data"] == {"a": "1"}
