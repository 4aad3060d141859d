"""Multi-tenancy: which identity an owner's writes go as (Cartographer's and Flux's precedence,
table tests), the backend view that writes as it while reading through the controller's own
backend, the Kubernetes client's per-request impersonation headers, and how a refusal ends on a
Workload and a Kustomization."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from reconciler.backends.base import (
    FIELD_MANAGER,
    Backend,
    Identity,
    Impersonating,
    WritesAs,
    impersonated,
    impersonating_backend,
)
from reconciler.backends.kubernetes import (
    Operation,
    _ImpersonatingPool,
    acting_as,
    map_api_exception,
)
from reconciler.engine.kustomization import KustomizationReconciler, kustomization_identity
from reconciler.engine.owner import (
    WORKLOAD,
    OwnerController,
    service_account_for,
)
from reconciler.engine.runnable import RunnableController, runnable_identity
from reconciler.engine.tracking import TrackingBackend
from reconciler.model.conditions import find_condition
from reconciler.model.errors import BackendError, InputError
from reconciler.model.kinds import KindInfo
from reconciler.model.objects import Obj, name_of
from reconciler.settings import KubernetesSettings
from reconciler.sources.artifacts import ArtifactStore
from simulator.environment import SimulatedEnvironment

API = "carto.run/v1alpha1"


def _owner(namespace: str = "dev", account: str | None = None) -> Obj:
    spec: dict[str, Any] = {}
    if account is not None:
        spec["serviceAccountName"] = account
    return {"apiVersion": API, "kind": "Workload",
            "metadata": {"name": "app", "namespace": namespace}, "spec": spec}


def _blueprint(ref: dict[str, Any] | None) -> Obj:
    spec: dict[str, Any] = {"resources": []}
    if ref is not None:
        spec["serviceAccountRef"] = ref
    return {"apiVersion": API, "kind": "ClusterSupplyChain", "metadata": {"name": "chain"},
            "spec": spec}


# --- who: Cartographer's precedence -----------------------------------------------------------


@pytest.mark.parametrize(
    ("account", "ref", "expected"),
    [
        (None, None, ("dev", "default")),
        ("", None, ("dev", "default")),
        (None, {}, ("dev", "default")),
        (None, {"name": ""}, ("dev", "default")),
        (None, {"name": "operator-sa"}, ("dev", "operator-sa")),
        (None, {"name": "operator-sa", "namespace": ""}, ("dev", "operator-sa")),
        (None, {"name": "operator-sa", "namespace": "ops"}, ("ops", "operator-sa")),
        ("mine", None, ("dev", "mine")),
        ("mine", {"name": "operator-sa"}, ("dev", "mine")),
        # The owner's own name is in the owner's namespace, whatever the blueprint's says.
        ("mine", {"name": "operator-sa", "namespace": "ops"}, ("dev", "mine")),
    ],
    ids=["nothing", "empty-name", "empty-ref", "ref-without-name", "ref-name",
         "ref-empty-namespace", "ref-name-and-namespace", "owner-name", "owner-beats-ref",
         "owner-beats-ref-namespace"],
)
def test_owner_service_account_precedence(account: str | None, ref: dict[str, Any] | None,
                                          expected: tuple[str, str]) -> None:
    assert service_account_for(_owner("dev", account), _blueprint(ref)) == expected


def test_owner_without_a_blueprint_yet_is_the_namespace_default() -> None:
    assert service_account_for(_owner("dev"), None) == ("dev", "default")


def test_owner_identity_is_the_service_accounts_user_and_groups() -> None:
    identity = Identity.service_account(
        *service_account_for(_owner("dev", "mine"), _blueprint({"name": "x"})))
    assert identity == Identity("system:serviceaccount:dev:mine", (
        "system:serviceaccounts", "system:serviceaccounts:dev", "system:authenticated"))
    assert identity.service_account_ref == ("dev", "mine")
    assert str(identity) == "ServiceAccount dev/mine"
    assert str(Identity("alice")) == "user 'alice'"
    assert Identity("alice").service_account_ref is None


# --- who: Flux's precedence -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("account", "default", "expected"),
    [
        (None, None, None),
        ("", None, None),
        (None, "flux-default", "system:serviceaccount:team:flux-default"),
        ("tenant", None, "system:serviceaccount:team:tenant"),
        ("tenant", "flux-default", "system:serviceaccount:team:tenant"),
    ],
    ids=["controller-itself", "empty-name", "default-flag", "own-name", "own-beats-default"],
)
def test_kustomization_identity_precedence(account: str | None, default: str | None,
                                           expected: str | None) -> None:
    spec: dict[str, Any] = {} if account is None else {"serviceAccountName": account}
    ks = {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
          "metadata": {"name": "apps", "namespace": "team"}, "spec": spec}
    identity = kustomization_identity(ks, default)
    assert (identity.user if identity else None) == expected
    if identity is not None:
        assert identity.groups == ("system:serviceaccounts", "system:serviceaccounts:team",
                                   "system:authenticated")


def test_default_service_account_setting() -> None:
    assert KubernetesSettings().default_service_account is None
    settings = KubernetesSettings.from_environ(
        {"RECONCILER_KUBE_DEFAULT_SERVICE_ACCOUNT": "flux-default"})
    assert settings.default_service_account == "flux-default"
    for bad in ("", "ns:name", "ns/name"):
        with pytest.raises(InputError, match="default service account"):
            KubernetesSettings(default_service_account=bad)


# --- the view ----------------------------------------------------------------------------------


class Recording:
    """An impersonating backend over the in-memory cluster: records who each write went as,
    and refuses writes of `refused` kinds for identities not in `allowed`, with kube's 403."""

    def __init__(self, inner: Any, refused: Sequence[str] = (),
                 allowed: Sequence[str] = ()) -> None:
        self.inner = inner
        self.refused, self.allowed = set(refused), set(allowed)
        self.writes: list[tuple[str, str, str]] = []  # (user, verb, kind/name)

    def as_user(self, user: str, groups: Sequence[str] = ()) -> Backend:
        return _RecordingView(self, Identity(user, tuple(groups)))

    # The controller's own identity: everything forwards to the cluster.
    def kind_info(self, api_version: str, kind: str) -> KindInfo:
        return self.inner.kind_info(api_version, kind)  # type: ignore[no-any-return]

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        return self.inner.get(api_version, kind, namespace, name)  # type: ignore[no-any-return]

    def list(self, api_version: str, kind: str, namespace: str | None = None,
             labels: Mapping[str, str] | None = None) -> list[Obj]:
        return self.inner.list(api_version, kind, namespace, labels)  # type: ignore[no-any-return]

    def apply(self, obj: Obj, field_manager: str = FIELD_MANAGER, force: bool = False) -> Obj:
        self.writes.append(("controller", "patch", f"{obj['kind']}/{name_of(obj)}"))
        return self.inner.apply(obj, field_manager, force)  # type: ignore[no-any-return]

    def update_status(self, obj: Obj) -> Obj:
        self.writes.append(("controller", "status", f"{obj['kind']}/{name_of(obj)}"))
        return self.inner.update_status(obj)  # type: ignore[no-any-return]

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        self.writes.append(("controller", "delete", f"{kind}/{name}"))
        self.inner.delete(api_version, kind, namespace, name)

    def emit_event(self, involved: Obj, type_: str, reason: str, message: str,
                   source: str = FIELD_MANAGER) -> None:
        self.inner.emit_event(involved, type_, reason, message, source)

    def events(self) -> Sequence[Obj]:
        return self.inner.events()  # type: ignore[no-any-return]


class _RecordingView:
    def __init__(self, base: Recording, identity: Identity) -> None:
        self.base, self.identity = base, identity

    def _check(self, verb: str, kind: str, namespace: str, name: str) -> None:
        self.base.writes.append((self.identity.user, verb, f"{kind}/{name}"))
        if kind in self.base.refused and self.identity.user not in self.base.allowed:
            plural = kind.lower() + "s"
            raise BackendError(
                f'forbidden to {verb} {plural} {name!r} in namespace {namespace!r}: {plural} '
                f'"{name}" is forbidden: User "{self.identity.user}" cannot {verb} resource '
                f'"{plural}" in API group "" in the namespace "{namespace}"')

    def kind_info(self, api_version: str, kind: str) -> KindInfo:
        raise AssertionError("a view's reads go through the controller's backend")

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        raise AssertionError("a view's reads go through the controller's backend")

    def list(self, api_version: str, kind: str, namespace: str | None = None,
             labels: Mapping[str, str] | None = None) -> list[Obj]:
        raise AssertionError("a view's reads go through the controller's backend")

    def apply(self, obj: Obj, field_manager: str = FIELD_MANAGER, force: bool = False) -> Obj:
        meta = obj.get("metadata") or {}
        self._check("patch", str(obj["kind"]), str(meta.get("namespace") or ""), name_of(obj))
        return self.base.inner.apply(obj, field_manager, force)  # type: ignore[no-any-return]

    def update_status(self, obj: Obj) -> Obj:
        raise AssertionError("not used")

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        self._check("delete", kind, namespace, name)
        self.base.inner.delete(api_version, kind, namespace, name)

    def emit_event(self, involved: Obj, type_: str, reason: str, message: str,
                   source: str = FIELD_MANAGER) -> None:
        raise AssertionError("events are the controller's")

    def events(self) -> Sequence[Obj]:
        raise AssertionError("events are the controller's")


def test_a_backend_without_authentication_is_its_own_view() -> None:
    cluster = SimulatedEnvironment().cluster
    assert not isinstance(cluster, Impersonating)
    assert impersonating_backend(cluster) is None
    assert impersonated(cluster, Identity.service_account("dev", "x")) is cluster
    tracked = TrackingBackend(cluster)
    assert impersonated(tracked, Identity.service_account("dev", "x")) is tracked
    assert impersonated(tracked, None) is tracked


def test_the_view_writes_as_the_identity_and_reads_through_the_tracked_backend() -> None:
    cluster = SimulatedEnvironment().cluster
    recording = Recording(cluster)
    tracked = TrackingBackend(recording)
    assert impersonating_backend(tracked) is recording
    identity = Identity.service_account("default", "tenant")
    view = impersonated(tracked, identity)
    assert isinstance(view, WritesAs) and view.identity == identity
    tracked.begin()
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "c", "namespace": "default"}, "data": {"a": "1"}}
    view.apply(cm)
    assert view.get("v1", "ConfigMap", "default", "c") is not None
    view.delete("v1", "ConfigMap", "default", "c")
    reads = tracked.end()
    assert ("key", "", "ConfigMap", "default", "c") in reads.dependencies
    assert recording.writes == [(identity.user, "patch", "ConfigMap/c"),
                                (identity.user, "delete", "ConfigMap/c")]


# --- the owner controller --------------------------------------------------------------------


def _template() -> Obj:
    return {"apiVersion": API, "kind": "ClusterConfigTemplate", "metadata": {"name": "settings"},
            "spec": {"configPath": ".data", "template": {
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "$(workload.metadata.name)$-settings"},
                "data": {"value": "one"}}}}


def _chain(ref: dict[str, Any] | None = None) -> Obj:
    spec: dict[str, Any] = {"selector": {"app": "x"}, "resources": [
        {"name": "settings", "templateRef": {"kind": "ClusterConfigTemplate",
                                             "name": "settings"}}]}
    if ref is not None:
        spec["serviceAccountRef"] = ref
    return {"apiVersion": API, "kind": "ClusterSupplyChain", "metadata": {"name": "chain"},
            "spec": spec}


def _workload(account: str | None = None) -> Obj:
    spec: dict[str, Any] = {}
    if account:
        spec["serviceAccountName"] = account
    return {"apiVersion": API, "kind": "Workload",
            "metadata": {"name": "app", "namespace": "default", "labels": {"app": "x"}},
            "spec": spec}


def _owner_world(recording_args: dict[str, Any], chain_ref: dict[str, Any] | None,
                 account: str | None) -> tuple[Any, Recording, OwnerController]:
    env = SimulatedEnvironment()
    cluster = env.cluster
    for obj in (_template(), _chain(chain_ref), _workload(account)):
        cluster.apply(obj)
    recording = Recording(cluster, **recording_args)
    return cluster, recording, OwnerController(recording, env.clock, WORKLOAD)


@pytest.mark.parametrize(
    ("chain_ref", "account", "user"),
    [(None, None, "system:serviceaccount:default:default"),
     ({"name": "ops", "namespace": "ops-ns"}, None, "system:serviceaccount:ops-ns:ops"),
     ({"name": "ops"}, "mine", "system:serviceaccount:default:mine")],
    ids=["namespace-default", "blueprint-ref", "workload-name"],
)
def test_the_owner_stamps_as_its_service_account_and_writes_status_as_itself(
        chain_ref: dict[str, Any] | None, account: str | None, user: str) -> None:
    cluster, recording, controller = _owner_world({}, chain_ref, account)
    workload = cluster.get(API, "Workload", "default", "app")
    controller.reconcile(workload)
    assert (user, "patch", "ConfigMap/app-settings") in recording.writes
    assert ("controller", "status", "Workload/app") in recording.writes
    assert not [w for w in recording.writes if w[0] == "controller" and w[1] != "status"]
    after = cluster.get(API, "Workload", "default", "app")
    ready = find_condition(after["status"]["conditions"], "Ready")
    assert ready is not None and ready["status"] == "True"


def test_a_refused_apply_is_template_rejected_naming_the_service_account() -> None:
    cluster, _, controller = _owner_world({"refused": ["ConfigMap"]}, None, "tenant")
    controller.reconcile(cluster.get(API, "Workload", "default", "app"))
    after = cluster.get(API, "Workload", "default", "app")
    conditions = after["status"]["conditions"]
    submitted = find_condition(conditions, "ResourcesSubmitted")
    ready = find_condition(conditions, "Ready")
    assert submitted is not None and ready is not None
    assert (submitted["status"], submitted["reason"]) == ("False", "TemplateRejectedByAPIServer")
    assert (ready["status"], ready["reason"]) == ("False", "TemplateRejectedByAPIServer")
    assert ('User "system:serviceaccount:default:tenant" cannot patch resource "configmaps"'
            in submitted["message"])
    assert cluster.get("v1", "ConfigMap", "default", "app-settings") is None


def test_orphans_are_deleted_as_the_owner() -> None:
    cluster, recording, controller = _owner_world({}, None, "tenant")
    controller.reconcile(cluster.get(API, "Workload", "default", "app"))
    assert cluster.get("v1", "ConfigMap", "default", "app-settings") is not None
    # The template now stamps another name: the old object is an orphan, deleted as the SA.
    template = _template()
    template["spec"]["template"]["metadata"]["name"] = "$(workload.metadata.name)$-renamed"
    cluster.apply(template)
    controller.reconcile(cluster.get(API, "Workload", "default", "app"))
    assert ("system:serviceaccount:default:tenant", "delete",
            "ConfigMap/app-settings") in recording.writes
    assert cluster.get("v1", "ConfigMap", "default", "app-settings") is None


# --- the Kustomization controller --------------------------------------------------------------


def _kustomization_world(tmp_path: Path, recording_args: dict[str, Any],
                         spec: dict[str, Any], default: str | None = None
                         ) -> tuple[Any, Recording, KustomizationReconciler]:
    env = SimulatedEnvironment()
    cluster = env.cluster
    store = ArtifactStore(tmp_path / "store", "http://artifacts.test")
    cluster.apply({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                   "metadata": {"name": "config", "namespace": "default"},
                   "spec": {"url": "https://example.com/config.git", "interval": "1m"}})
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n"
                                    "data:\n  a: \"1\"\n")
    artifact = store.store_directory("GitRepository", "default", "config", "main@sha1:aaa",
                                     folder, now="2026-01-01T00:00:00Z")
    live = cluster.get("source.toolkit.fluxcd.io/v1", "GitRepository", "default", "config")
    assert live is not None
    cluster.update_status({**live, "status": {"artifact": artifact.to_status()}})
    cluster.apply({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                   "metadata": {"name": "apps", "namespace": "default"},
                   "spec": {"interval": "10m", "path": "./", "prune": True,
                            "targetNamespace": "default",
                            "sourceRef": {"kind": "GitRepository", "name": "config"},
                            **spec}})
    recording = Recording(cluster, **recording_args)
    return cluster, recording, KustomizationReconciler(
        recording, env.clock, store, default_service_account=default)


@pytest.mark.parametrize(
    ("spec", "default", "user"),
    [({}, None, "controller"),
     ({}, "flux-default", "system:serviceaccount:default:flux-default"),
     ({"serviceAccountName": "tenant"}, "flux-default", "system:serviceaccount:default:tenant")],
    ids=["controller", "default-flag", "own-account"],
)
def test_the_kustomization_applies_as_its_identity(tmp_path: Path, spec: dict[str, Any],
                                                   default: str | None, user: str) -> None:
    cluster, recording, controller = _kustomization_world(tmp_path, {}, spec, default)
    controller.reconcile(cluster.get("kustomize.toolkit.fluxcd.io/v1", "Kustomization",
                                     "default", "apps"))
    assert (user, "patch", "ConfigMap/web") in recording.writes


def test_a_refused_kustomization_apply_is_ready_false_with_the_message(tmp_path: Path) -> None:
    cluster, _, controller = _kustomization_world(
        tmp_path, {"refused": ["ConfigMap"]}, {"serviceAccountName": "tenant"})
    controller.reconcile(cluster.get("kustomize.toolkit.fluxcd.io/v1", "Kustomization",
                                     "default", "apps"))
    after = cluster.get("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "default", "apps")
    ready = find_condition(after["status"]["conditions"], "Ready")
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("False", "ReconciliationFailed")
    assert ('User "system:serviceaccount:default:tenant" cannot patch resource "configmaps"'
            in ready["message"])
    assert cluster.get("v1", "ConfigMap", "default", "web") is None


def test_kustomization_default_comes_from_the_kubernetes_backend_setting() -> None:
    env = SimulatedEnvironment()

    class WithDefault(Recording):
        default_service_account = "from-settings"

    controller = KustomizationReconciler(TrackingBackend(WithDefault(env.cluster)), env.clock,
                                         ArtifactStore(Path("/nonexistent"), "http://x"))
    assert controller.default_service_account == "from-settings"
    explicit = KustomizationReconciler(WithDefault(env.cluster), env.clock,
                                       ArtifactStore(Path("/nonexistent"), "http://x"),
                                       default_service_account="explicit")
    assert explicit.default_service_account == "explicit"


# --- the Runnable controller -------------------------------------------------------------------


def _runnable_world(recording_args: dict[str, Any], account: str | None
                    ) -> tuple[Any, Recording, RunnableController]:
    env = SimulatedEnvironment()
    cluster = env.cluster
    cluster.apply({"apiVersion": API, "kind": "ClusterRunTemplate", "metadata": {"name": "tpl"},
                   "spec": {"template": {"apiVersion": "v1", "kind": "ConfigMap",
                                         "metadata": {"generateName": "run-"},
                                         "data": {"url": "$(runnable.spec.inputs.url)$"}}}})
    if account:
        cluster.apply({"apiVersion": "v1", "kind": "ServiceAccount",
                       "metadata": {"name": account, "namespace": "default"}})
    spec: dict[str, Any] = {"runTemplateRef": {"name": "tpl"}, "inputs": {"url": "https://a"}}
    if account is not None:
        spec["serviceAccountName"] = account
    cluster.apply({"apiVersion": API, "kind": "Runnable",
                   "metadata": {"name": "r", "namespace": "default"}, "spec": spec})
    recording = Recording(cluster, **recording_args)
    return cluster, recording, RunnableController(recording, env.clock)


@pytest.mark.parametrize(
    ("account", "user"),
    [(None, "system:serviceaccount:default:default"),
     ("", "system:serviceaccount:default:default"),
     ("runner", "system:serviceaccount:default:runner")],
    ids=["namespace-default", "empty-name", "own-account"],
)
def test_the_runnable_stamps_its_run_as_its_service_account(account: str | None,
                                                            user: str) -> None:
    cluster, recording, controller = _runnable_world({}, account)
    runnable = cluster.get(API, "Runnable", "default", "r")
    assert runnable_identity(runnable).user == user
    controller.reconcile(runnable)
    stamped = [w for w in recording.writes if w[1] == "patch"]
    assert [(w[0], w[2].split("/")[0]) for w in stamped] == [(user, "ConfigMap")]
    # The Runnable's own status stays the controller's.
    assert ("controller", "status", "Runnable/r") in recording.writes
    assert not [w for w in recording.writes if w[0] == "controller" and w[1] != "status"]


def test_a_refused_run_is_rejected_naming_the_service_account() -> None:
    cluster, _, controller = _runnable_world({"refused": ["ConfigMap"]}, "runner")
    controller.reconcile(cluster.get(API, "Runnable", "default", "r"))
    after = cluster.get(API, "Runnable", "default", "r")
    cond = find_condition(after["status"]["conditions"], "RunTemplateReady")
    assert cond is not None
    assert (cond["status"], cond["reason"]) == ("False", "StampedObjectRejectedByAPIServer")
    assert ('User "system:serviceaccount:default:runner" cannot patch resource "configmaps"'
            in cond["message"])
    assert cluster.list("v1", "ConfigMap", "default") == []


def test_runs_beyond_retention_are_deleted_as_the_runnables_account(
        monkeypatch: pytest.MonkeyPatch) -> None:
    cluster, recording, controller = _runnable_world({}, "runner")
    controller.reconcile(cluster.get(API, "Runnable", "default", "r"))
    (run,) = cluster.list("v1", "ConfigMap", "default")
    # Whichever runs the policy lets go: here, the one just stamped.
    monkeypatch.setattr("reconciler.engine.runnable.runs_to_delete",
                        lambda runs, policy: [r for r in runs if name_of(r) == name_of(run)])
    controller.reconcile(cluster.get(API, "Runnable", "default", "r"))
    assert ("system:serviceaccount:default:runner", "delete",
            f"ConfigMap/{name_of(run)}") in recording.writes
    assert cluster.get("v1", "ConfigMap", "default", name_of(run)) is None


# --- the Kubernetes client's headers and messages -----------------------------------------------


class _Pool:
    def __init__(self) -> None:
        self.headers: list[list[tuple[str, str]]] = []

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> None:
        headers = kwargs.get("headers")
        self.headers.append(list(headers.items()) if headers is not None else [])


def _impersonation(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers if k.lower().startswith("impersonate-")]


def test_the_pool_sends_the_contexts_identity_else_the_settings_one() -> None:
    inner = _Pool()
    pool = _ImpersonatingPool(inner, None, ())
    pool.request("GET", "/x", headers={"Accept": "application/json"})
    with acting_as(Identity.service_account("dev", "tenant")):
        pool.request("PATCH", "/x", headers={"Impersonate-User": "spoofed"})
    pool.request("GET", "/x")
    assert _impersonation(inner.headers[0]) == []
    # A ServiceAccount's own groups are the API server's to add: only the user is sent, so
    # the controller needs `impersonate` on serviceaccounts alone.
    assert _impersonation(inner.headers[1]) == [
        ("Impersonate-User", "system:serviceaccount:dev:tenant")]
    assert _impersonation(inner.headers[2]) == []
    with acting_as(Identity("system:serviceaccount:dev:tenant", ("extra",))):
        pool.request("GET", "/x")
    assert _impersonation(inner.headers.pop()) == [
        ("Impersonate-User", "system:serviceaccount:dev:tenant"),
        ("Impersonate-Group", "extra")]
    configured = _ImpersonatingPool(inner, "alice", ("team",))
    configured.request("GET", "/x")
    with acting_as(Identity("bob")):
        configured.request("GET", "/x")
    assert _impersonation(inner.headers[3]) == [("Impersonate-User", "alice"),
                                                ("Impersonate-Group", "team")]
    assert _impersonation(inner.headers[4]) == [("Impersonate-User", "bob")]


class _ApiError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.status = 403
        self.body = json.dumps({"kind": "Status", "status": "Failure", "reason": "Forbidden",
                                "code": 403, "message": message})


def test_a_403_as_a_tenant_says_whom_to_grant() -> None:
    tenant = Identity.service_account("dev", "tenant")
    denied = _ApiError('configmaps "c" is forbidden: User "system:serviceaccount:dev:tenant" '
                       'cannot patch resource "configmaps" in API group "" in the namespace '
                       '"dev"')
    error = map_api_exception(denied, Operation("patch", "configmaps", "dev", "c"),
                              identity=tenant)
    assert "Grant ServiceAccount dev/tenant the 'patch' verb on 'configmaps'" in str(error)
    assert 'User "system:serviceaccount:dev:tenant" cannot patch' in str(error)
    refused = _ApiError('serviceaccounts "tenant" is forbidden: User "ctl" cannot impersonate '
                        'resource "serviceaccounts" in API group "" in the namespace "dev"')
    error = map_api_exception(refused, Operation("patch", "configmaps", "dev", "c"),
                              identity=tenant)
    assert "Grant the reconciler's identity the 'impersonate' verb on 'serviceaccounts'" in str(
        error)
