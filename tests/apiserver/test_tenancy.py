"""Multi-tenancy against `reconciler serve --rbac`: the product's controllers run in-process over
`KubernetesBackend` (the kubeconfig's admin, allowed to impersonate), and what they write for an
owner goes as the owner's ServiceAccount, so the served cluster's RBAC decides.

A tenant Workload whose ServiceAccount may only read ConfigMaps, with a chain that stamps one,
gets ResourcesSubmitted=False / Ready=False `TemplateRejectedByAPIServer` with the API server's
message (naming the ServiceAccount, the verb and the resource) and nothing is created; once a
RoleBinding grants what server-side apply needs, it goes Ready. The same for a Kustomization
(Flux's `spec.serviceAccountName`), and for the view itself (`KubernetesBackend.as_user`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from reconciler.backends.base import Identity
from reconciler.backends.kubernetes import KubernetesBackend, connect
from reconciler.engine.blueprints import BlueprintController
from reconciler.engine.kustomization import KustomizationReconciler
from reconciler.engine.owner import WORKLOAD, OwnerController
from reconciler.model.errors import BackendError
from reconciler.model.objects import Obj
from reconciler.runtime.clock import SystemClock
from reconciler.settings import KubernetesSettings
from reconciler.sources.artifacts import ArtifactStore
from tests.apiserver.conftest import Served, serving

API = "carto.run/v1alpha1"
KS_API = "kustomize.toolkit.fluxcd.io/v1"
SOURCE_API = "source.toolkit.fluxcd.io/v1"
RBAC_API = "rbac.authorization.k8s.io/v1"


@pytest.fixture(scope="module")
def rbac(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("tenancy"),
                 "--rbac", "--controllers", "ecosystem") as server:
        yield server


@pytest.fixture
def admin(rbac: Served) -> Iterator[KubernetesBackend]:
    """The controllers' backend: the kubeconfig's admin, with informers (as the daemon runs)."""
    backend = connect(rbac.kubeconfig)
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture
def reader(rbac: Served) -> Iterator[KubernetesBackend]:
    """Plain requests, to see what the served cluster holds (no cache in between)."""
    backend = connect(rbac.kubeconfig, settings=KubernetesSettings(informers=False))
    try:
        yield backend
    finally:
        backend.close()


def _tenant(backend: KubernetesBackend, verbs: list[str], account: str = "tenant") -> str:
    """A fresh namespace with ServiceAccount `account`, bound to a Role allowing `verbs` on
    ConfigMaps."""
    ns = f"tenant-{uuid.uuid4().hex[:8]}"
    backend.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    backend.apply({"apiVersion": "v1", "kind": "ServiceAccount",
                   "metadata": {"name": account, "namespace": ns}})
    _grant(backend, ns, "configmaps-" + "-".join(verbs), verbs, account)
    return ns


def _grant(backend: KubernetesBackend, ns: str, name: str, verbs: list[str],
           account: str = "tenant", group: str | None = None) -> None:
    subject = ({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}
               if group else {"kind": "ServiceAccount", "name": account, "namespace": ns})
    backend.apply({"apiVersion": RBAC_API, "kind": "Role",
                   "metadata": {"name": name, "namespace": ns},
                   "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": verbs}]})
    backend.apply({"apiVersion": RBAC_API, "kind": "RoleBinding",
                   "metadata": {"name": name, "namespace": ns},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                               "name": name},
                   "subjects": [subject]})


def _cm(ns: str, name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns},
            "data": {"a": "1"}}


# --- the view ----------------------------------------------------------------------------------


def test_a_view_writes_as_the_service_account(admin: KubernetesBackend,
                                              reader: KubernetesBackend) -> None:
    ns = _tenant(admin, ["get", "list", "watch"])
    identity = Identity.service_account(ns, "tenant")
    view = admin.as_user(identity.user, identity.groups)
    with pytest.raises(BackendError) as refused:
        view.apply(_cm(ns, "made-by-tenant"))
    message = str(refused.value)
    assert (f'User "system:serviceaccount:{ns}:tenant" cannot patch resource "configmaps" in '
            f'API group "" in the namespace "{ns}"') in message
    assert f"Grant ServiceAccount {ns}/tenant the 'patch' verb on 'configmaps'" in message
    assert reader.get("v1", "ConfigMap", ns, "made-by-tenant") is None
    # The controller's own identity is untouched by the view.
    admin.apply(_cm(ns, "made-by-admin"))
    with pytest.raises(BackendError, match="cannot delete resource"):
        view.delete("v1", "ConfigMap", ns, "made-by-admin")
    assert reader.get("v1", "ConfigMap", ns, "made-by-admin") is not None
    # Reads go through the controller's caches: the view sees what the tenant may not list.
    assert view.get("v1", "ConfigMap", ns, "made-by-admin") is not None
    # Bound to the namespace's ServiceAccounts group: the API server gives the impersonated
    # ServiceAccount its groups.
    _grant(admin, ns, "configmaps-write", ["create", "patch", "delete"],
           group=f"system:serviceaccounts:{ns}")
    view.apply(_cm(ns, "made-by-tenant"))
    assert reader.get("v1", "ConfigMap", ns, "made-by-tenant") is not None
    view.delete("v1", "ConfigMap", ns, "made-by-tenant")
    assert reader.get("v1", "ConfigMap", ns, "made-by-tenant") is None


def test_a_view_cannot_reach_another_namespace(admin: KubernetesBackend,
                                               reader: KubernetesBackend) -> None:
    ns = _tenant(admin, ["get", "create", "patch"])
    other = _tenant(admin, ["get"], account="someone")
    view = admin.as_user(*_user_and_groups(Identity.service_account(ns, "tenant")))
    view.apply(_cm(ns, "mine"))
    with pytest.raises(BackendError, match=f'cannot patch resource "configmaps" in API group '
                                           f'"" in the namespace "{other}"'):
        view.apply(_cm(other, "theirs"))
    assert reader.get("v1", "ConfigMap", other, "theirs") is None


def _user_and_groups(identity: Identity) -> tuple[str, tuple[str, ...]]:
    return identity.user, identity.groups


# --- a tenant Workload -----------------------------------------------------------------------


def _supply_chain(suffix: str) -> list[Obj]:
    template = {"apiVersion": API, "kind": "ClusterConfigTemplate",
                "metadata": {"name": f"settings-{suffix}"},
                "spec": {"configPath": ".data", "template": {
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "$(workload.metadata.name)$-settings"},
                    "data": {"greeting": "hello"}}}}
    chain = {"apiVersion": API, "kind": "ClusterSupplyChain",
             "metadata": {"name": f"chain-{suffix}"},
             "spec": {"selector": {"tenancy-test": suffix}, "resources": [
                 {"name": "settings", "templateRef": {"kind": "ClusterConfigTemplate",
                                                      "name": f"settings-{suffix}"}}]}}
    return [template, chain]


def _conditions(obj: Obj | None) -> dict[str, tuple[str, str, str]]:
    assert obj is not None
    return {c["type"]: (c["status"], c["reason"], c.get("message", ""))
            for c in (obj.get("status") or {}).get("conditions") or []}


def test_a_tenant_workload_is_refused_then_ready_once_granted(
        admin: KubernetesBackend, reader: KubernetesBackend) -> None:
    ns = _tenant(admin, ["get"])
    suffix = ns.split("-", 1)[1]
    for obj in _supply_chain(suffix):
        admin.apply(obj)
    admin.apply({"apiVersion": API, "kind": "Workload",
                 "metadata": {"name": "app", "namespace": ns,
                              "labels": {"tenancy-test": suffix}},
                 "spec": {"serviceAccountName": "tenant"}})
    clock = SystemClock()
    chains = BlueprintController(admin, clock, WORKLOAD.blueprint_kind)
    owners = OwnerController(admin, clock, WORKLOAD)

    def reconcile() -> Obj | None:
        chain = admin.get(API, "ClusterSupplyChain", "", f"chain-{suffix}")
        assert chain is not None
        chains.reconcile(chain)
        workload = admin.get(API, "Workload", ns, "app")
        assert workload is not None
        owners.reconcile(workload)
        return reader.get(API, "Workload", ns, "app")

    conditions = _conditions(reconcile())
    user = f"system:serviceaccount:{ns}:tenant"
    for type_ in ("ResourcesSubmitted", "Ready"):
        status, reason, message = conditions[type_]
        assert (status, reason) == ("False", "TemplateRejectedByAPIServer"), conditions
        assert (f'User "{user}" cannot patch resource "configmaps" in API group "" in the '
                f'namespace "{ns}"') in message
        assert f"Grant ServiceAccount {ns}/tenant the 'patch' verb on 'configmaps'" in message
    assert conditions["SupplyChainReady"][:2] == ("True", "Ready")
    assert reader.get("v1", "ConfigMap", ns, "app-settings") is None
    warnings = [e for e in admin.events() if e["involvedObject"].get("namespace") == ns
                and e["reason"] == "TemplateRejectedByAPIServer"]
    assert warnings == [], "the failure is a condition, not a crash of the reconcile"

    # Server-side apply needs `patch`, and `create` for an object that does not exist yet.
    _grant(admin, ns, "configmaps-apply", ["create", "patch"])
    conditions = _conditions(reconcile())
    assert conditions["ResourcesSubmitted"][:2] == ("True", "ResourceSubmissionComplete")
    assert conditions["Ready"][:2] == ("True", "Ready"), conditions
    stamped = reader.get("v1", "ConfigMap", ns, "app-settings")
    assert stamped is not None and stamped["data"] == {"greeting": "hello"}
    assert {m["manager"] for m in stamped["metadata"]["managedFields"]} == {"reconciler"}


def test_the_blueprints_service_account_ref_is_used_without_one_on_the_workload(
        admin: KubernetesBackend, reader: KubernetesBackend) -> None:
    ns = _tenant(admin, ["get"], account="operator-chosen")
    suffix = ns.split("-", 1)[1]
    template, chain = _supply_chain(suffix)
    chain["spec"]["serviceAccountRef"] = {"name": "operator-chosen"}
    for obj in (template, chain):
        admin.apply(obj)
    admin.apply({"apiVersion": API, "kind": "Workload",
                 "metadata": {"name": "app", "namespace": ns,
                              "labels": {"tenancy-test": suffix}}, "spec": {}})
    clock = SystemClock()
    live_chain = admin.get(API, "ClusterSupplyChain", "", f"chain-{suffix}")
    assert live_chain is not None
    BlueprintController(admin, clock, WORKLOAD.blueprint_kind).reconcile(live_chain)
    workload = admin.get(API, "Workload", ns, "app")
    assert workload is not None
    OwnerController(admin, clock, WORKLOAD).reconcile(workload)
    _, reason, message = _conditions(reader.get(API, "Workload", ns, "app"))["Ready"]
    assert reason == "TemplateRejectedByAPIServer"
    assert f'User "system:serviceaccount:{ns}:operator-chosen" cannot patch' in message
    assert reader.get("v1", "ConfigMap", ns, "app-settings") is None


# --- a tenant Kustomization --------------------------------------------------------------------


def _source(admin: KubernetesBackend, store: ArtifactStore, tmp: Path, ns: str) -> None:
    admin.apply({"apiVersion": SOURCE_API, "kind": "GitRepository",
                 "metadata": {"name": "config", "namespace": ns},
                 "spec": {"url": "https://example.com/config.git", "interval": "1m"}})
    folder = tmp / "src"
    folder.mkdir()
    (folder / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n"
                                    "data:\n  a: \"1\"\n")
    artifact = store.store_directory("GitRepository", ns, "config", "main@sha1:aaa", folder,
                                     now="2026-01-01T00:00:00Z")
    live = admin.get(SOURCE_API, "GitRepository", ns, "config")
    assert live is not None
    admin.update_status({**live, "status": {"artifact": artifact.to_status()}})


def test_a_tenant_kustomization_is_refused_then_ready_once_granted(
        admin: KubernetesBackend, reader: KubernetesBackend, tmp_path: Path) -> None:
    ns = _tenant(admin, ["get", "list"])
    store = ArtifactStore(tmp_path / "store", "http://artifacts.test")
    _source(admin, store, tmp_path, ns)
    admin.apply({"apiVersion": KS_API, "kind": "Kustomization",
                 "metadata": {"name": "apps", "namespace": ns},
                 "spec": {"interval": "10m", "path": "./", "prune": True, "targetNamespace": ns,
                          "serviceAccountName": "tenant",
                          "sourceRef": {"kind": "GitRepository", "name": "config"}}})
    controller = KustomizationReconciler(admin, SystemClock(), store)

    def reconcile() -> dict[str, tuple[str, str, str]]:
        ks = admin.get(KS_API, "Kustomization", ns, "apps")
        assert ks is not None
        controller.reconcile(ks)
        return _conditions(reader.get(KS_API, "Kustomization", ns, "apps"))

    status, reason, message = reconcile()["Ready"]
    assert (status, reason) == ("False", "ReconciliationFailed")
    assert (f'User "system:serviceaccount:{ns}:tenant" cannot patch resource "configmaps"'
            in message)
    assert reader.get("v1", "ConfigMap", ns, "web") is None
    _grant(admin, ns, "configmaps-apply", ["create", "patch", "delete"])
    assert reconcile()["Ready"][:2] == ("True", "ReconciliationSucceeded")
    assert reader.get("v1", "ConfigMap", ns, "web") is not None




# --- the controller's own permission: impersonate serviceaccounts --------------------------------


def test_the_controller_needs_impersonate_on_serviceaccounts_only(
        rbac: Served, admin: KubernetesBackend, reader: KubernetesBackend,
        tmp_path: Path) -> None:
    """A controller identity that may write ConfigMaps but not impersonate is told to grant
    itself `impersonate`; with `impersonate` on `serviceaccounts` (no `groups`, no `users`) its
    views write as the tenant."""
    ns = _tenant(admin, ["get", "create", "patch"])
    admin.apply({"apiVersion": "v1", "kind": "ServiceAccount",
                 "metadata": {"name": "controller", "namespace": ns}})
    _grant(admin, ns, "controller-configmaps", ["get", "list", "watch", "create", "patch"],
           account="controller")
    token = rbac.kubectl("create", "token", "controller", "-n", ns).stdout.strip()
    config = yaml.safe_load(rbac.kubeconfig.read_text())
    config["users"][0]["user"] = {"token": token}
    kubeconfig = tmp_path / "controller.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    controller = connect(kubeconfig, settings=KubernetesSettings(informers=False))
    try:
        view = controller.as_user(*_user_and_groups(Identity.service_account(ns, "tenant")))
        with pytest.raises(BackendError) as refused:
            view.apply(_cm(ns, "via-controller"))
        message = str(refused.value)
        assert (f'User "system:serviceaccount:{ns}:controller" cannot impersonate resource '
                '"serviceaccounts"') in message
        assert "Grant the reconciler's identity the 'impersonate' verb on 'serviceaccounts'" in (
            message)
        admin.apply({"apiVersion": RBAC_API, "kind": "Role",
                     "metadata": {"name": "impersonate-tenant", "namespace": ns},
                     "rules": [{"apiGroups": [""], "resources": ["serviceaccounts"],
                                "verbs": ["impersonate"], "resourceNames": ["tenant"]}]})
        admin.apply({"apiVersion": RBAC_API, "kind": "RoleBinding",
                     "metadata": {"name": "impersonate-tenant", "namespace": ns},
                     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                 "name": "impersonate-tenant"},
                     "subjects": [{"kind": "ServiceAccount", "name": "controller",
                                   "namespace": ns}]})
        view.apply(_cm(ns, "via-controller"))
        assert reader.get("v1", "ConfigMap", ns, "via-controller") is not None
    finally:
        controller.close()
