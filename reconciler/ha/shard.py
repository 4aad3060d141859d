"""Sharding of owners across replicas by a label, as Flux shards its controllers.

A replica started with `--shard KEY` reconciles only the owners (Workload, Deliverable,
Runnable, Kustomization, GitRepository) labelled `sharding.fluxcd.io/key: KEY`; a replica
started without one reconciles only the owners *without* that label (Flux's main controller,
`!sharding.fluxcd.io/key`), and every cluster-scoped blueprint (ClusterSupplyChain,
ClusterDelivery, templates), so exactly one replica writes each object's status. Run one
unsharded replica beside the shards, as Flux does.

Objects stamped by an owner (ConfigMaps, Deployments, kpack Images, Runnables' runs, what a
Kustomization applies) are not sharded themselves: they are never reconciled on their own,
only read and written while their owner is, so they follow the owner to whichever replica
holds its key. Their informers (and those of blueprints, templates, Secrets and the other
kinds a reconcile reads) stay unfiltered; only the owners' list and watch carry `selector`.

Moving an owner to another shard is relabelling it. The old replica's watch (with the
selector) then sees it as deleted; that is not a deletion of the owner, and nothing may be
pruned or cleaned up for it. Both replicas apply with the same field manager, so the short
overlap while the old one finishes a reconcile in flight causes no apply conflicts.

Each shard elects its own leader: pass `lease_name(base, shard)` as the Lease name (Flux
likewise derives its leader election ID from the label selector).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from reconciler.model.apivalidation import is_label_value
from reconciler.model.objects import Obj

SHARD_LABEL = "sharding.fluxcd.io/key"

SHARDED_KINDS: frozenset[tuple[str, str]] = frozenset({
    ("carto.run", "Workload"),
    ("carto.run", "Deliverable"),
    ("carto.run", "Runnable"),
    ("kustomize.toolkit.fluxcd.io", "Kustomization"),
    ("source.toolkit.fluxcd.io", "GitRepository"),
})
"""(group, kind) of the owners: the kinds whose reconciles are split between shards."""


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


@dataclass(frozen=True)
class ShardFilter:
    """Which objects one replica reconciles. `key=None`: the unsharded (main) replica."""

    key: str | None = None

    def __post_init__(self) -> None:
        if self.key is None:
            return
        if not self.key:
            raise ValueError("a shard key cannot be empty (leave --shard out for the replica "
                             "that reconciles unlabelled objects)")
        problems = is_label_value(self.key)
        if problems:
            raise ValueError(f"invalid shard key {self.key!r}: {problems[0]}")

    @staticmethod
    def sharded(api_version: str, kind: str) -> bool:
        """Whether objects of this kind are split between shards (the owners)."""
        return (_group(api_version), kind) in SHARDED_KINDS

    @property
    def selector(self) -> str:
        """The label selector equivalent to `owns` for the owners' list and watch."""
        if self.key is None:
            return f"!{SHARD_LABEL}"
        return f"{SHARD_LABEL}={self.key}"

    def selector_for(self, api_version: str, kind: str) -> str | None:
        """The label selector for an informer of this kind: `selector` for the owners, None
        (watch everything) for every kind an owner's reconcile reads or stamps."""
        return self.selector if self.sharded(api_version, kind) else None

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """Whether an owner with these labels is this replica's."""
        labels = labels or {}
        if self.key is None:
            return SHARD_LABEL not in labels
        return labels.get(SHARD_LABEL) == self.key

    def owns(self, obj: Obj) -> bool:
        """Whether this replica reconciles `obj`, an object some controller reconciles: an
        owner by its label; anything else (the blueprints) only on the unsharded replica."""
        if not self.sharded(str(obj.get("apiVersion") or ""), str(obj.get("kind") or "")):
            return self.key is None
        meta = obj.get("metadata")
        labels = meta.get("labels") if isinstance(meta, dict) else None
        return self.matches(labels if isinstance(labels, dict) else None)


_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def lease_name(base: str, shard: str | None) -> str:
    """The leader election Lease of a shard's replicas: `base` for the unsharded replicas,
    `base-shard-KEY` for a key that is a valid name, else `base-shard-` and a digest of it."""
    if shard is None:
        return base
    suffix = shard if _DNS_LABEL.match(shard) and len(shard) <= 40 else \
        hashlib.sha256(shard.encode()).hexdigest()[:10]
    return f"{base}-shard-{suffix}"
