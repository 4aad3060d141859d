"""The `/debug/objects` document: the objects of the kinds the daemon watches, read-only.

Secret values never leave the process: `data` and `stringData` values are masked. The caller
holds the reconcile lock while this runs, so a document never shows half a round.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.backends.base import Backend
from reconciler.diff.mask import mask_secret
from reconciler.model.errors import BackendError
from reconciler.model.objects import Obj, namespace_of


def debug_document(
    backend: Backend, kinds: Sequence[tuple[str, str]], query: Mapping[str, str]
) -> dict[str, Any]:
    """`query` may narrow the listing: `kind` (e.g. `GitRepository`) and `namespace`."""
    want_kind, want_namespace = query.get("kind"), query.get("namespace")
    objects: list[Obj] = []
    for api_version, kind in kinds:
        if want_kind is not None and kind != want_kind:
            continue
        try:
            listed = backend.list(api_version, kind)
        except BackendError:
            continue  # a kind whose CRD is not installed: nothing to show
        objects.extend(mask_secret(o) for o in listed
                       if want_namespace is None or namespace_of(o) == want_namespace)
    return {"kinds": [{"apiVersion": a, "kind": k} for a, k in kinds], "objects": objects}
