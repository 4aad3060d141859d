"""The patch types kube-apiserver accepts on an object: JSON merge patch (RFC 7386), JSON patch
(RFC 6902) and strategic merge patch (built-in kinds only; the real server refuses it for
custom resources with 415, and so do we, in `handlers`).

Strategic merge patch merges lists by the merge keys of the Kubernetes API (`containers` and
`env` by `name`, container `ports` by `containerPort`, Service `ports` by `port`, ...) and honours
the directives kubectl sends: `$patch: replace|delete|merge`, `$setElementOrder/FIELD`,
`$retainKeys` and `$deleteFromPrimitiveList/FIELD`. Lists without a merge key are replaced, as
atomic lists are, except `finalizers` (a set).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from simulator.apiserver.errors import ApiError, bad_request

MAX_JSON_PATCH_OPERATIONS = 10_000

MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
    "env": "name", "volumes": "name", "volumeMounts": "mountPath",
    "volumeDevices": "devicePath", "imagePullSecrets": "name", "ownerReferences": "uid",
    "conditions": "type", "hostAliases": "ip", "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name", "readinessGates": "conditionType",
}
SET_LISTS = {"finalizers"}
_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"


# --- JSON merge patch ----------------------------------------------------------------------

def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


# --- JSON patch ----------------------------------------------------------------------------

def json_patch(target: Any, operations: Any) -> Any:
    if not isinstance(operations, list):
        raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    if len(operations) > MAX_JSON_PATCH_OPERATIONS:
        raise ApiError(413, f"The allowed maximum operations in a JSON patch is "
                            f"{MAX_JSON_PATCH_OPERATIONS}, got {len(operations)}",
                       "RequestEntityTooLarge")
    doc = copy.deepcopy(target)
    for op in operations:
        if not isinstance(op, Mapping) or not isinstance(op.get("op"), str):
            raise _patch_error("an operation needs an 'op'")
        doc = _json_op(doc, op)
    return doc


def _json_op(doc: Any, op: Mapping[str, Any]) -> Any:
    kind = op["op"]
    path = _pointer(op.get("path"))
    if kind == "add":
        return _put(doc, path, copy.deepcopy(_value(op)), insert=True)
    if kind == "remove":
        return _remove(doc, path)[0]
    if kind == "replace":
        _get(doc, path)
        return _put(doc, path, copy.deepcopy(_value(op)), insert=False)
    if kind in ("move", "copy"):
        source = _pointer(op.get("from"))
        if kind == "move":
            if path[:len(source)] == source and len(path) > len(source):
                raise _patch_error("a value cannot be moved into one of its children")
            doc, value = _remove(doc, source)
        else:
            value = copy.deepcopy(_get(doc, source))
        return _put(doc, path, value, insert=True)
    if kind == "test":
        if _get(doc, path) != _value(op):
            raise _patch_error(f"testing value {op.get('path')} failed")
        return doc
    raise _patch_error(f"unexpected kind of operation: {kind!r}")


def _value(op: Mapping[str, Any]) -> Any:
    if "value" not in op:
        raise _patch_error(f"missing value for operation {op.get('op')!r}")
    return op["value"]


def _pointer(text: Any) -> list[str]:
    if not isinstance(text, str) or (text and not text.startswith("/")):
        raise _patch_error(f"invalid JSON pointer {text!r}")
    if not text:
        return []
    return [p.replace("~1", "/").replace("~0", "~") for p in text[1:].split("/")]


def _index(container: list[Any], token: str, insert: bool) -> int:
    if token == "-" and insert:
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise _patch_error(f"invalid array index {token!r}")
    index = int(token)
    if index > len(container) or (index == len(container) and not insert):
        raise _patch_error(f"array index {index} out of bounds")
    return index


def _parent(doc: Any, path: list[str]) -> Any:
    current = doc
    for token in path[:-1]:
        if isinstance(current, dict) and token in current:
            current = current[token]
        elif isinstance(current, list):
            current = current[_index(current, token, insert=False)]
        else:
            raise _patch_error(f"path /{'/'.join(path)} does not exist")
    return current


def _get(doc: Any, path: list[str]) -> Any:
    if not path:
        return doc
    parent = _parent(doc, path)
    if isinstance(parent, dict) and path[-1] in parent:
        return parent[path[-1]]
    if isinstance(parent, list):
        return parent[_index(parent, path[-1], insert=False)]
    raise _patch_error(f"path /{'/'.join(path)} does not exist")


def _put(doc: Any, path: list[str], value: Any, insert: bool) -> Any:
    if not path:
        return value
    parent = _parent(doc, path)
    if isinstance(parent, dict):
        parent[path[-1]] = value
    elif isinstance(parent, list):
        index = _index(parent, path[-1], insert=insert)
        if insert:
            parent.insert(index, value)
        else:
            parent[index] = value
    else:
        raise _patch_error(f"path /{'/'.join(path)} does not exist")
    return doc


def _remove(doc: Any, path: list[str]) -> tuple[Any, Any]:
    if not path:
        raise _patch_error("cannot remove the whole document")
    parent = _parent(doc, path)
    if isinstance(parent, dict) and path[-1] in parent:
        return doc, parent.pop(path[-1])
    if isinstance(parent, list):
        return doc, parent.pop(_index(parent, path[-1], insert=False))
    raise _patch_error(f"unable to remove nonexistent key: {path[-1]}: missing value")


def _patch_error(message: str) -> ApiError:
    return ApiError(422, f"the server rejected our request due to an error in our request: "
                         f"{message}", "Invalid")


# --- strategic merge patch -----------------------------------------------------------------

def strategic_merge_patch(target: Mapping[str, Any], patch: Any) -> Any:
    if not isinstance(patch, Mapping):
        raise bad_request("a strategic merge patch is a JSON object")
    return _smp_map(target, patch)


def _smp_map(original: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    directive = patch.get("$patch")
    if directive == "replace":
        replaced: dict[str, Any] = _strip(patch)
        return replaced
    if directive not in (None, "merge", "delete"):
        raise bad_request(f"Unknown patch type: {directive}")
    out = copy.deepcopy(dict(original))
    orders: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key.startswith(_ORDER):
            orders[key[len(_ORDER):]] = value if isinstance(value, list) else []
        elif key.startswith(_DELETE_PRIMITIVE):
            field = key[len(_DELETE_PRIMITIVE):]
            if isinstance(out.get(field), list) and isinstance(value, list):
                out[field] = [v for v in out[field] if v not in value]
        elif key in ("$patch", "$retainKeys"):
            continue
        elif value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping):
            if value.get("$patch") == "delete":
                out.pop(key, None)
            else:
                have = out.get(key)
                out[key] = _smp_map(have if isinstance(have, Mapping) else {}, value)
        elif isinstance(value, list) and isinstance(out.get(key), list):
            out[key] = _smp_list(key, out[key], value)
        else:
            out[key] = _strip(value)
    for field, order in orders.items():
        if isinstance(out.get(field), list):
            out[field] = _ordered(field, out[field], order)
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        out = {k: v for k, v in out.items() if k in retain}
    return out


def _merge_key(field: str, items: list[Any]) -> str | None:
    if field == "ports":
        sample = next((i for i in items if isinstance(i, Mapping)), {})
        return "containerPort" if "containerPort" in sample else "port"
    return MERGE_KEYS.get(field)


def _smp_list(field: str, have: list[Any], patch: list[Any]) -> list[Any]:
    if any(isinstance(i, Mapping) and i.get("$patch") == "replace" for i in patch):
        return [_strip(i) for i in patch
                if not (isinstance(i, Mapping) and i.get("$patch") == "replace")]
    if field in SET_LISTS:
        return have + [_strip(v) for v in patch if v not in have]
    key = _merge_key(field, [*patch, *have])
    if key is None or not all(isinstance(i, Mapping) for i in [*have, *patch]):
        return [_strip(i) for i in patch if not (isinstance(i, Mapping) and "$patch" in i)]
    out = copy.deepcopy(have)
    for item in patch:
        index = next((n for n, h in enumerate(out) if h.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if index is not None:
                del out[index]
        elif index is None:
            out.append(_strip(item))
        else:
            out[index] = _smp_map(out[index], item)
    return out


def _ordered(field: str, items: list[Any], order: list[Any]) -> list[Any]:
    key = _merge_key(field, items)
    def ident(item: Any) -> Any:
        return item.get(key) if key and isinstance(item, Mapping) else item
    wanted = [o.get(key) if key and isinstance(o, Mapping) else o for o in order]
    ranked = {repr(w): n for n, w in enumerate(wanted)}
    return sorted(items, key=lambda i: ranked.get(repr(ident(i)), len(ranked)))


def _strip(value: Any) -> Any:
    """A patch value with its directives removed."""
    if isinstance(value, Mapping):
        return {k: _strip(v) for k, v in value.items()
                if not (isinstance(k, str) and k.startswith("$"))}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value
