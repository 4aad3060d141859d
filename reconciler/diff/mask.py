"""Masking Secret values in anything shown to a person or written to a report.

Values are replaced with `+` runs as Argo CD does: equal values get the same mask and a changed
value a different one, so a diff still shows *that* a key changed without showing the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.model.objects import Obj

MASK = "++++++++"
CHANGED_MASK = "+++++++++"


def is_secret(obj: Mapping[str, Any] | None) -> bool:
    return obj is not None and obj.get("kind") == "Secret" and obj.get("apiVersion") == "v1"


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def mask_secret(obj: Obj) -> Obj:
    """A copy of a Secret with its values masked (its keys kept); any other object as it is.

    kubectl's last-applied-configuration annotation holds a copy of the data, so it is masked too.
    """
    if not is_secret(obj):
        return obj
    out = dict(obj)
    for field in ("data", "stringData"):
        if isinstance(out.get(field), Mapping):
            out[field] = dict.fromkeys(out[field], MASK)
    metadata = out.get("metadata")
    if isinstance(metadata, Mapping) and isinstance(metadata.get("annotations"), Mapping) \
            and LAST_APPLIED in metadata["annotations"]:
        out["metadata"] = {**metadata,
                           "annotations": {**metadata["annotations"], LAST_APPLIED: MASK}}
    return out


def mask_pair(desired: Obj | None, live: Obj | None) -> tuple[Obj | None, Obj | None]:
    """Copies of a Secret's desired and live forms with `data`/`stringData` values masked."""
    if not (is_secret(desired) or is_secret(live)):
        return desired, live
    want = dict((desired or {}).get("data") or {})
    have = dict((live or {}).get("data") or {})

    def masked(obj: Obj | None, mine: Mapping[str, Any], other: Mapping[str, Any],
               is_desired: bool) -> Obj | None:
        if obj is None:
            return None
        out = dict(obj)
        out.pop("stringData", None)
        if "data" in obj:
            out["data"] = {k: (CHANGED_MASK if is_desired and k in other and other[k] != v
                               else MASK) for k, v in mine.items()}
        return out

    return masked(desired, want, have, True), masked(live, have, want, False)


def mask_value(path: str, value: Any) -> Any:
    """A masked stand-in for a Secret field value at a dotted path (`data.password`)."""
    if path == "data" or path.startswith(("data.", "stringData")):
        if isinstance(value, Mapping):
            return dict.fromkeys(value, MASK)
        return MASK
    return value
