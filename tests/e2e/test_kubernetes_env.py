"""`reconciler run --environment kubernetes` against `reconciler serve --controllers ecosystem`
(two processes, HTTPS between them), ending where an in-memory `reconciler simulate` of the same
input ends; and KubernetesBackend's informers against the served cluster.

The input is the greeter example plus a two-step chain whose config template's output feeds the
next template (so outputs are compared too). No Git: nothing here depends on a repository.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.backends.kubernetes import KubernetesBackend, connect
from reconciler.settings import KubernetesSettings
from tests.apiserver.conftest import Served, start_server, wait_for
from tests.conftest import EXAMPLES, _cli_command
from tests.e2e.daemon_harness import running_daemon

CHAIN = """\
apiVersion: carto.run/v1alpha1
kind: ClusterConfigTemplate
metadata:
  name: settings
spec:
  configPath: .data
  template:
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: $(workload.metadata.name)$-settings
    data:
      value: $(workload.spec.params[0].value)$
---
apiVersion: carto.run/v1alpha1
kind: ClusterTemplate
metadata:
  name: consumer
spec:
  template:
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: $(workload.metadata.name)$-consumer
    data:
      seen: $(config.value)$
---
apiVersion: carto.run/v1alpha1
kind: ClusterSupplyChain
metadata:
  name: chain
spec:
  selector:
    app.example.com/kind: settings
  resources:
    - name: settings
      templateRef:
        kind: ClusterConfigTemplate
        name: settings
    - name: consumer
      templateRef:
        kind: ClusterTemplate
        name: consumer
      configs:
        - resource: settings
          name: config
---
apiVersion: v1
kind: Namespace
metadata:
  name: team-a
---
apiVersion: carto.run/v1alpha1
kind: Workload
metadata:
  name: app
  namespace: team-a
  labels:
    app.example.com/kind: settings
spec:
  params:
    - name: value
      value: forty-two
"""

# What the comparison looks at: the inputs and everything the reconcilers made.
KINDS = (("carto.run/v1alpha1", "Workload"), ("carto.run/v1alpha1", "ClusterSupplyChain"),
         ("carto.run/v1alpha1", "ClusterTemplate"), ("carto.run/v1alpha1", "ClusterConfigTemplate"),
         ("v1", "ConfigMap"))
SERVER_OWNED = ("uid", "resourceVersion", "creationTimestamp", "managedFields")


def _inputs(tmp: Path) -> Path:
    folder = tmp / "inputs"
    folder.mkdir()
    for name in ("00-supply-chain.yaml", "00-workload.yaml"):
        (folder / name).write_text((EXAMPLES / "greeter" / name).read_text())
    (folder / "10-chain.yaml").write_text(CHAIN)
    return folder


def normalized(obj: dict[str, Any]) -> dict[str, Any]:
    """An object without what differs between any two clusters: uid, resourceVersion,
    timestamps, managedFields (and the owner uids that point at other uids)."""
    out = json.loads(json.dumps(obj))
    meta = out.get("metadata") or {}
    for field in SERVER_OWNED:
        meta.pop(field, None)
    for ref in meta.get("ownerReferences") or []:
        ref.pop("uid", None)

    def strip(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("lastTransitionTime", "time"):
                node.pop(key, None)
            for value in node.values():
                strip(value)
        elif isinstance(node, list):
            for value in node:
                strip(value)

    strip(out.get("status"))
    return dict(out)


def _key(obj: dict[str, Any]) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return (str(obj["kind"]), str(meta.get("namespace") or ""), str(meta["name"]))


def _wanted(obj: dict[str, Any]) -> bool:
    # kube-root-ca.crt and the like are the cluster's, not the input's or the product's.
    return obj["kind"] != "ConfigMap" or bool((obj["metadata"].get("labels") or {}).get(
        "carto.run/workload-name"))


def _ready(workload: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (workload.get("status") or {}).get("conditions") or [])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    server = start_server(tmp_path_factory.mktemp("kube-env"), "--controllers", "ecosystem")
    try:
        yield server
    finally:
        code = server.stop()
        assert code == 0, server.stderr_path.read_text()


def test_run_on_the_served_cluster_ends_where_simulate_ends(served: Served,
                                                              tmp_path: Path) -> None:
    inputs = _inputs(tmp_path)
    simulated = json.loads(subprocess.run(
        [*_cli_command(), "simulate", str(inputs), "-o", "json"], check=True,
        capture_output=True, text=True, timeout=120).stdout)
    assert simulated["summary"]["ready"], simulated["summary"]
    expected = {_key(o): normalized(o) for o in simulated["objects"]
                if (o["apiVersion"], o["kind"]) in KINDS and _wanted(o)}
    assert sorted(k for k in expected if k[0] in ("Workload", "ConfigMap")) == [
        ("ConfigMap", "default", "hello-greeting"), ("ConfigMap", "team-a", "app-consumer"),
        ("ConfigMap", "team-a", "app-settings"), ("Workload", "default", "hello"),
        ("Workload", "team-a", "app")]
    outputs = [r.get("outputs") for o in simulated["objects"] if o["kind"] == "Workload"
               for r in o["status"]["resources"] if r.get("outputs")]
    assert outputs, "the chain's config template has an output to compare"

    reader = connect(served.kubeconfig, settings=KubernetesSettings(informers=False))
    args = [str(inputs), "--environment", "kubernetes", "--listen", "127.0.0.1:0",
            "--artifacts-listen", "127.0.0.1:0", "--tick", "0.2"]
    with running_daemon(args, tmp_path / "run.log",
                        env={"RECONCILER_KUBECONFIG": str(served.kubeconfig)}) as daemon:
        def all_ready() -> bool | None:
            workloads = reader.list("carto.run/v1alpha1", "Workload")
            return True if len(workloads) == 2 and all(map(_ready, workloads)) else None

        wait_for(all_ready, seconds=60)

        def live() -> dict[tuple[str, str, str], dict[str, Any]]:
            return {_key(o): normalized(o) for api_version, kind in KINDS
                    for o in reader.list(api_version, kind) if _wanted(o)}

        # Settled: two reads a few ticks apart agree, and with what simulate ended with.
        def settled() -> dict[tuple[str, str, str], dict[str, Any]] | None:
            first = live()
            subprocess.run(["sleep", "0.6"], check=True)
            return first if first == live() and first == expected else None

        try:
            wait_for(settled, seconds=30)
        except AssertionError:
            got = live()
            assert sorted(got) == sorted(expected)
            for key in sorted(expected):
                assert got[key] == expected[key], key
            raise
        assert daemon.stop() == 0, daemon.stderr_tail()
    # The outputs made it through: the consumer saw the config template's output.
    consumer = reader.get("v1", "ConfigMap", "team-a", "app-consumer")
    assert consumer is not None and consumer["data"] == {"seen": "forty-two"}


# --- informers against the served cluster ----------------------------------------------------


@pytest.fixture
def kube(served: Served) -> Iterator[KubernetesBackend]:
    backend = connect(served.kubeconfig)
    try:
        yield backend
    finally:
        backend.close()


def _cm(ns: str, name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns}, "data": data}


def test_informer_sees_create_modify_delete_by_others(served: Served,
                                                      kube: KubernetesBackend) -> None:
    ns = f"inf-{uuid.uuid4().hex[:8]}"
    other = connect(served.kubeconfig, settings=KubernetesSettings(informers=False))
    other.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    assert kube.list("v1", "ConfigMap", ns) == []  # starts the informer
    requests, http = kube.requests.reads, sum(kube.http_requests.values())
    other.apply(_cm(ns, "x", v="1"), "someone-else")
    wait_for(lambda: kube.get("v1", "ConfigMap", ns, "x"))
    other.apply(_cm(ns, "x", v="2"), "someone-else")
    wait_for(lambda: (kube.get("v1", "ConfigMap", ns, "x") or {}).get("data") == {"v": "2"})
    other.delete("v1", "ConfigMap", ns, "x")
    wait_for(lambda: kube.get("v1", "ConfigMap", ns, "x") is None)
    assert kube.requests.reads == requests, "every read came from the cache"
    assert sum(kube.http_requests.values()) == http, "not one HTTP request (discovery either)"
    informer = kube.informers[("v1", "ConfigMap")]
    assert informer.stats.events >= 3 and informer.stats.lists == 1


def test_informer_recovers_a_broken_watch_and_relists_on_410(served: Served,
                                                              kube: KubernetesBackend) -> None:
    ns = f"inf-{uuid.uuid4().hex[:8]}"
    other = connect(served.kubeconfig, settings=KubernetesSettings(informers=False))
    other.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    kube.list("v1", "ConfigMap", ns)
    informer = kube.informers[("v1", "ConfigMap")]
    watches = informer.stats.watches
    # The connection drops (as a network failure or a restarted server would drop it).
    informer.break_watch()
    other.apply(_cm(ns, "after-break"))
    wait_for(lambda: kube.get("v1", "ConfigMap", ns, "after-break"))
    assert informer.stats.watches > watches
    # The version it would resume from is older than the server's history: 410, re-list.
    informer.resource_version = "1"
    informer.break_watch()
    other.apply(_cm(ns, "after-expiry"))
    wait_for(lambda: kube.get("v1", "ConfigMap", ns, "after-expiry"))
    assert informer.stats.expired >= 1 and informer.stats.lists >= 2
    # What happened while it was re-listing is there too, and nothing extra.
    assert {o["metadata"]["name"] for o in kube.list("v1", "ConfigMap", ns)} >= {
        "after-break", "after-expiry"}


# --- impersonation and RBAC against `serve --rbac` -----------------------------------------


@pytest.fixture(scope="module")
def rbac_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    server = start_server(tmp_path_factory.mktemp("kube-env-rbac"), "--controllers",
                          "ecosystem", "--rbac")
    try:
        yield server
    finally:
        code = server.stop()
        assert code == 0, server.stderr_path.read_text()


def test_impersonation_reads_as_the_user_and_groups_given(rbac_served: Served) -> None:
    ns = f"imp-{uuid.uuid4().hex[:8]}"
    admin = connect(rbac_served.kubeconfig, settings=KubernetesSettings(informers=False))
    admin.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    admin.apply(_cm(ns, "visible", v="1"))
    admin.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                 "metadata": {"name": "read-configmaps", "namespace": ns},
                 "rules": [{"apiGroups": [""], "resources": ["configmaps"],
                            "verbs": ["get", "list", "watch"]}]})
    admin.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                 "metadata": {"name": "readers", "namespace": ns},
                 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                             "name": "read-configmaps"},
                 "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                               "name": f"{ns}-readers"}]})

    def as_(groups: tuple[str, ...]) -> KubernetesBackend:
        return connect(rbac_served.kubeconfig, settings=KubernetesSettings(
            impersonate_user="alice", impersonate_groups=groups))

    reader = as_(("first-group", f"{ns}-readers"))  # the second of two Impersonate-Group
    try:
        # Cluster-wide list/watch is forbidden: this kind is read without an informer.
        got = reader.get("v1", "ConfigMap", ns, "visible")
        assert got is not None and got["data"] == {"v": "1"}
        assert [o["metadata"]["name"] for o in reader.list("v1", "ConfigMap", ns)] == [
            "visible"]
        assert ("v1", "ConfigMap") not in reader.informers
        with pytest.raises(Exception, match='User "alice" cannot patch resource "configmaps"'):
            reader.apply(_cm(ns, "visible", v="2"))
    finally:
        reader.close()
    outsider = as_(("first-group",))
    try:
        with pytest.raises(Exception, match='User "alice" cannot get resource "configmaps"'):
            outsider.get("v1", "ConfigMap", ns, "visible")
    finally:
        outsider.close()
