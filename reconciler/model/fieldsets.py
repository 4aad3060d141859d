"""Field sets: which fields of an object a manager declared, in the API server's `fieldsV1` shape.

A field set is a frozenset of paths; each path is a tuple of `fieldsV1` steps: `f:<key>` for a
map key, `k:{"name":"app"}` for an item of an associative list (a list of objects that all carry
a merge key, found in `MERGE_KEYS` order) and `.` closing the path of a list item itself. Lists of
scalars and lists without a merge key are atomic: the list is one leaf. `to_tree`/`from_tree`
convert to and from the nested dicts stored in `metadata.managedFields[].fieldsV1`.

Server-side apply (the simulator) and ignore rules (`managedFieldsManagers`) both use these.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

FieldPath = tuple[str, ...]
FieldSet = frozenset[FieldPath]
ITEM = "."

MERGE_KEYS = ("name", "containerPort", "port", "mountPath", "devicePath", "uid", "type", "ip")
# Never owned: the object's identity and what only the server writes.
_UNOWNED_TOP = frozenset({"apiVersion", "kind", "status"})
_UNOWNED_META = frozenset({"name", "namespace", "uid", "resourceVersion", "generation",
                           "creationTimestamp", "managedFields", "selfLink"})


def merge_key(items: list[Any]) -> str | None:
    """The key that identifies items of an associative list, or None for an atomic list."""
    if not items or not all(type(i) is dict or isinstance(i, Mapping) for i in items):
        return None
    for key in MERGE_KEYS:
        values = [i.get(key) for i in items]
        if all(type(v) is str for v in values):
            # Distinct strings are distinct JSON: no need to encode them to compare.
            if len(set(values)) == len(values):
                return key
            continue
        if all(v is not None and not isinstance(v, Mapping | list) for v in values) and len(
                set(map(json.dumps, values))) == len(values):
            return key
    return None


_COMPACT = json.JSONEncoder(separators=(",", ":"))
"""`json.dumps(..., separators=(",", ":"))` without building an encoder on every call."""
_json_string = json.encoder.encode_basestring_ascii
"""How `_COMPACT` (ensure_ascii, the default) writes a string."""


def item_step(key: str, value: Any) -> str:
    if type(value) is str and type(key) is str:
        # What the encoder writes for a map of one string to a string, without its Python
        # layer (once per associative list item whenever an object's fields are listed).
        return f"k:{{{_json_string(key)}:{_json_string(value)}}}"
    return "k:" + _COMPACT.encode({key: value})


def fields_of(obj: Mapping[str, Any]) -> FieldSet:
    """Every field `obj` declares, as leaf paths (plus one path per associative list item)."""
    out: set[FieldPath] = set()
    for key, value in obj.items():
        if key in _UNOWNED_TOP:
            continue
        if key == "metadata" and isinstance(value, Mapping):
            for mkey, mvalue in value.items():
                if mkey not in _UNOWNED_META:
                    _walk(mvalue, ("f:metadata", f"f:{mkey}"), out)
            continue
        _walk(value, (f"f:{key}",), out)
    return frozenset(out)


_LEAVES = frozenset({str, int, float, bool, type(None)})


def _walk(value: Any, prefix: FieldPath, out: set[FieldPath]) -> None:
    kind = type(value)
    if kind in _LEAVES:  # most values: no ABC check (it was most of a create's managedFields)
        out.add(prefix)
        return
    if kind is dict or (kind is not list and isinstance(value, Mapping)):
        if value:
            for key, sub in value.items():
                _walk(sub, (*prefix, f"f:{key}"), out)
            return
        out.add(prefix)
        return
    if isinstance(value, list):
        key = merge_key(value)
        if key is not None:
            for item in value:
                item_prefix = (*prefix, item_step(key, item[key]))
                out.add((*item_prefix, ITEM))
                for sub_key, sub in item.items():
                    _walk(sub, (*item_prefix, f"f:{sub_key}"), out)
            return
    out.add(prefix)


def get_path(obj: Any, path: FieldPath) -> tuple[bool, Any]:
    """(present, value) of a field path in an object."""
    node = obj
    for step in path:
        if step == ITEM:
            break
        present, node = path_step(node, step)
        if not present:
            return False, None
    return True, node


def path_step(node: Any, step: str) -> tuple[bool, Any]:
    """(present, value) one step of a field path below `node`: a map key (`f:`) or an
    associative list's item (`k:`)."""
    if step.startswith("f:"):
        if not isinstance(node, Mapping) or step[2:] not in node:
            return False, None
        return True, node[step[2:]]
    if step.startswith("k:"):
        index = find_item(node, step)
        return (False, None) if index is None else (True, node[index])
    return False, None


_ITEM_KEYS_MAX = 4096
_ITEM_KEY_CHARS_MAX = 256
_item_keys: dict[str, Any] = {}
"""Each short `k:` step's decoded merge key (read only, never handed out), up to
`_ITEM_KEYS_MAX` of at most `_ITEM_KEY_CHARS_MAX` characters (merge-key values come from the
objects, which anyone writes: a longer step is decoded each time, not kept): server-side apply
looks the same items up on every apply of an object."""


def find_item(node: Any, step: str) -> int | None:
    if not isinstance(node, list):
        return None
    wanted = _item_keys.get(step)
    if wanted is None:
        wanted = json.loads(step[2:])
        if len(step) <= _ITEM_KEY_CHARS_MAX:
            if len(_item_keys) >= _ITEM_KEYS_MAX:
                _item_keys.clear()
            _item_keys[step] = wanted
    for index, item in enumerate(node):
        if isinstance(item, Mapping) and all(item.get(k) == v for k, v in wanted.items()):
            return index
    return None


def to_tree(fields: FieldSet) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in sorted(fields):
        node = tree
        for step in path:
            node = node.setdefault(step, {})
    return tree


def from_tree(tree: Mapping[str, Any] | None) -> FieldSet:
    out: set[FieldPath] = set()

    def walk(node: Mapping[str, Any], prefix: FieldPath) -> None:
        for step, sub in node.items():
            path = (*prefix, step)
            if isinstance(sub, Mapping) and sub:
                walk(sub, path)
            else:
                out.add(path)

    walk(tree or {}, ())
    return frozenset(out)


def covers(path: FieldPath, fields: FieldSet) -> bool:
    """True when `fields` holds `path` or any field under it (someone still owns part of it)."""
    n = len(path)
    return any(p[:n] == path for p in fields)


def iter_leaves(fields: FieldSet) -> Iterator[FieldPath]:
    return (p for p in fields if p[-1] != ITEM)
