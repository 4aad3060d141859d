"""Normalization before comparing: what the server owns is dropped, equivalent forms made equal.

Both sides of a diff go through `normalize`: status, server-written metadata (uid,
resourceVersion, generation, creationTimestamp, managedFields, ...) and kubectl's
last-applied-configuration annotation are dropped, and a Secret's `stringData` is folded into
`data` (base64), as the API server does on write. Quantities (`1000m` vs `1`) are compared by value
in `compare`, where the walk already knows the field it is in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.model.objects import Obj, fold_string_data

SERVER_METADATA = frozenset({
    "uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink",
    "deletionTimestamp", "deletionGracePeriodSeconds",
})
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def normalize(obj: Mapping[str, Any]) -> Obj:
    """A copy of `obj` without server-owned fields; nested values are shared, not copied."""
    out: Obj = {k: v for k, v in obj.items() if k != "status"}
    metadata = obj.get("metadata")
    if isinstance(metadata, Mapping):
        new_meta = {k: v for k, v in metadata.items() if k not in SERVER_METADATA}
        annotations = new_meta.get("annotations")
        if isinstance(annotations, Mapping) and LAST_APPLIED in annotations:
            rest = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
            if rest:
                new_meta["annotations"] = rest
            else:
                new_meta.pop("annotations")
        out["metadata"] = new_meta
    if obj.get("kind") == "Secret" and obj.get("apiVersion") == "v1" and "stringData" in obj:
        out = fold_string_data(out)
    return out
