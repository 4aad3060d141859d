"""Prune: delete what an owner applied before and no longer renders, and nothing else.

`prune` is the one place objects are deleted for an owner (a Kustomization, or a Workload's
stamped objects). Its guards, each reported with a reason:

- nothing at all when the caller's fetch, render or apply did not complete (`applied_all`);
- nothing when the new render is empty but the previous inventory is not, unless the owner
  allows it explicitly (`allow_empty`);
- only objects in the previous inventory and not in the current one;
- only objects that still carry every owner label with the owner's value (so an object another
  owner took over is left alone);
- never an object annotated `reconciler.dev/prune: disabled` (Flux's
  `kustomize.toolkit.fluxcd.io/prune: disabled` is honoured too).

A failed delete is reported and stays in the inventory (`PruneResult.inventory`), so the next
reconcile tries again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import structlog

from reconciler.apply.inventory import Inventory, ObjectRef
from reconciler.apply.ordering import kind_rank
from reconciler.backends.base import Backend
from reconciler.model.errors import BackendError, NotFound, Rejected
from reconciler.model.objects import Obj, labels_of, meta

log = structlog.get_logger(__name__)

PRUNE_ANNOTATION = "reconciler.dev/prune"
FLUX_PRUNE_ANNOTATION = "kustomize.toolkit.fluxcd.io/prune"
DISABLED = "disabled"


def prune_disabled(live: Obj) -> bool:
    """The object opted out of pruning (ours, or Flux's annotation for users moving over)."""
    annotations = meta(live).get("annotations") or {}
    return DISABLED in (annotations.get(PRUNE_ANNOTATION), annotations.get(FLUX_PRUNE_ANNOTATION))


@dataclass
class PruneResult:
    deleted: list[ObjectRef] = field(default_factory=list)
    skipped: list[tuple[ObjectRef, str]] = field(default_factory=list)
    failed: list[tuple[ObjectRef, str]] = field(default_factory=list)
    refused: str | None = None
    inventory: Inventory = field(default_factory=Inventory)
    """The inventory to store: the current one, plus failed deletes (plus the whole previous
    inventory when prune was refused)."""


def prune(
    backend: Backend,
    previous: Inventory,
    current: Inventory,
    owner_labels: Mapping[str, str],
    *,
    applied_all: bool,
    allow_empty: bool = False,
) -> PruneResult:
    """Delete `previous - current`, within the guards in the module docstring."""
    if not applied_all:
        return PruneResult(refused="the fetch, render or apply did not complete, so nothing is "
                                   "pruned", inventory=previous.union(current))
    if not current and previous and not allow_empty:
        return PruneResult(
            refused=f"the render produced no objects; refusing to prune all {len(previous)} "
                    "objects of the previous inventory (allow it explicitly to empty the owner)",
            inventory=previous)
    result = PruneResult(inventory=current)
    stale = sorted(previous.minus(current),
                   key=lambda r: (kind_rank(r.kind), r.namespace, r.name), reverse=True)
    for ref in stale:
        try:
            live = backend.get(ref.api_version, ref.kind, ref.namespace, ref.name)
        except Rejected:
            live = None  # its kind is no longer served: the object is gone with it
        except BackendError as exc:
            result.failed.append((ref, str(exc)))
            continue
        if live is None:
            continue
        have = labels_of(live)
        missing = sorted(k for k, v in owner_labels.items() if have.get(k) != v)
        if missing:
            result.skipped.append((ref, f"it no longer carries the owner labels {missing}"))
            continue
        if prune_disabled(live):
            result.skipped.append((ref, f"annotated {PRUNE_ANNOTATION}: {DISABLED}"))
            continue
        try:
            backend.delete(ref.api_version, ref.kind, ref.namespace, ref.name)
        except NotFound:
            pass
        except BackendError as exc:
            result.failed.append((ref, str(exc)))
            continue
        result.deleted.append(ref)
        log.info("pruned", object=str(ref))
    if result.failed:
        result.inventory = current.union(Inventory.of(r for r, _ in result.failed))
    return result
