"""What the product knows about kinds: plural resource names, scope, and the built-in table.

An API server answers "what resource is this kind?" from its discovery data; the product needs
the same answer to fill `stampedRef.resource` and to reject kinds no API serves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.model.objects import GroupVersionKind


@dataclass(frozen=True)
class KindInfo:
    group: str
    versions: tuple[str, ...]
    kind: str
    plural: str
    namespaced: bool

    @property
    def qualified_resource(self) -> str:
        """`configmaps` for the core group, `tests.test.run` otherwise (as kubectl names it)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


def _k(api_versions: str, kind: str, plural: str, namespaced: bool = True) -> KindInfo:
    group_versions = api_versions.split(",")
    group = group_versions[0].rpartition("/")[0]
    versions = tuple(gv.rpartition("/")[2] for gv in group_versions)
    return KindInfo(group, versions, kind, plural, namespaced)


# The built-in kinds of a Kubernetes API server that supply chains commonly stamp or read.
BUILTIN_KINDS: tuple[KindInfo, ...] = (
    _k("v1", "Namespace", "namespaces", namespaced=False),
    _k("v1", "ConfigMap", "configmaps"),
    _k("v1", "Secret", "secrets"),
    _k("v1", "ServiceAccount", "serviceaccounts"),
    _k("v1", "Service", "services"),
    _k("v1", "Pod", "pods"),
    _k("v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
    _k("v1", "PersistentVolume", "persistentvolumes", namespaced=False),
    _k("v1", "Event", "events"),
    _k("v1", "Endpoints", "endpoints"),
    _k("v1", "LimitRange", "limitranges"),
    _k("v1", "ResourceQuota", "resourcequotas"),
    _k("v1", "Node", "nodes", namespaced=False),
    _k("apps/v1", "Deployment", "deployments"),
    _k("apps/v1", "StatefulSet", "statefulsets"),
    _k("apps/v1", "DaemonSet", "daemonsets"),
    _k("apps/v1", "ReplicaSet", "replicasets"),
    _k("batch/v1", "Job", "jobs"),
    _k("batch/v1", "CronJob", "cronjobs"),
    _k("networking.k8s.io/v1", "Ingress", "ingresses"),
    _k("networking.k8s.io/v1", "IngressClass", "ingressclasses", namespaced=False),
    _k("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies"),
    _k("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
    _k("autoscaling/v2,autoscaling/v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
    _k("rbac.authorization.k8s.io/v1", "Role", "roles"),
    _k("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"),
    _k("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", namespaced=False),
    _k("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings",
       namespaced=False),
    _k("storage.k8s.io/v1", "StorageClass", "storageclasses", namespaced=False),
    _k("scheduling.k8s.io/v1", "PriorityClass", "priorityclasses", namespaced=False),
    _k("apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions",
       namespaced=False),
    _k("events.k8s.io/v1", "Event", "events"),
)


def kind_info_from_crd(crd: Mapping[str, Any]) -> KindInfo:
    """Read group, served versions, kind, plural and scope from a CustomResourceDefinition."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    versions = tuple(
        str(v.get("name"))
        for v in spec.get("versions") or []
        if isinstance(v, Mapping) and v.get("served", True)
    )
    return KindInfo(
        group=str(spec.get("group", "")),
        versions=versions,
        kind=str(names.get("kind", "")),
        plural=str(names.get("plural", "")),
        namespaced=spec.get("scope", "Namespaced") != "Cluster",
    )


class KindRegistry:
    """The kinds an API server serves, looked up by group/version/kind."""

    def __init__(self, kinds: Iterable[KindInfo] = BUILTIN_KINDS) -> None:
        self._by_gk: dict[tuple[str, str], KindInfo] = {}
        for info in kinds:
            self.register(info)

    def register(self, info: KindInfo) -> None:
        self._by_gk[(info.group, info.kind)] = info

    def lookup_group_kind(self, group: str, kind: str) -> KindInfo | None:
        return self._by_gk.get((group, kind))

    def lookup(self, gvk: GroupVersionKind) -> KindInfo | None:
        info = self._by_gk.get(gvk.group_kind)
        if info is None or gvk.version not in info.versions:
            return None
        return info

    def __iter__(self) -> Any:
        return iter(self._by_gk.values())
