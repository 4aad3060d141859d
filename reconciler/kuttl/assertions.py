"""Checking a step's assert and errors objects against a cluster, as kuttl does.

An expected object with a name is looked up by name; one without a name stands for "any object
of this kind (with these labels) in the namespace", and passes if one of them matches. Namespaced
kinds are looked up in the test's namespace unless the object names another. An errors object
fails the step when a live object matches it.

Each check keeps what a report needs once the cluster is gone: the closest live object (the one
with the name, else the one with the fewest differences) and the differences themselves.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field

from reconciler.backends.base import Backend
from reconciler.kuttl.match import Difference, differences
from reconciler.kuttl.steps import Expectation
from reconciler.model.errors import BackendError
from reconciler.model.objects import Obj


@dataclass(frozen=True)
class Verdict:
    expectation: Expectation
    ok: bool
    problem: str = ""
    """Why it failed, in words (empty when ok)."""
    closest: Obj | None = None
    differences: list[Difference] = field(default_factory=list)


def check_step(
    backend: Backend, namespace: str, asserts: Sequence[Expectation],
    errors: Sequence[Expectation],
) -> list[Verdict]:
    return ([check_assert(backend, namespace, e) for e in asserts]
            + [check_error(backend, namespace, e) for e in errors])


def check_assert(backend: Backend, namespace: str, exp: Expectation) -> Verdict:
    try:
        expected, candidates = _candidates(backend, namespace, exp)
    except BackendError as exc:
        return Verdict(exp, False, f"cannot look it up: {exc}")
    if not candidates:
        return Verdict(exp, False, _absent(expected, namespace))
    scored = [(differences(expected, live), live) for live in candidates]
    for found, live in scored:
        if not found:
            return Verdict(exp, True, closest=live)
    found, live = min(scored, key=lambda pair: len(pair[0]))
    what = ("does not match" if _name(expected) else
            f"none of the {len(candidates)} live object(s) matches; the closest")
    return Verdict(exp, False, what, live, found)


def check_error(backend: Backend, namespace: str, exp: Expectation) -> Verdict:
    try:
        expected, candidates = _candidates(backend, namespace, exp)
    except BackendError:
        return Verdict(exp, True)  # no API serves the kind: no such object can exist
    matching = [live for live in candidates if not differences(expected, live, limit=1)]
    if not matching:
        return Verdict(exp, True)
    others = f" (and {len(matching) - 1} more)" if len(matching) > 1 else ""
    return Verdict(exp, False, f"exists and matches the errors file{others}", matching[0])


def _candidates(backend: Backend, namespace: str, exp: Expectation) -> tuple[Obj, list[Obj]]:
    expected = copy.deepcopy(exp.obj)
    api_version, kind = str(expected["apiVersion"]), str(expected["kind"])
    info = backend.kind_info(api_version, kind)
    metadata = expected.get("metadata") or {}
    ns = ""
    if info.namespaced:
        ns = str(metadata.get("namespace") or namespace)
        # As kuttl does: the expected object is placed in the namespace it is looked up in.
        expected.setdefault("metadata", {})["namespace"] = ns
    name = _name(expected)
    if name:
        live = backend.get(api_version, kind, ns, name)
        return expected, [live] if live is not None else []
    labels = metadata.get("labels") or {}
    return expected, backend.list(api_version, kind, ns if info.namespaced else None,
                                  {str(k): str(v) for k, v in labels.items()})


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def _absent(expected: Obj, namespace: str) -> str:
    meta = expected.get("metadata") or {}
    where = f" in namespace {meta['namespace']}" if meta.get("namespace") else ""
    if _name(expected):
        return f"not found{where}"
    labels = meta.get("labels")
    with_labels = f" with labels {labels}" if labels else ""
    return f"no {expected.get('kind')} exists{where}{with_labels}"
