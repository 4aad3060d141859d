"""OpenAPI v3 (`/openapi/v3` and one document per group-version) and v2 (`/openapi/v2`, JSON),
built from the CRD schemas and, for built-in kinds, a permissive object schema.

What kubectl reads from them: `explain` finds a kind's schema by its
`x-kubernetes-group-version-kind`; `apply` and `create` look for the `fieldValidation` parameter
on the kind's PATCH operation to know the server validates fields itself (then it sends
`fieldValidation=Strict` rather than validating on the client).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from simulator.apiserver.resources import ResourceType

META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
LIST_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"
_STRING = {"type": "string"}

_OBJECT_META = {
    "description": "ObjectMeta is metadata that all persisted resources must have, which "
                   "includes all objects users must create.",
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "Name must be unique within a namespace."},
        "generateName": {"type": "string", "description": "An optional prefix used by the "
                                                          "server to generate a unique name."},
        "namespace": {"type": "string", "description": "Namespace defines the space within "
                                                       "which each name must be unique."},
        "labels": {"type": "object", "additionalProperties": _STRING,
                   "description": "Map of string keys and values that can be used to organize "
                                  "and categorize (scope and select) objects."},
        "annotations": {"type": "object", "additionalProperties": _STRING,
                        "description": "Annotations is an unstructured key value map stored "
                                       "with a resource."},
        "uid": {"type": "string", "description": "UID is the unique in time and space value "
                                                 "for this object."},
        "resourceVersion": {"type": "string", "description": "An opaque value that represents "
                                                             "the internal version of this "
                                                             "object."},
        "generation": {"type": "integer", "format": "int64",
                       "description": "A sequence number representing a specific generation of "
                                      "the desired state."},
        "creationTimestamp": {"type": "string", "format": "date-time",
                              "description": "A timestamp representing the server time when "
                                             "this object was created."},
        "deletionTimestamp": {"type": "string", "format": "date-time"},
        "deletionGracePeriodSeconds": {"type": "integer", "format": "int64"},
        "selfLink": {"type": "string"},
        "finalizers": {"type": "array", "items": _STRING,
                       "x-kubernetes-list-type": "set", "x-kubernetes-patch-strategy": "merge"},
        "ownerReferences": {"type": "array", "items": {"type": "object",
                                                       "x-kubernetes-map-type": "atomic"},
                            "x-kubernetes-patch-merge-key": "uid",
                            "x-kubernetes-patch-strategy": "merge"},
        "managedFields": {"type": "array", "items": {"type": "object"}},
    },
}
_LIST_META = {"type": "object", "properties": {"continue": _STRING, "resourceVersion": _STRING,
                                               "remainingItemCount": {"type": "integer"}}}
_QUERY = ("dryRun", "fieldManager", "fieldValidation", "force", "pretty")


def object_meta() -> dict[str, Any]:
    """ObjectMeta's schema (what `fieldValidation` checks every object's metadata against)."""
    return copy.deepcopy(_OBJECT_META)


def schema_name(group: str, version: str, kind: str) -> str:
    """`run.carto.v1alpha1.Workload`, `io.k8s.api.core.v1.ConfigMap`, as the server names them."""
    if not group:
        return f"io.k8s.api.core.{version}.{kind}"
    if "." not in group:
        return f"io.k8s.api.{group}.{version}.{kind}"
    return ".".join(reversed(group.split("."))) + f".{version}.{kind}"


def group_versions(types: Iterable[ResourceType]) -> list[str]:
    """`api/v1`, `apis/GROUP/VERSION`: the documents of the v3 index."""
    out = []
    for t in types:
        for v in t.versions:
            path = f"api/{v}" if not t.group else f"apis/{t.group}/{v}"
            if path not in out:
                out.append(path)
    return sorted(out)


def v3_index(types: Iterable[ResourceType]) -> dict[str, Any]:
    types = list(types)
    paths = {}
    for path in group_versions(types):
        doc = v3_document(types, path)
        if doc is not None:
            paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest(doc)}"}
    return {"paths": paths}


def digest(doc: Mapping[str, Any]) -> str:
    return hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:128].upper()


def v3_document(types: Iterable[ResourceType], path: str) -> dict[str, Any] | None:
    parts = path.split("/")
    if parts[0] == "api" and len(parts) == 2:
        group, version = "", parts[1]
    elif parts[0] == "apis" and len(parts) == 3:
        group, version = parts[1], parts[2]
    else:
        return None
    served = [t for t in types if t.group == group and version in t.versions]
    if not served:
        return None
    schemas: dict[str, Any] = {META: _OBJECT_META, LIST_META: _LIST_META}
    paths: dict[str, Any] = {}
    for t in served:
        name = schema_name(group, version, t.kind)
        schemas[name] = kind_schema(t, version, "#/components/schemas/")
        schemas[name + "List"] = _list_schema(t, version, name, "#/components/schemas/")
        paths.update(_paths(t, version, name))
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.35.0"},
            "paths": paths, "components": {"schemas": schemas}}


def v2_document(types: Iterable[ResourceType]) -> dict[str, Any]:
    definitions: dict[str, Any] = {META: _OBJECT_META, LIST_META: _LIST_META}
    paths: dict[str, Any] = {}
    for t in types:
        for version in t.versions:
            name = schema_name(t.group, version, t.kind)
            definitions[name] = kind_schema(t, version, "#/definitions/")
            definitions[name + "List"] = _list_schema(t, version, name, "#/definitions/")
            for p, ops in _paths(t, version, name).items():
                paths[p] = {verb: {k: v for k, v in op.items() if k != "requestBody"}
                            for verb, op in ops.items()}
    return {"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.35.0"},
            "paths": paths, "definitions": definitions}


def kind_schema(t: ResourceType, version: str, ref: str) -> dict[str, Any]:
    given = t.schemas.get(version)
    if given:
        schema = copy.deepcopy(dict(given))
    else:
        schema = {"type": "object", "description": f"{t.kind} is served by the simulated "
                                                   "cluster; its fields are not described.",
                  "x-kubernetes-preserve-unknown-fields": True}
    props = dict(schema.get("properties") or {})
    props["apiVersion"] = {"type": "string", "description": "APIVersion defines the versioned "
                           "schema of this representation of an object."}
    props["kind"] = {"type": "string", "description": "Kind is a string value representing the "
                     "REST resource this object represents."}
    props["metadata"] = {"description": "Standard object's metadata.",
                         "allOf": [{"$ref": ref + META}]}
    schema["properties"] = props
    schema.setdefault("type", "object")
    schema["x-kubernetes-group-version-kind"] = [
        {"group": t.group, "version": version, "kind": t.kind}]
    return schema


def _list_schema(t: ResourceType, version: str, item: str, ref: str) -> dict[str, Any]:
    return {"type": "object", "required": ["items"],
            "description": f"{t.kind}List is a list of {t.kind}",
            "properties": {"apiVersion": _STRING, "kind": _STRING,
                           "items": {"type": "array", "items": {"$ref": ref + item}},
                           "metadata": {"allOf": [{"$ref": ref + LIST_META}]}},
            "x-kubernetes-group-version-kind": [
                {"group": t.group, "version": version, "kind": f"{t.kind}List"}]}


def _paths(t: ResourceType, version: str, name: str) -> dict[str, Any]:
    prefix = f"/api/{version}" if not t.group else f"/apis/{t.group}/{version}"
    scope = f"{prefix}/namespaces/{{namespace}}" if t.namespaced else prefix
    gvk = {"group": t.group, "version": version, "kind": t.kind}
    params = [{"name": q, "in": "query", "schema": _STRING, "type": "string"} for q in _QUERY]

    def op(action: str, body: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"operationId": f"{action}{t.kind}", "parameters": params,
                               "x-kubernetes-action": action,
                               "x-kubernetes-group-version-kind": gvk,
                               "responses": {"200": {"description": "OK"}}}
        if body:
            out["requestBody"] = {"content": {"*/*": {"schema": {
                "$ref": f"#/components/schemas/{name}"}}}}
        return out

    item = {"get": op("get"), "put": op("put", True), "patch": op("patch", True),
            "delete": op("delete")}
    paths = {f"{scope}/{t.plural}/{{name}}": item,
             f"{scope}/{t.plural}": {"get": op("list"), "post": op("post", True)}}
    if t.status:
        paths[f"{scope}/{t.plural}/{{name}}/status"] = {
            "get": op("get"), "put": op("put", True), "patch": op("patch", True)}
    return paths
