"""Left-scoped comparison of a desired object with the live one.

Only the fields the desired object declares are compared, so fields the API server or another
controller fills in (defaults, status, uid, ...) never read as drift. Both sides are normalized
first (`normalize`), and quantities under resource fields compare by value (`quantity`).

The equality check (`is_subset`) is a plain recursive walk that stops at the first difference:
the common no-op reconcile costs one walk over the desired object. For objects that differ,
`differences` walks once more and lists each changed field with its before and after values;
deepdiff is kept only for `report`, the detailed tree some callers print.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deepdiff import DeepDiff

from reconciler.diff.normalize import normalize
from reconciler.diff.quantity import is_quantity_field, quantities_equal

# Metadata the user declares; everything else under metadata belongs to the server.
DECLARED_METADATA = ("name", "namespace", "labels", "annotations", "ownerReferences",
                     "finalizers")


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class Difference:
    """One field a reconcile would change: `spec.replicas` from `before` to `after`."""

    path: str
    before: Any
    after: Any


def comparable(desired: Mapping[str, Any]) -> dict[str, Any]:
    """The part of `desired` a reconcile owns: everything but status and server metadata."""
    norm = normalize(desired)
    meta = norm.pop("metadata", None) or {}
    declared = {k: meta[k] for k in DECLARED_METADATA if k in meta}
    if declared:
        norm["metadata"] = declared
    return norm


def scalar_equal(desired: Any, live: Any, parent: str | None, key: str | None) -> bool:
    if isinstance(desired, bool) or isinstance(live, bool):
        return desired is live
    if desired == live:
        return True
    return is_quantity_field(parent, key) and quantities_equal(desired, live)


def is_subset(desired: Any, live: Any, parent: str | None = None, key: str | None = None) -> bool:
    """True when every field `desired` declares has the same value in `live`."""
    # Exact types, not the Mapping ABC: objects are plain dicts, and an ABC isinstance check
    # costs several times more on this, the hottest path of every no-op reconcile.
    kind = type(desired)
    if kind is str or kind is int or kind is float:
        if desired == live and type(live) is not bool:
            return True
        return scalar_equal(desired, live, parent, key)
    if kind is dict:
        if type(live) is not dict:
            return False
        for k, value in desired.items():
            if k not in live:
                if value in (None, {}, []):
                    continue
                return False
            if not is_subset(value, live[k], key, k):
                return False
        return True
    if kind is list:
        if type(live) is not list or len(desired) != len(live):
            return False
        return all(is_subset(d, v, parent, key) for d, v in zip(desired, live, strict=True))
    if isinstance(desired, Mapping):  # a read-only view or other mapping: compare as a dict
        return is_subset(dict(desired), dict(live) if isinstance(live, Mapping) else live,
                         parent, key)
    return scalar_equal(desired, live, parent, key)


def in_sync(desired: Mapping[str, Any], live: Mapping[str, Any] | None) -> bool:
    return live is not None and is_subset(comparable(desired), live)


def differences(desired: Mapping[str, Any], live: Mapping[str, Any] | None) -> list[Difference]:
    """Every declared field of `desired` whose live value differs (left-scoped)."""
    out: list[Difference] = []
    _walk(comparable(desired), live if live is not None else {}, "", None, None, out)
    return out


def _walk(want: Any, have: Any, path: str, parent: str | None, key: str | None,
          out: list[Difference]) -> None:
    if isinstance(want, Mapping) and isinstance(have, Mapping):
        for k, value in want.items():
            sub = f"{path}.{k}" if path else str(k)
            if k not in have:
                if value not in (None, {}, []):
                    out.append(Difference(sub, MISSING, value))
                continue
            _walk(value, have[k], sub, key, k, out)
        return
    if isinstance(want, list) and isinstance(have, list) and len(want) == len(have):
        for i, (w, h) in enumerate(zip(want, have, strict=True)):
            _walk(w, h, f"{path}[{i}]", parent, key, out)
        return
    if isinstance(want, Mapping | list) or isinstance(have, Mapping | list):
        if not is_subset(want, have, parent, key):
            out.append(Difference(path, have, want))
        return
    if not scalar_equal(want, have, parent, key):
        out.append(Difference(path, have, want))


def scoped_live(desired: Any, live: Any) -> Any:
    """`live` cut down to the fields `desired` declares (for a readable report)."""
    if isinstance(desired, Mapping) and isinstance(live, Mapping):
        return {k: scoped_live(v, live[k]) for k, v in desired.items() if k in live}
    if isinstance(desired, list) and isinstance(live, list):
        return [scoped_live(d, v) for d, v in zip(desired, live, strict=False)] + list(
            live[len(desired):]
        )
    return live


def report(desired: Mapping[str, Any], live: Mapping[str, Any] | None) -> dict[str, Any]:
    """A deepdiff report of what applying `desired` would change in `live`."""
    want = comparable(desired)
    have = scoped_live(want, dict(live)) if live is not None else {}
    result: dict[str, Any] = DeepDiff(have, want, ignore_order=False).to_dict()
    return result


def changed_paths(desired: Mapping[str, Any], live: Mapping[str, Any] | None) -> list[str]:
    """Dotted paths of the fields that differ, e.g. `spec.template.spec.containers[0].image`."""
    return sorted({d.path for d in differences(desired, live)})
