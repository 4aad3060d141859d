"""`reconciler run --environment kubernetes` against `reconciler serve --controllers ecosystem`
(two processes, HTTPS between them), ending where an in-memory `reconciler simulate` of the same
input ends; and KubernetesBackend's informers against the served cluster.

The input is the greeter example plus a two-step chain whose config template's output feeds the
next template (so outputs are compared too); no Git there. The paved path (a GitRepository
served by `git daemon` -> kpack Image -> Knative Service) is compared the same way, through a
second commit.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.backends.kubernetes import KubernetesBackend, connect
from reconciler.settings import KubernetesSettings, SourceSettings
from simulator.ecosystem import NOT_FETCHED
from simulator.scanning import SOURCE_NOT_READ_ANNOTATION as SOURCE_NOT_READ
from tests.apiserver.conftest import Served, serving, wait_for
from tests.conftest import EXAMPLES, GitRepo, _cli_command, greeter_inputs
from tests.e2e.daemon_harness import paved_path_copy, running_daemon, sample, without_volatile
from tests.manifests import settings_template

CHAIN = settings_template("ClusterConfigTemplate") + """\
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
    folder = greeter_inputs(tmp / "inputs")
    (folder / "10-chain.yaml").write_text(CHAIN)
    return folder


def normalized(obj: dict[str, Any]) -> dict[str, Any]:
    """An object without what differs between any two clusters: uid, resourceVersion,
    timestamps, managedFields (and the owner uids that point at other uids)."""
    return without_volatile(obj, SERVER_OWNED, ("lastTransitionTime", "time"))


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
    with serving(tmp_path_factory.mktemp("kube-env"), "--controllers", "ecosystem") as server:
        yield server


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
    with serving(tmp_path_factory.mktemp("kube-env-rbac"),
                 "--controllers", "ecosystem", "--rbac") as server:
        yield server


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


# --- the paved path: GitRepository -> kpack Image -> Knative Service, two processes --------

# The paved path's stamped objects and everything that makes them: the comparison covers every
# kind `simulate` reports (CRDs and Namespaces included), read back from the served cluster.
PAVED_KINDS = (("v1", "Namespace"), ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
               ("carto.run/v1alpha1", "ClusterSupplyChain"),
               ("carto.run/v1alpha1", "ClusterSourceTemplate"),
               ("carto.run/v1alpha1", "ClusterImageTemplate"),
               ("carto.run/v1alpha1", "ClusterTemplate"), ("carto.run/v1alpha1", "Workload"),
               ("source.toolkit.fluxcd.io/v1", "GitRepository"), ("kpack.io/v1alpha2", "Image"),
               ("kpack.io/v1alpha2", "Build"), ("serving.knative.dev/v1", "Service"),
               ("serving.knative.dev/v1", "Revision"))

# `simulate` writes artifact URLs under SourceSettings' in-cluster default (the source
# controller's Service); the daemon writes its own artifact server's address unless told
# otherwise. The simulated kpack derives the image digest from the source blob URL, so with
# different bases every downstream output would differ too. `--artifacts-url` is how an
# operator names the address the cluster reaches the daemon at; giving the daemon the same base
# makes the URLs (and so the images) comparable as they are, instead of ignoring them.
SIMULATE_ARTIFACT_BASE = str(next(f.default for f in dataclasses.fields(SourceSettings)
                                  if f.name == "artifact_base_url"))


# What the paved-path comparison ignores, and why (everything else must be equal):
# - metadata.uid, ownerReferences[].uid: each cluster gives its own (both happen to derive them
#   from names today, but that is not a promise of the API);
# - metadata.resourceVersion: each store's own write counter;
# - metadata.creationTimestamp, status...lastTransitionTime, managedFields[].time and
#   status.artifact.lastUpdateTime: clock readings from three different clocks (simulate's
#   virtual one starts at 2026-01-01; the served cluster's starts at the wall clock and runs
#   --time-scale times faster; the daemon's is the wall clock);
# - metadata.managedFields: besides its times, it records how each side wrote status: the served
#   cluster has the daemon's status writes as `Update` entries on the `status` subresource (and
#   none for its in-process ecosystem), the in-memory store records only the applies.
# Events are compared apart (`_event_tally`): their names, uids and timestamps are each
# cluster's own; what they say and how many times is compared.
def paved_normalized(obj: dict[str, Any]) -> dict[str, Any]:
    """`normalized` (uid, resourceVersion, timestamps, managedFields, owner uids) and
    status.artifact.lastUpdateTime."""
    out = normalized(obj)
    artifact = (out.get("status") or {}).get("artifact")
    if isinstance(artifact, dict):
        artifact.pop("lastUpdateTime", None)
    return out


def _paved_key(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    meta = obj["metadata"]
    return (str(obj["apiVersion"]), str(obj["kind"]), str(meta.get("namespace") or ""),
            str(meta["name"]))


def _event_tally(events: list[dict[str, Any]]) -> dict[tuple[str, ...], int]:
    """Events as a person reads them: what about, which reason and message, how many times
    (names, uids and timestamps are each cluster's own)."""
    tally: dict[tuple[str, ...], int] = {}
    for event in events:
        about = event["involvedObject"]
        key = (str(about["kind"]), str(about.get("namespace") or ""), str(about["name"]),
               str(event["type"]), str(event["reason"]), str(event["message"]),
               str((event.get("source") or {}).get("component") or ""))
        tally[key] = tally.get(key, 0) + int(event.get("count") or 1)
    return tally


def _outputs_of(workload: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {r["name"]: {o["name"]: o["preview"].strip() for o in r.get("outputs") or []}
            for r in workload["status"]["resources"]}


def _simulate(inputs: Path, state: Path, url: str) -> dict[str, Any]:
    done = subprocess.run([*_cli_command(), "simulate", str(inputs), "-o", "json", "--state",
                           str(state)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "APP_REPO_URL": url})
    assert done.returncode == 0, done.stderr + done.stdout
    result: dict[str, Any] = json.loads(done.stdout)
    assert result["summary"]["ready"], result["summary"]
    return result


@pytest.fixture
def paved_app(make_repo: Callable[..., GitRepo]) -> GitRepo:
    app = EXAMPLES / "paved-path" / "developer" / "app"
    return make_repo("band-service", {p.name: p.read_text() for p in app.iterdir()})


@pytest.fixture
def paved_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    # A cluster of its own: the greeter test above shares `served` and counts its Workloads.
    # 30 simulated seconds per real one: kpack's 30 s build takes 1 s, Knative's rollout less.
    with serving(tmp_path_factory.mktemp("kube-env-paved"),
                 "--controllers", "ecosystem", "--time-scale", "30") as server:
        yield server


def test_paved_path_on_the_served_cluster_ends_where_simulate_ends(
        paved_served: Served, paved_app: GitRepo, serve_repo: Callable[[GitRepo], str],
        tmp_path: Path) -> None:
    url = serve_repo(paved_app)  # `run` refuses file:// and local paths; `simulate` takes it too
    # The example as it is, but polling every 2 s instead of every minute: the daemon's clock
    # against a cluster is the wall clock (--time-scale does not speed it up), and the second
    # commit has to be noticed within the test. Both runs read this same copy.
    inputs = paved_path_copy(tmp_path / "paved-path", poll_interval="2s")
    sim_state = tmp_path / "simulate.json"
    simulated = _simulate(inputs, sim_state, url)
    sha1 = paved_app.git("rev-parse", "HEAD")

    def expected_of(doc: dict[str, Any]) -> dict[tuple[str, str, str, str], dict[str, Any]]:
        want = {_paved_key(o): paved_normalized(o) for o in doc["objects"]
                if (o["apiVersion"], o["kind"]) in PAVED_KINDS}
        for key, obj in want.items():  # serve's kpack reads no source, and its Builds say so
            if key[1] == "Build":
                obj["metadata"].setdefault("annotations", {})[SOURCE_NOT_READ] = NOT_FETCHED
        return want

    expected = expected_of(simulated)
    assert {(o["apiVersion"], o["kind"]) for o in simulated["objects"]} == set(PAVED_KINDS)
    workload = next(o for o in simulated["objects"] if o["kind"] == "Workload")
    outputs = _outputs_of(workload)
    assert outputs["source-provider"]["revision"] == f"main@sha1:{sha1}"
    assert outputs["source-provider"]["url"].startswith(SIMULATE_ARTIFACT_BASE)
    assert outputs["image-builder"]["image"].startswith(
        "registry.example.com/apps/band-service@sha256:")
    knative_url = "http://band-service.default.example.com"
    assert expected[("serving.knative.dev/v1", "Service", "default", "band-service")][
        "status"]["url"] == knative_url

    reader = connect(paved_served.kubeconfig, settings=KubernetesSettings(informers=False))

    def live() -> dict[tuple[str, str, str, str], dict[str, Any]]:
        return {_paved_key(o): paved_normalized(o) for api_version, kind in PAVED_KINDS
                for o in reader.list(api_version, kind)}

    def live_events() -> dict[tuple[str, ...], int]:
        return _event_tally(reader.list("v1", "Event", "default"))

    def explain(want: dict[tuple[str, str, str, str], dict[str, Any]]) -> None:
        got = live()
        assert sorted(got) == sorted(want)
        for key in sorted(want):
            assert got[key] == want[key], key

    args = [str(inputs), "--environment", "kubernetes", "--listen", "127.0.0.1:0",
            "--artifacts-listen", "127.0.0.1:0", "--artifacts-url", SIMULATE_ARTIFACT_BASE,
            "--tick", "0.2"]
    try:
        with running_daemon(args, tmp_path / "run.log",
                            env={"RECONCILER_KUBECONFIG": str(paved_served.kubeconfig),
                                 "APP_REPO_URL": url}) as daemon:
            def ticks() -> float:
                return sample(daemon.metrics(), "reconciler_ticks_total", result="ok") or 0.0

            def reaches(want: dict[tuple[str, str, str, str], dict[str, Any]],
                        seconds: float) -> None:
                """Wait until the cluster holds `want`; then, three daemon ticks later, that it
                still does (nothing left in flight rewrote it)."""
                try:
                    wait_for(lambda: live() == want, seconds=seconds)
                    after = ticks() + 3
                    wait_for(lambda: ticks() >= after, seconds=10)
                    assert live() == want
                except AssertionError:
                    explain(want)
                    raise

            reaches(expected, seconds=30)
            assert live_events() == _event_tally(simulated["events"])

            # A new commit flows through both: polled by the daemon, simulated from the saved
            # state (so generations, build counters and revision names carry on alike).
            sha2 = paved_app.commit({"VERSION": "1.1.0\n"}, "release 1.1.0")
            resimulated = _simulate(inputs, sim_state, url)
            expected2 = expected_of(resimulated)
            workload2 = next(o for o in resimulated["objects"] if o["kind"] == "Workload")
            outputs2 = _outputs_of(workload2)
            assert outputs2["source-provider"]["revision"] == f"main@sha1:{sha2}"
            assert outputs2["source-provider"]["url"] != outputs["source-provider"]["url"]
            assert outputs2["image-builder"]["image"] != outputs["image-builder"]["image"]
            service2 = expected2[("serving.knative.dev/v1", "Service", "default",
                                  "band-service")]
            assert service2["metadata"]["generation"] == 2
            assert service2["status"]["latestReadyRevisionName"] == "band-service-00002"
            reaches(expected2, seconds=30)
            assert live_events() == _event_tally(resimulated["events"])
            assert daemon.stop() == 0, daemon.stderr_tail()
    finally:
        reader.close()
