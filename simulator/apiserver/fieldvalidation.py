"""The `fieldValidation` query parameter of create, update and patch, as kube-apiserver applies it.

Unknown fields (and duplicate fields of a JSON body) are found against the kind's schema: a CRD's
`openAPIV3Schema` (structural: declared `properties`, `additionalProperties`, `items`,
`x-kubernetes-preserve-unknown-fields`, `x-kubernetes-embedded-resource`), and for the built-in
kinds the properties `openapi` declares (ObjectMeta for every kind, and `BUILTIN_FIELDS`). Where
a schema declares no properties, whatever the object holds is accepted.

- `Strict`: an unknown or duplicate field is an error. Create and update (decoding) answer 400
  `Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown
  field "spec.foo"`; a merge, JSON or strategic merge patch answers 422 (kube's `patch:
  Invalid value: ...` error on the patched object).
- `Warn` (the default when the parameter is absent): accepted, each problem returned in a
  `Warning: 299 - "unknown field \\"spec.foo\\""` header, the unknown fields dropped.
- `Ignore`: accepted silently, the unknown fields dropped (pruned, as a CRD's structural schema
  prunes, or as decoding into a built-in's Go type drops them).

Server-side apply is apart, as in kube-apiserver: the applied configuration is converted to the
kind's type whatever the directive, so an unknown field there fails the request (500, kube's
`failed to create typed patch object (...): .spec.foo: field not declared in schema`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from simulator.apiserver import errors, openapi
from simulator.apiserver.errors import ApiError
from simulator.apiserver.resources import ResourceType

STRICT, WARN, IGNORE = "Strict", "Warn", "Ignore"
DIRECTIVES = (IGNORE, STRICT, WARN)

_OPEN: dict[str, Any] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
_ANY: dict[str, Any] = {}


def _declared(**props: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": dict(props)}


def _spec_and_status() -> dict[str, Any]:
    return {"spec": _OPEN, "status": _OPEN}


# The top-level fields (and a Deployment's spec fields) of the built-in kinds, as their Go types
# declare them; nested types not listed here are open (nothing is refused inside them).
BUILTIN_FIELDS: dict[tuple[str, str], dict[str, Mapping[str, Any]]] = {
    ("", "ConfigMap"): {"data": _OPEN, "binaryData": _OPEN, "immutable": _ANY},
    ("", "Secret"): {"data": _OPEN, "stringData": _OPEN, "type": _ANY, "immutable": _ANY},
    ("", "ServiceAccount"): {"secrets": _ANY, "imagePullSecrets": _ANY,
                             "automountServiceAccountToken": _ANY},
    ("", "Namespace"): _spec_and_status(),
    ("", "Service"): _spec_and_status(),
    ("", "Pod"): _spec_and_status(),
    ("", "PersistentVolumeClaim"): _spec_and_status(),
    ("apps", "Deployment"): {
        "spec": _declared(replicas=_ANY, selector=_OPEN, template=_OPEN, strategy=_OPEN,
                          minReadySeconds=_ANY, revisionHistoryLimit=_ANY, paused=_ANY,
                          progressDeadlineSeconds=_ANY),
        "status": _OPEN},
    ("apps", "StatefulSet"): _spec_and_status(),
    ("apps", "DaemonSet"): _spec_and_status(),
    ("apps", "ReplicaSet"): _spec_and_status(),
    ("batch", "Job"): _spec_and_status(),
    ("batch", "CronJob"): _spec_and_status(),
    ("rbac.authorization.k8s.io", "Role"): {"rules": _ANY},
    ("rbac.authorization.k8s.io", "ClusterRole"): {"rules": _ANY, "aggregationRule": _ANY},
    ("rbac.authorization.k8s.io", "RoleBinding"): {"subjects": _ANY, "roleRef": _ANY},
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): {"subjects": _ANY, "roleRef": _ANY},
    ("coordination.k8s.io", "Lease"): {"spec": _OPEN},
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _spec_and_status(),
}


def directive(query: Mapping[str, str], options_kind: str) -> str:
    """The request's directive (`Warn` when absent); 422 for a value kube does not know."""
    value = query.get("fieldValidation", "")
    if value == "":
        return WARN
    if value in DIRECTIVES:
        return value
    detail = ("Unsupported value: " + json.dumps(value) + ': supported values: "", '
              + ", ".join(f'"{d}"' for d in DIRECTIVES))
    raise ApiError(422, f'{options_kind}.meta.k8s.io "" is invalid: fieldValidation: {detail}',
                   "Invalid", group="meta.k8s.io", kind=options_kind,
                   causes=[{"reason": "FieldValueNotSupported", "message": detail,
                            "field": "fieldValidation"}])


def schema_for(t: ResourceType, version: str) -> dict[str, Any]:
    """The schema unknown fields are found against: what the served OpenAPI declares."""
    meta = openapi.object_meta()
    if t.custom:
        given = t.schemas.get(version)
        root = dict(given) if given else dict(_OPEN)
    else:
        fields = BUILTIN_FIELDS.get((t.group, t.kind))
        root = _declared(**fields) if fields is not None else dict(_OPEN)
    props = dict(root.get("properties") or {})
    props["apiVersion"] = {"type": "string"}
    props["kind"] = {"type": "string"}
    props["metadata"] = meta
    root["properties"] = props
    return root


def unknown_fields(value: Any, schema: Mapping[str, Any],
                   keep: frozenset[str] = frozenset()) -> tuple[Any, list[str]]:
    """`value` without the fields `schema` does not declare, and their paths (`spec.foo`,
    `spec.items[0].bar`) in the order met. Paths in `keep` are neither dropped nor reported."""
    found: list[str] = []
    return _walk(value, schema, "", found, keep), found


def _walk(value: Any, schema: Mapping[str, Any], path: str, found: list[str],
          keep: frozenset[str]) -> Any:
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        if not isinstance(props, Mapping):
            if isinstance(extra, Mapping):
                return {k: _walk(v, extra, _join(path, k), found, keep)
                        for k, v in value.items()}
            return value  # no declared structure: nothing is unknown
        preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields")) or extra is True
        embedded = bool(schema.get("x-kubernetes-embedded-resource"))
        out: dict[str, Any] = {}
        for key, item in value.items():
            where = _join(path, key)
            sub = props.get(key)
            if sub is None and embedded and key in ("apiVersion", "kind", "metadata"):
                sub = openapi.object_meta() if key == "metadata" else _ANY
            if isinstance(sub, Mapping):
                out[key] = _walk(item, sub, where, found, keep)
            elif isinstance(extra, Mapping):
                out[key] = _walk(item, extra, where, found, keep)
            elif preserve or where in keep:
                out[key] = item
            else:
                found.append(where)
        return out
    if isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, Mapping):
            return [_walk(v, items, f"{path}[{i}]", found, keep) for i, v in enumerate(value)]
    return value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def duplicate_paths(text: bytes) -> list[str]:
    """The paths of the repeated keys of a JSON document (`metadata.name`), in document order;
    the document has passed the bounded loader's size and depth checks already."""
    repeated: dict[int, list[str]] = {}

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                repeated.setdefault(id(out), []).append(key)
            out[key] = value
        return out

    doc = json.loads(text, object_pairs_hook=pairs)
    paths: list[str] = []

    def visit(value: Any, path: str) -> None:
        if isinstance(value, dict):
            paths.extend(_join(path, k) for k in repeated.get(id(value), ()))
            for k, v in value.items():
                visit(v, _join(path, k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                visit(v, f"{path}[{i}]")
    visit(doc, "")
    return paths


def load_lenient(text: bytes) -> Any:
    """A JSON document whose repeated keys keep their last value (what Warn and Ignore store);
    no NaN or Infinity, as the bounded loader."""
    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")
    try:
        return json.loads(text, parse_constant=constant)
    except ValueError as exc:
        raise errors.bad_request(f"error decoding the request body: invalid JSON: {exc}") \
            from exc


def warning_header(messages: list[str]) -> str:
    """One `Warning` header value holding every message (RFC 7234, agent `-`, as the API
    server writes them; client-go reads a comma-separated list)."""
    seen: list[str] = []
    for m in messages:
        if m not in seen:
            seen.append(m)
    return ", ".join('299 - "' + m.replace("\\", "\\\\").replace('"', '\\"') + '"'
                     for m in seen)


@dataclass
class FieldCheck:
    """One request's directive, what its body's decoding found, and the warnings it earns."""

    directive: str = WARN
    duplicates: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def decoded(self, t: ResourceType, version: str, obj: Any) -> Any:
        """A create's or update's body: refused (Strict), or without its unknown fields."""
        if not isinstance(obj, dict):
            return obj
        pruned, unknown = unknown_fields(obj, schema_for(t, version))
        problems = [f'duplicate field "{p}"' for p in self.duplicates] + [
            f'unknown field "{p}"' for p in unknown]
        if problems and self.directive == STRICT:
            raise errors.bad_request(f'{t.kind} in version "{version}" cannot be handled as a '
                                     f"{t.kind}: strict decoding error: {', '.join(problems)}")
        if self.directive == WARN:
            self.warnings.extend(problems)
        return pruned

    def patched(self, t: ResourceType, version: str, patched: Any, live: Any, patch: Any,
                patch_type: str) -> Any:
        """A merge, JSON or strategic merge patch's result: refused (Strict, 422 as kube's
        patcher answers), or without the unknown fields the patch brought."""
        if not isinstance(patched, dict):
            return patched
        schema = schema_for(t, version)
        _, before = unknown_fields(live, schema)
        pruned, unknown = unknown_fields(patched, schema, keep=frozenset(before))
        prefix = "json patch " if patch_type == "json" else ""
        problems = [f'{prefix}duplicate field "{p}"' for p in self.duplicates] + [
            f'unknown field "{p}"' for p in unknown]
        if problems and self.directive == STRICT:
            shown = _go_value(patch) if patch_type == "strategic" else json.dumps(
                patched, sort_keys=True, separators=(",", ":"))
            detail = (f"Invalid value: {json.dumps(shown)}: strict decoding error: "
                      + ", ".join(problems))
            raise ApiError(422, f' "" is invalid: patch: {detail}', "Invalid",
                           causes=[{"reason": "FieldValueInvalid", "message": detail,
                                    "field": "patch"}])
        if self.directive == WARN:
            self.warnings.extend(problems)
        return pruned


def apply_unknown(t: ResourceType, version: str, config: Mapping[str, Any],
                  api_version: str) -> None:
    """Server-side apply converts the configuration to the kind's type whatever the directive:
    an undeclared field fails it (kube-apiserver answers 500 with no reason)."""
    _, unknown = unknown_fields(dict(config), schema_for(t, version))
    if not unknown:
        return
    meta = config.get("metadata") if isinstance(config.get("metadata"), Mapping) else {}
    assert isinstance(meta, Mapping)
    group_version = api_version if "/" in api_version else f"/{api_version}"
    where = (f"{meta.get('namespace') or ''}/{meta.get('name') or ''}; {group_version}, "
             f"Kind={t.kind}")
    lines = [f".{p}: field not declared in schema" for p in unknown]
    text = lines[0] if len(lines) == 1 else "errors:\n" + "\n".join(f"  {x}" for x in lines)
    raise ApiError(500, f"failed to create typed patch object ({where}): {text}", "")


def _go_value(value: Any) -> str:
    """`fmt.Sprintf("%+v", v)` of a decoded JSON value, as kube quotes a strategic patch."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go_value(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go_value(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
