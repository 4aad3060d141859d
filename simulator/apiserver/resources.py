"""The resources the served cluster offers: every kind its registry knows, with what discovery,
tables and OpenAPI need beyond `KindInfo` (singular name, short names, categories, subresources,
printer columns, the CRD's schema).

Built-in kinds take these from a table of kube-apiserver's own values; CRD-defined kinds from
their CustomResourceDefinition, read from the cluster, so a kind is served the moment its CRD is
applied. Kinds the simulator knows without a CRD (kpack, Knative, Tekton) are served as the
CRDs their projects install would serve them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.model.kinds import KindInfo
from simulator.cluster import BUILTIN_GROUP_KINDS

CRD_API = "apiextensions.k8s.io/v1"
VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")

_BUILTIN = BUILTIN_GROUP_KINDS

# kube-apiserver's short names, categories and status subresources for the built-in kinds.
SHORT_NAMES: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "namespaces"): ("ns",), ("", "configmaps"): ("cm",),
    ("", "serviceaccounts"): ("sa",), ("", "services"): ("svc",), ("", "pods"): ("po",),
    ("", "persistentvolumeclaims"): ("pvc",), ("", "persistentvolumes"): ("pv",),
    ("", "events"): ("ev",), ("", "endpoints"): ("ep",), ("", "limitranges"): ("limits",),
    ("", "resourcequotas"): ("quota",), ("", "nodes"): ("no",),
    ("apps", "deployments"): ("deploy",), ("apps", "statefulsets"): ("sts",),
    ("apps", "daemonsets"): ("ds",), ("apps", "replicasets"): ("rs",),
    ("batch", "cronjobs"): ("cj",), ("networking.k8s.io", "ingresses"): ("ing",),
    ("networking.k8s.io", "networkpolicies"): ("netpol",),
    ("policy", "poddisruptionbudgets"): ("pdb",),
    ("autoscaling", "horizontalpodautoscalers"): ("hpa",),
    ("storage.k8s.io", "storageclasses"): ("sc",),
    ("scheduling.k8s.io", "priorityclasses"): ("pc",),
    ("apiextensions.k8s.io", "customresourcedefinitions"): ("crd", "crds"),
    ("events.k8s.io", "events"): ("ev",),
    ("serving.knative.dev", "services"): ("kservice", "ksvc"),
    ("tekton.dev", "pipelineruns"): ("pr", "prs"), ("tekton.dev", "taskruns"): ("tr", "trs"),
    ("kpack.io", "clusterbuilders"): ("clstbldr", "clstbldrs"),
    ("kpack.io", "builds"): ("cnbbuild", "cnbbuilds", "bld", "blds"),
    ("kpack.io", "images"): ("cnbimage", "cnbimages"),
}
ALL_CATEGORY = {("", "pods"), ("", "services"), ("apps", "deployments"),
                ("apps", "statefulsets"), ("apps", "daemonsets"), ("apps", "replicasets"),
                ("batch", "jobs"), ("batch", "cronjobs"),
                ("autoscaling", "horizontalpodautoscalers")}
NO_STATUS = {("", "configmaps"), ("", "secrets"), ("", "serviceaccounts"), ("", "events"),
             ("", "endpoints"), ("", "limitranges"), ("events.k8s.io", "events"),
             ("networking.k8s.io", "ingressclasses"), ("networking.k8s.io", "networkpolicies"),
             ("rbac.authorization.k8s.io", "roles"),
             ("rbac.authorization.k8s.io", "rolebindings"),
             ("rbac.authorization.k8s.io", "clusterroles"),
             ("rbac.authorization.k8s.io", "clusterrolebindings"),
             ("storage.k8s.io", "storageclasses"), ("scheduling.k8s.io", "priorityclasses"),
             ("coordination.k8s.io", "leases")}


@dataclass(frozen=True)
class ResourceType:
    group: str
    versions: tuple[str, ...]
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    status: bool = False
    custom: bool = False
    """Served from a CRD (or as one): merge patches only, and DELETE answers the object."""
    columns: tuple[Mapping[str, Any], ...] = ()
    """additionalPrinterColumns of the CRD (per the preferred version)."""
    schemas: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """openAPIV3Schema per version, for CRD-defined kinds."""

    @property
    def preferred(self) -> str:
        return self.versions[0]

    def api_version(self, version: str | None = None) -> str:
        v = version or self.preferred
        return f"{self.group}/{v}" if self.group else v

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


class Catalog:
    """Looks resources up by group, version and plural (or short name); rebuilt only when the
    set of kinds or of CRDs changed."""

    def __init__(self, cluster: Any) -> None:
        self._cluster = cluster
        self._stamp: tuple[int, int] | None = None
        self._types: list[ResourceType] = []
        self._by_resource: dict[tuple[str, str], ResourceType] = {}

    def types(self) -> list[ResourceType]:
        self._refresh()
        return list(self._types)

    def find(self, group: str, version: str, resource: str) -> ResourceType | None:
        self._refresh()
        found = self._by_resource.get((group, resource))
        if found is None or version not in found.versions:
            return None
        return found

    def for_kind(self, group: str, kind: str) -> ResourceType | None:
        self._refresh()
        return next((t for t in self._types if t.group == group and t.kind == kind), None)

    def _refresh(self) -> None:
        registry = list(self._cluster.registry)
        stamp = (len(registry), self._cluster.last_kind_change(
            "apiextensions.k8s.io", "CustomResourceDefinition", None))
        if stamp == self._stamp:
            return
        crds = {str((c.get("metadata") or {}).get("name")): c
                for c in self._cluster.list(CRD_API, "CustomResourceDefinition")}
        self._types = sorted(_types(registry, crds), key=lambda t: (t.group, t.plural))
        self._by_resource = {(t.group, t.plural): t for t in self._types}
        self._stamp = stamp


def _types(registry: list[KindInfo], crds: Mapping[str, Any]) -> Iterator[ResourceType]:
    for info in registry:
        if not info.versions or not info.plural:
            continue
        crd = crds.get(f"{info.plural}.{info.group}")
        if crd is not None:
            yield _from_crd(info, crd)
            continue
        key = (info.group, info.plural)
        builtin = (info.group, info.kind) in _BUILTIN
        yield ResourceType(
            info.group, info.versions, info.kind, info.plural, info.kind.lower(),
            info.namespaced, SHORT_NAMES.get(key, ()),
            ("all",) if key in ALL_CATEGORY else (),
            status=key not in NO_STATUS, custom=not builtin)


def _from_crd(info: KindInfo, crd: Mapping[str, Any]) -> ResourceType:
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    versions = [v for v in spec.get("versions") or [] if isinstance(v, Mapping)
                and v.get("served", True)]
    # kube-apiserver serves the storage version first only when priorities tie; keep CRD order.
    preferred = versions[0] if versions else {}
    schemas = {str(v.get("name")): (v.get("schema") or {}).get("openAPIV3Schema") or {}
               for v in versions}
    return ResourceType(
        info.group, info.versions, info.kind, info.plural,
        str(names.get("singular") or info.kind.lower()), info.namespaced,
        tuple(str(s) for s in names.get("shortNames") or ()),
        tuple(str(c) for c in names.get("categories") or ()),
        status="status" in (preferred.get("subresources") or {}), custom=True,
        columns=tuple(c for c in preferred.get("additionalPrinterColumns") or ()
                      if isinstance(c, Mapping)),
        schemas=schemas)
