"""Label and field selectors, parsed as kube-apiserver parses them.

Labels: `a=b`, `a==b`, `a!=b`, `a in (b,c)`, `a notin (b,c)`, `a` (exists), `!a` (does not
exist), joined by commas. Fields: `path=value`, `path==value`, `path!=value` for
`metadata.name`, `metadata.namespace` and the few kind-specific fields the API server supports.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from simulator.apiserver.errors import ApiError, bad_request

Matcher = Callable[[Mapping[str, Any]], bool]
_LabelCheck = Callable[[Mapping[str, Any]], bool]
MAX_SELECTOR_LENGTH = 4096

_REQUIREMENT = re.compile(
    r"\s*(?P<not>!)?\s*(?P<key>[A-Za-z0-9][-A-Za-z0-9_./]*)\s*"
    r"(?:(?P<op>==|!=|=|\s+in\s+|\s+notin\s+)\s*(?:\((?P<set>[^)]*)\)|(?P<value>[-A-Za-z0-9_.]*)))?"
    r"\s*(?:,|$)")

FIELDS_BY_KIND: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "Event"): ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                    "involvedObject.uid", "involvedObject.apiVersion", "reason", "type",
                    "source"),
    ("", "Pod"): ("spec.nodeName", "status.phase", "spec.serviceAccountName"),
    ("", "Secret"): ("type",),
    ("", "Namespace"): ("status.phase",),
}


def label_matcher(selector: str) -> Matcher:
    if len(selector) > MAX_SELECTOR_LENGTH:
        raise bad_request("labelSelector is too long")
    checks: list[_LabelCheck] = []
    pos, text = 0, selector.strip()
    while pos < len(text):
        m = _REQUIREMENT.match(text, pos)
        if m is None or m.end() == pos:
            raise bad_request(f"unable to parse requirement: found '{text[pos:]}', "
                              "expected: identifier")
        checks.append(_requirement(m))
        pos = m.end()
    return lambda obj: all(check(_labels(obj)) for check in checks)


def _requirement(m: re.Match[str]) -> _LabelCheck:
    key, op = m.group("key"), (m.group("op") or "").strip()
    if m.group("not"):
        if op:
            raise bad_request(f"unable to parse requirement: '!{key}' takes no operator")
        return lambda labels: key not in labels
    if not op:
        return lambda labels: key in labels
    if op in ("in", "notin"):
        if m.group("set") is None:
            raise bad_request(f"unable to parse requirement: {op} needs a set of values")
        values = {v.strip() for v in m.group("set").split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if m.group("set") is not None:
        raise bad_request(f"unable to parse requirement: {op} takes one value")
    value = m.group("value") or ""
    if op == "!=":
        return lambda labels: labels.get(key) != value
    return lambda labels: key in labels and labels[key] == value


def _labels(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    labels = (obj.get("metadata") or {}).get("labels")
    return labels if isinstance(labels, Mapping) else {}


def field_matcher(selector: str, group: str, kind: str) -> Matcher:
    if len(selector) > MAX_SELECTOR_LENGTH:
        raise bad_request("fieldSelector is too long")
    allowed = ("metadata.name", "metadata.namespace", *FIELDS_BY_KIND.get((group, kind), ()))
    checks: list[Matcher] = []
    for term in (t.strip() for t in selector.split(",")):
        if not term:
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.]+)\s*(==|!=|=)\s*(.*)", term)
        if m is None:
            raise bad_request(f"invalid selector: '{selector}'; can't understand '{term}'")
        path, op, value = m.group(1), m.group(2), m.group(3).strip()
        if path not in allowed:
            raise ApiError(400, f'field label not supported: {path}', "BadRequest")
        checks.append(_field_check(path, op, value))
    return lambda obj: all(check(obj) for check in checks)


def _field_check(path: str, op: str, value: str) -> Matcher:
    def get(obj: Mapping[str, Any]) -> str:
        current: Any = obj
        for step in path.split("."):
            current = current.get(step) if isinstance(current, Mapping) else None
        if isinstance(current, Mapping) and path == "source":
            current = current.get("component")
        return "" if current is None else str(current)

    if op == "!=":
        return lambda obj: get(obj) != value
    return lambda obj: get(obj) == value
