"""Ignore rules: fields a diff must not see and an apply must not fight over.

The shape follows Argo CD's `ignoreDifferences`: a rule selects objects by group, kind, name and
namespace (empty matches any; `*` is allowed in kind, name and namespace) and names fields by
JSON pointers (`/spec/replicas`), jq-style paths (`.spec.template.spec.containers[] |
select(.name == "app") | .image`) or field managers (`kube-controller-manager`: every field that
manager owns in the live object). Only that jq subset is understood: `.key`, `."key"`,
`["key"]`, `[N]`, `[]` and `select(.path == "value")`; anything else is an `IgnoreRuleError`
naming the rule and the expression.

`strip` removes ignored fields from an object before comparing; `respect` makes an object about
to be applied carry the live values of its ignored fields, so applying never undoes them.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.model.errors import InputError
from reconciler.model.fieldsets import ITEM, FieldPath, find_item, from_tree
from reconciler.model.objects import GroupVersionKind, Obj, name_of, namespace_of

Path = tuple[str | int, ...]


class IgnoreRuleError(InputError):
    """An ignore rule that cannot be read; the message names the rule and the expression."""


@dataclass(frozen=True)
class IgnoreRule:
    group: str = ""
    kind: str = ""
    name: str = ""
    namespace: str = ""
    json_pointers: tuple[str, ...] = ()
    jq_paths: tuple[str, ...] = ()
    managers: tuple[str, ...] = ()
    _compiled: tuple[tuple[Any, ...], ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.jq_paths and not self._compiled:
            compiled = tuple(tuple(compile_jq(e, "ignore rule")) for e in self.jq_paths)
            object.__setattr__(self, "_compiled", compiled)

    @classmethod
    def parse(cls, raw: Mapping[str, Any], where: str = "ignore rule") -> IgnoreRule:
        known = {"group", "kind", "name", "namespace", "jsonPointers", "jqPathExpressions",
                 "managedFieldsManagers"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise IgnoreRuleError(f"{where}: unknown field(s) {unknown}; an ignore rule has "
                                  f"{sorted(known)}")
        pointers = _string_list(raw, "jsonPointers", where)
        for pointer in pointers:
            if pointer and not pointer.startswith("/"):
                raise IgnoreRuleError(f"{where}: jsonPointers: {pointer!r} is not a JSON pointer "
                                      "(it must start with '/', e.g. /spec/replicas)")
        jq = _string_list(raw, "jqPathExpressions", where)
        compiled = tuple(tuple(compile_jq(expr, where)) for expr in jq)
        return cls(
            group=str(raw.get("group") or ""), kind=str(raw.get("kind") or ""),
            name=str(raw.get("name") or ""), namespace=str(raw.get("namespace") or ""),
            json_pointers=pointers, jq_paths=jq,
            managers=_string_list(raw, "managedFieldsManagers", where),
            _compiled=compiled,
        )

    def matches(self, obj: Mapping[str, Any]) -> bool:
        gvk = GroupVersionKind.of(obj)
        return ((not self.group or self.group == gvk.group)
                and (not self.kind or fnmatch.fnmatchcase(gvk.kind, self.kind))
                and (not self.name or fnmatch.fnmatchcase(name_of(obj), self.name))
                and (not self.namespace
                     or fnmatch.fnmatchcase(namespace_of(obj), self.namespace)))


def _string_list(raw: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    """`raw[key]` as strings; a value that is not a list (found by fuzzing: a bare string was
    read letter by letter, a number raised TypeError) is the user's error, named."""
    value = raw.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        raise IgnoreRuleError(f"{where}: {key} must be a list of strings, got "
                              f"{type(value).__name__}")
    return tuple(str(v) for v in value)


def parse_rules(raw: Iterable[Mapping[str, Any]], where: str = "ignoreDifferences") -> list[
        IgnoreRule]:
    return [IgnoreRule.parse(r, f"{where}[{i}]") for i, r in enumerate(raw)]


def ignored_paths(rules: Sequence[IgnoreRule], obj: Mapping[str, Any],
                  live: Mapping[str, Any] | None = None) -> list[Path]:
    """Concrete paths in `obj` that the rules matching it (judged on `live` or `obj`) ignore."""
    subject = live if live is not None else obj
    out: list[Path] = []
    for rule in rules:
        if not rule.matches(subject):
            continue
        for pointer in rule.json_pointers:
            path = pointer_path(pointer, obj)
            if path is not None:
                out.append(path)
        for steps in rule._compiled:
            out.extend(_eval_jq(steps, obj, ()))
        if rule.managers and live is not None:
            for entry in (live.get("metadata") or {}).get("managedFields") or []:
                if entry.get("manager") in rule.managers:
                    for fpath in from_tree(entry.get("fieldsV1")):
                        path = _concrete(fpath, obj)
                        if path is not None:
                            out.append(path)
    return out


def strip(obj: Obj, paths: Iterable[Path]) -> Obj:
    """A copy of `obj` without the fields at `paths` (the original is not changed)."""
    todo = sorted(set(paths), key=lambda p: (len(p), [str(s) for s in p]), reverse=True)
    if not todo:
        return obj
    out = copy.deepcopy(obj)
    for path in todo:
        _remove(out, path)
    return out


def respect(desired: Obj, live: Mapping[str, Any] | None, paths: Iterable[Path]) -> Obj:
    """`desired` with each ignored field set to its live value (or dropped when not live)."""
    todo = list(paths)
    if not todo:
        return desired
    out = copy.deepcopy(desired)
    for path in todo:
        present, value = _get(live, path) if live is not None else (False, None)
        if present:
            _set(out, path, copy.deepcopy(value))
        else:
            _remove(out, path)
    return out


# --- JSON pointers -----------------------------------------------------------------------------


def pointer_path(pointer: str, obj: Any) -> Path | None:
    if pointer in ("", "/"):
        return None
    path: list[str | int] = []
    node = obj
    for raw in pointer.lstrip("/").split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            if not token.isdigit() or int(token) >= len(node):
                return None
            path.append(int(token))
            node = node[int(token)]
        elif isinstance(node, Mapping):
            if token not in node:
                return None
            path.append(token)
            node = node[token]
        else:
            return None
    return tuple(path)


# --- the jq subset -----------------------------------------------------------------------------

_TOKEN = re.compile(r"""\s*(?:
    \.(?P<key>[A-Za-z_][A-Za-z0-9_-]*)
  | \."(?P<qkey>(?:[^"\\]|\\.)*)"
  | \[\s*"(?P<bkey>(?:[^"\\]|\\.)*)"\s*\]
  | \[\s*(?P<index>[0-9]+)\s*\]
  | (?P<each>\[\s*\])
  | (?P<pipe>\|)
  | select\(\s*(?P<sel>(?:\.[^=\s)]+)+)\s*==\s*(?P<val>"(?:[^"\\]|\\.)*"|-?[0-9.]+|true|false|null)
      \s*\)
  | (?P<dot>\.)
)""", re.VERBOSE)


def compile_jq(expr: str, where: str) -> list[tuple[Any, ...]]:
    steps: list[tuple[Any, ...]] = []
    pos = 0
    text = expr.strip()
    if not text.startswith("."):
        raise IgnoreRuleError(f"{where}: jqPathExpressions: {expr!r} must start with '.'")
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise IgnoreRuleError(
                f"{where}: jqPathExpressions: {expr!r}: cannot read {text[pos:]!r}; supported: "
                ".key, .\"key\", [\"key\"], [N], [], select(.path == value) and |")
        pos = m.end()
        if m.group("key") is not None:
            steps.append(("key", m.group("key")))
        elif m.group("qkey") is not None:
            steps.append(("key", json.loads(f'"{m.group("qkey")}"')))
        elif m.group("bkey") is not None:
            steps.append(("key", json.loads(f'"{m.group("bkey")}"')))
        elif m.group("index") is not None:
            steps.append(("index", int(m.group("index"))))
        elif m.group("each") is not None:
            steps.append(("each",))
        elif m.group("sel") is not None:
            sel = compile_jq(m.group("sel"), where)
            steps.append(("select", tuple(sel), json.loads(m.group("val"))))
    return steps


def _eval_jq(steps: Sequence[tuple[Any, ...]], node: Any, prefix: Path) -> list[Path]:
    if not steps:
        return [prefix] if prefix else []
    step, rest = steps[0], steps[1:]
    if step[0] == "key":
        if isinstance(node, Mapping) and step[1] in node:
            return _eval_jq(rest, node[step[1]], (*prefix, step[1]))
        return []
    if step[0] == "index":
        if isinstance(node, list) and step[1] < len(node):
            return _eval_jq(rest, node[step[1]], (*prefix, step[1]))
        return []
    if step[0] == "each":
        if isinstance(node, list):
            return [p for i, item in enumerate(node) for p in _eval_jq(rest, item, (*prefix, i))]
        if isinstance(node, Mapping):
            return [p for k, v in node.items() for p in _eval_jq(rest, v, (*prefix, k))]
        return []
    # select: keep the current node when the selected value equals the literal.
    found = _eval_jq(step[1], node, ())
    if any(_get(node, p) == (True, step[2]) for p in found):
        return _eval_jq(rest, node, prefix)
    return []


# --- paths -------------------------------------------------------------------------------------


def _concrete(fpath: FieldPath, obj: Any) -> Path | None:
    path: list[str | int] = []
    node = obj
    for step in fpath:
        if step == ITEM:
            break
        if step.startswith("f:"):
            if not isinstance(node, Mapping) or step[2:] not in node:
                return None
            path.append(step[2:])
            node = node[step[2:]]
        elif step.startswith("k:"):
            index = find_item(node, step)
            if index is None:
                return None
            path.append(index)
            node = node[index]
        else:
            return None
    return tuple(path)


def _get(obj: Any, path: Path) -> tuple[bool, Any]:
    node = obj
    for step in path:
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                return False, None
        elif not isinstance(node, Mapping) or step not in node:
            return False, None
        node = node[step]
    return True, node


def _set(obj: Any, path: Path, value: Any) -> None:
    node = obj
    for step in path[:-1]:
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                return
            node = node[step]
        else:
            if not isinstance(node, dict):
                return
            node = node.setdefault(step, {})
    last = path[-1]
    settable = isinstance(node, dict) and isinstance(last, str)
    if settable or (isinstance(node, list) and isinstance(last, int) and last < len(node)):
        node[last] = value


def _remove(obj: Any, path: Path) -> None:
    present, parent = _get(obj, path[:-1])
    if not present:
        return
    last = path[-1]
    in_list = isinstance(parent, list) and isinstance(last, int) and last < len(parent)
    if (isinstance(parent, dict) and last in parent) or in_list:
        del parent[last]
