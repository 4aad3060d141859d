"""A digest of what an owner's reconcile read, for the owner controller's no-op fast path.

An owner reconcile that ended settled records the digest of its inputs: the owner's generation,
labels, annotations (so a new `reconcile.fluxcd.io/requestedAt` counts), spec and status, the
resourceVersion of every blueprint candidate, of every template it looked up and of every object
it stamped or read outputs from. When an owner is offered again and the digest is unchanged,
render, diff and apply are skipped. Anything edited out of band changes its resourceVersion and
so the digest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from reconciler.backends.base import Backend
from reconciler.model.objects import Obj, meta

Ref = tuple[str, str, str, str]
"""(apiVersion, kind, namespace, name) of an object a reconcile read."""


def owner_part(owner: Obj) -> Any:
    m = meta(owner)
    return [m.get("uid"), m.get("generation"), m.get("labels"), m.get("annotations"),
            owner.get("spec"), owner.get("status")]


def digest(owner: Obj, blueprints: Iterable[Obj], refs: Iterable[Ref], backend: Backend,
           settings: Any) -> str | None:
    """The digest, or None when one of the objects read is gone (never fast-path then)."""
    parts: list[Any] = [settings, owner_part(owner)]
    parts.append(sorted((str(meta(b).get("name")), str(meta(b).get("resourceVersion")))
                        for b in blueprints))
    for ref in refs:
        live = backend.get(*ref)
        if live is None:
            return None
        parts.append([list(ref), meta(live).get("resourceVersion"), meta(live).get("uid")])
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
