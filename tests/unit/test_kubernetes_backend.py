"""The pure parts of the Kubernetes backend and its environment: request shaping, selectors,
event aggregation keys, the write counter, configuration errors and the environment's behaviour.

What needs an API server (discovery, the requests themselves, informers) is covered by the
contract suite in `tests/contract/` and `tests/e2e/test_kubernetes_env.py`, against `reconciler
serve` (or a real cluster named by `RECONCILER_TEST_KUBECONFIG`).
"""

from __future__ import annotations

import hashlib
import json
import socket
import tempfile
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from kubernetes import __version__ as kubernetes_version

from reconciler.backends.kube_environment import (
    KubernetesEnvironment,
    StateNotSupported,
    create_environment,
)
from reconciler.backends.kubernetes import (
    EventKey,
    KubernetesBackend,
    WriteCounter,
    apply_request,
    connect,
    event_key,
    event_name,
    event_namespace,
    label_selector,
    new_event,
    status_request,
)
from reconciler.engine.runner import Environment
from reconciler.engine.wiring import ENTRY_POINT_GROUP, load_environment
from reconciler.model.errors import BackendError, ReconcilerError, Rejected
from reconciler.model.kinds import KindInfo
from reconciler.runtime.clock import SystemClock

CONFIGMAPS = KindInfo("", ("v1",), "ConfigMap", "configmaps", True)
NAMESPACES = KindInfo("", ("v1",), "Namespace", "namespaces", False)
WORKLOADS = KindInfo("carto.run", ("v1alpha1",), "Workload", "workloads", True)


def _live_cm() -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cfg", "namespace": "team-a", "labels": {"app": "x"},
                     "uid": "u-1", "resourceVersion": "41", "generation": 3,
                     "creationTimestamp": "2024-01-01T00:00:00Z",
                     "managedFields": [{"manager": "reconciler", "operation": "Apply"}]},
        "data": {"a": "1"},
        "status": {"ignored": True},
    }


# --- server-side apply request shaping -----------------------------------------------------


def test_apply_sends_what_the_object_declares_without_server_fields_or_status() -> None:
    obj = _live_cm()
    request = apply_request(obj, CONFIGMAPS, "reconciler", force=False)
    assert request.body == {"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": "cfg", "namespace": "team-a",
                                         "labels": {"app": "x"}},
                            "data": {"a": "1"}}
    assert (request.name, request.namespace, request.field_manager, request.force_conflicts) == (
        "cfg", "team-a", "reconciler", False)
    assert obj == _live_cm(), "the caller's object is not changed"


def test_apply_of_a_cluster_scoped_kind_drops_the_namespace() -> None:
    request = apply_request({"apiVersion": "v1", "kind": "Namespace",
                             "metadata": {"name": "team-a", "namespace": "stray"}},
                            NAMESPACES, "someone", force=True)
    assert request.namespace is None and "namespace" not in request.body["metadata"]
    assert (request.field_manager, request.force_conflicts) == ("someone", True)


@pytest.mark.parametrize(("metadata", "field"), [
    ({"namespace": "team-a"}, "metadata.name"),
    ({"name": ""}, "metadata.name"),
    ({"name": "cfg"}, "metadata.namespace"),
])
def test_apply_refuses_what_the_simulator_refuses(metadata: dict[str, Any], field: str) -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata}
    with pytest.raises(Rejected) as raised:
        apply_request(obj, CONFIGMAPS, "reconciler", force=False)
    assert raised.value.field == field


def test_a_status_write_sends_identity_and_status_only_and_forces() -> None:
    obj = {**_live_cm(), "apiVersion": "carto.run/v1alpha1", "kind": "Workload",
           "spec": {"source": {}}, "status": {"conditions": [{"type": "Ready"}]}}
    request = status_request(obj, WORKLOADS)
    assert request.body == {"apiVersion": "carto.run/v1alpha1", "kind": "Workload",
                            "metadata": {"name": "cfg", "namespace": "team-a"},
                            "status": {"conditions": [{"type": "Ready"}]}}
    assert request.force_conflicts is True
    request.body["status"]["conditions"].append({})
    assert obj["status"] == {"conditions": [{"type": "Ready"}]}, "status is copied"


def test_a_status_write_without_status_removes_ours() -> None:
    obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}
    request = status_request(obj, NAMESPACES)
    assert request.body == {"apiVersion": "v1", "kind": "Namespace",
                            "metadata": {"name": "team-a"}}
    assert request.namespace is None


def test_a_status_write_needs_the_namespace_of_a_namespaced_kind() -> None:
    with pytest.raises(Rejected) as raised:
        status_request({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"},
                        "status": {}}, CONFIGMAPS)
    assert raised.value.field == "metadata.namespace"


# --- label selectors --------------------------------------------------------------------


@pytest.mark.parametrize(("labels", "selector"), [
    (None, None),
    ({}, None),
    ({"app": "x"}, "app=x"),
    ({"b": "2", "a": "1"}, "a=1,b=2"),
    ({"app.kubernetes.io/part-of": "shop", "tier": ""}, "app.kubernetes.io/part-of=shop,tier="),
])
def test_label_selector_rendering(labels: dict[str, str] | None, selector: str | None) -> None:
    assert label_selector(labels) == selector


@pytest.mark.parametrize("labels", [{"a,b": "1"}, {"a": "1,b=2"}, {"a": "x y"}, {"": "1"},
                                    {"a!": "1"}])
def test_label_values_that_would_change_the_selector_are_refused(labels: dict[str, str]) -> None:
    with pytest.raises(Rejected):
        label_selector(labels)


# --- event aggregation ------------------------------------------------------------------


def _involved(name: str = "hello", namespace: str | None = "team-a") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "uid": f"uid-{name}"}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": "carto.run/v1alpha1", "kind": "Workload", "metadata": meta}


def test_the_same_event_again_has_the_same_key_and_name() -> None:
    first = event_key(_involved(), "StampedObjectApplied", "created ConfigMap", "reconciler")
    again = event_key(_involved(), "StampedObjectApplied", "created ConfigMap", "reconciler")
    assert first == again == ("uid-hello", "StampedObjectApplied", "created ConfigMap",
                              "reconciler")
    assert event_name(_involved(), first) == event_name(_involved(), again)


@pytest.mark.parametrize("change", ["uid", "reason", "message", "source"])
def test_a_different_uid_reason_message_or_source_is_another_event(change: str) -> None:
    def key_of(fields: dict[str, str]) -> tuple[dict[str, Any], EventKey]:
        involved = _involved()
        involved["metadata"]["uid"] = fields["uid"]
        return involved, event_key(involved, fields["reason"], fields["message"],
                                   fields["source"])

    fields = {"uid": "uid-hello", "reason": "R", "message": "M", "source": "reconciler"}
    involved, key = key_of(fields)
    other_involved, other = key_of({**fields, change: "other"})
    assert key != other
    assert event_name(involved, key) != event_name(other_involved, other)


def test_event_names_fit_an_object_name() -> None:
    involved = _involved(name="x" * 253)
    name = event_name(involved, event_key(involved, "R", "M", "reconciler"))
    assert len(name) <= 253 and name.startswith("x" * 236 + ".")


def test_a_new_event_has_the_simulators_shape() -> None:
    event = new_event(_involved(), "Normal", "R", "M", "reconciler", now=0.0)
    assert event["metadata"]["namespace"] == "team-a"
    assert event["metadata"]["name"] == event_name(_involved(),
                                                   event_key(_involved(), "R", "M", "reconciler"))
    assert event["involvedObject"] == {"apiVersion": "carto.run/v1alpha1", "kind": "Workload",
                                       "namespace": "team-a", "name": "hello",
                                       "uid": "uid-hello"}
    assert (event["type"], event["reason"], event["message"], event["count"]) == (
        "Normal", "R", "M", 1)
    assert event["source"] == {"component": "reconciler"}
    assert event["firstTimestamp"] == event["lastTimestamp"] == "1970-01-01T00:00:00Z"


def test_events_of_cluster_scoped_objects_go_to_default() -> None:
    involved = _involved(namespace=None)
    assert event_namespace(involved) == "default"
    assert "namespace" not in new_event(involved, "Normal", "R", "M", "c", 0.0)["involvedObject"]


# --- the write counter behind Environment.revision() ----------------------------------------


def test_writes_count_only_when_the_resource_version_moves() -> None:
    counter = WriteCounter()
    key = ("", "ConfigMap", "team-a", "cfg")
    assert counter.wrote(key, "1") and counter.count == 1, "an object never seen counts"
    assert not counter.wrote(key, "1") and counter.count == 1, "a no-op apply does not"
    counter.observe(key, "5")  # someone else changed it; we read it
    assert not counter.wrote(key, "5") and counter.count == 1
    assert counter.wrote(key, "6") and counter.count == 2
    assert counter.wrote(key, "") and counter.count == 3, "no resourceVersion: assume a change"
    counter.removed(key)
    assert counter.count == 4
    assert counter.wrote(key, "6"), "re-created after a delete"


# --- environment ------------------------------------------------------------------------


def _offline_environment() -> KubernetesEnvironment:
    # The backend dials out only when asked to do something; these tests never ask.
    return KubernetesEnvironment(KubernetesBackend(dynamic=None))


def test_the_environment_has_real_time_no_controllers_and_no_state_files(tmp_path: Path) -> None:
    env: Environment = _offline_environment()
    assert isinstance(env.clock, SystemClock)
    assert tuple(env.controllers) == ()
    assert env.revision() == 0
    env.advance(3600)
    assert env.revision() == 0
    for call in (env.save_state, env.load_state):
        with pytest.raises(StateNotSupported, match="state files are a simulator feature"):
            call(tmp_path / "state.json")
    assert issubclass(StateNotSupported, ReconcilerError)
    assert not (tmp_path / "state.json").exists()


def test_the_environment_is_installed_under_its_entry_point_name() -> None:
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == "kubernetes"]
    assert len(found) == 1
    assert found[0].load() is create_environment


def test_a_missing_kubeconfig_is_a_clear_error(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nope.yaml"
    monkeypatch.setenv("RECONCILER_KUBECONFIG", str(missing))
    with pytest.raises(BackendError, match=f"kubeconfig {missing} does not exist"):
        load_environment("kubernetes")


def test_an_unreadable_kubeconfig_is_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "kubeconfig"
    broken.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\n")
    with pytest.raises(BackendError, match="cannot load Kubernetes configuration from"):
        create_environment(kubeconfig=broken, environ={})


def test_an_unreachable_api_server_is_a_clear_error(tmp_path: Path) -> None:
    # Bound but not listening for the whole test: connections are refused, and no other test
    # running in parallel can take the port meanwhile (a port closed again could be reused).
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    port: int = held.getsockname()[1]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(f"""\
apiVersion: v1
kind: Config
clusters:
- name: gone
  cluster:
    server: https://127.0.0.1:{port}
    insecure-skip-tls-verify: true
users:
- name: me
  user:
    token: not-a-real-token
contexts:
- name: gone
  context: {{cluster: gone, user: me}}
current-context: gone
""")
    with held, pytest.raises(BackendError, match=f"cannot reach the API server at "
                                                 f"https://127.0.0.1:{port} \\({kubeconfig}\\)"):
        connect(kubeconfig, request_timeout=2.0)


def test_discovery_is_not_read_from_the_shared_temp_cache(tmp_path: Path) -> None:
    """The client's default discovery cache, /tmp/osrcp-<md5(host)>.json, is shared by every
    process and user: one planted there (or left by another cluster once served at the same
    address) must not stand in for the API server."""
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    host = f"https://127.0.0.1:{held.getsockname()[1]}"
    shared = Path(tempfile.gettempdir()) / (
        "osrcp-" + hashlib.md5(host.encode(), usedforsecurity=False).hexdigest() + ".json")
    # What the client would accept as a complete cache: its own version, a server version and
    # resources, so it makes no request at all.
    shared.write_text(json.dumps({"library_version": kubernetes_version,
                                  "version": {"kubernetes": {"major": "1", "minor": "35"}},
                                  "resources": {"api": {}}}))
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n"
        f"    server: {host}\n    insecure-skip-tls-verify: true\n"
        "users:\n- name: u\n  user:\n    token: t\n"
        "contexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\n")
    try:
        with held, pytest.raises(BackendError, match="cannot reach the API server"):
            connect(kubeconfig, request_timeout=2.0)
    finally:
        shared.unlink(missing_ok=True)
