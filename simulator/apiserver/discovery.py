"""Discovery as kube-apiserver serves it: `/api`, `/apis`, `/apis/GROUP`, the resource list of
each group-version, and aggregated discovery (`apidiscovery.k8s.io/v2`, what kubectl 1.35 asks
for first: one request for every group, version and resource)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from simulator.apiserver.resources import VERBS, ResourceType

AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
SUBRESOURCE_VERBS = ["get", "patch", "update"]

# kube-apiserver lists its own groups in this order; CRD groups follow, by name.
_BUILTIN_GROUP_ORDER = (
    "apiregistration.k8s.io", "apps", "events.k8s.io", "authentication.k8s.io",
    "authorization.k8s.io", "autoscaling", "batch", "certificates.k8s.io",
    "networking.k8s.io", "policy", "rbac.authorization.k8s.io", "storage.k8s.io",
    "admissionregistration.k8s.io", "apiextensions.k8s.io", "scheduling.k8s.io",
    "coordination.k8s.io", "node.k8s.io", "discovery.k8s.io", "flowcontrol.apiserver.k8s.io",
)


def wants_aggregated(accept: str) -> bool:
    return "as=APIGroupDiscoveryList" in accept and "g=apidiscovery.k8s.io" in accept


def groups(types: Iterable[ResourceType]) -> list[tuple[str, list[str]]]:
    """(group, versions with the preferred first) for every named group, in the server's order."""
    found: dict[str, list[str]] = {}
    for t in types:
        if not t.group:
            continue
        versions = found.setdefault(t.group, [])
        for v in t.versions:
            if v not in versions:
                versions.append(v)
    rank = {g: i for i, g in enumerate(_BUILTIN_GROUP_ORDER)}
    return sorted(found.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0]))


def api_versions(address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                            "serverAddress": address}]}


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def group_list(types: Iterable[ResourceType]) -> dict[str, Any]:
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [_group(g, vs) for g, vs in groups(types)]}


def api_group(types: Iterable[ResourceType], name: str) -> dict[str, Any] | None:
    for group, versions in groups(types):
        if group == name:
            return {"kind": "APIGroup", "apiVersion": "v1", **_group(group, versions)}
    return None


def resource_list(types: Iterable[ResourceType], group: str, version: str) -> dict[str, Any] | None:
    served = [t for t in types if t.group == group and version in t.versions]
    if not served:
        return None
    resources: list[dict[str, Any]] = []
    for t in sorted(served, key=lambda t: t.plural):
        entry: dict[str, Any] = {"name": t.plural, "singularName": t.singular,
                                 "namespaced": t.namespaced, "kind": t.kind,
                                 "verbs": list(VERBS)}
        if t.short_names:
            entry["shortNames"] = list(t.short_names)
        if t.categories:
            entry["categories"] = list(t.categories)
        entry["storageVersionHash"] = _hash(f"{t.group}/{version}/{t.kind}")
        resources.append(entry)
        if t.status:
            resources.append({"name": f"{t.plural}/status", "singularName": "",
                              "namespaced": t.namespaced, "kind": t.kind,
                              "verbs": list(SUBRESOURCE_VERBS)})
    group_version = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
            "resources": resources}


def aggregated(types: Iterable[ResourceType], legacy: bool) -> dict[str, Any]:
    """The APIGroupDiscoveryList of `/api` (legacy) or of `/apis`."""
    types = list(types)
    listed = [("", ["v1"])] if legacy else groups(types)
    items = []
    for group, versions in listed:
        entries = []
        for version in versions:
            served = sorted((t for t in types if t.group == group and version in t.versions),
                            key=lambda t: t.plural)
            entries.append({"version": version,
                            "resources": [_aggregated_resource(t) for t in served],
                            "freshness": "Current"})
        items.append({"metadata": {"name": group, "creationTimestamp": None},
                      "versions": entries})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
            "metadata": {}, "items": items}


def _aggregated_resource(t: ResourceType) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": t.plural,
        "responseKind": {"group": "", "version": "", "kind": t.kind},
        "scope": "Namespaced" if t.namespaced else "Cluster",
        "singularResource": t.singular,
        "verbs": list(VERBS),
    }
    if t.short_names:
        entry["shortNames"] = list(t.short_names)
    if t.categories:
        entry["categories"] = list(t.categories)
    if t.status:
        entry["subresources"] = [{"subresource": "status",
                                  "responseKind": {"group": "", "version": "", "kind": t.kind},
                                  "verbs": list(SUBRESOURCE_VERBS)}]
    return entry


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:11]
