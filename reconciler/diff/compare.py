"""Left-scoped comparison of a desired object with the live one.

Only the fields the desired object declares are compared, so fields the API server or another
controller fills in (defaults, status, uid, ...) never read as drift. The equality check is a plain
recursive walk that stops at the first difference; the readable report (deepdiff) is only computed
for objects that differ, which keeps the common no-op reconcile cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deepdiff import DeepDiff

# Metadata the user declares; everything else under metadata belongs to the server.
DECLARED_METADATA = ("labels", "annotations", "ownerReferences", "finalizers")


def comparable(desired: Mapping[str, Any]) -> dict[str, Any]:
    """The part of `desired` a reconcile owns: everything but status and server metadata."""
    out = {k: v for k, v in desired.items() if k not in ("status", "metadata")}
    meta = desired.get("metadata") or {}
    declared = {k: meta[k] for k in DECLARED_METADATA if k in meta}
    if declared:
        out["metadata"] = declared
    return out


def is_subset(desired: Any, live: Any) -> bool:
    """True when every field `desired` declares has the same value in `live`."""
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return False
        for key, value in desired.items():
            if key not in live:
                if value in (None, {}, []):
                    continue
                return False
            if not is_subset(value, live[key]):
                return False
        return True
    if isinstance(desired, list):
        if not isinstance(live, list) or len(desired) != len(live):
            return False
        return all(is_subset(d, v) for d, v in zip(desired, live, strict=True))
    if isinstance(desired, bool) or isinstance(live, bool):
        return desired is live
    return bool(desired == live)


def in_sync(desired: Mapping[str, Any], live: Mapping[str, Any] | None) -> bool:
    return live is not None and is_subset(comparable(desired), live)


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
    want = comparable(desired)
    have = scoped_live(want, dict(live)) if live is not None else {}
    diff = DeepDiff(have, want, ignore_order=False)
    paths: list[str] = []
    for items in diff.values():
        for item in items:
            paths.append(_dotted(str(item)))
    return sorted(set(paths))


def _dotted(deepdiff_path: str) -> str:
    # root['spec']['template'][0] -> spec.template[0]
    out = deepdiff_path.removeprefix("root")
    out = out.replace("']['", ".").replace("['", ".").replace("']", "")
    return out.lstrip(".")
