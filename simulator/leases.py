"""`InMemoryLeaseStore`: the `reconciler.ha.lease.LeaseStore` protocol over the in-memory
cluster, for leader election in tests and in a simulated environment.

It lives here because `reconciler` never imports `simulator`; it satisfies the protocol
structurally. The cluster's own write semantics do the work: `create` raises `AlreadyExists`
and `update` with a stale resourceVersion raises `StaleVersion`, both `Conflict`s, as
kube-apiserver's 409s are.
"""

from __future__ import annotations

from reconciler.model.objects import Obj, deep_copy
from simulator.cluster import LEASE, InMemoryCluster

LEASE_API_VERSION = f"{LEASE.group}/{LEASE.versions[0]}"
FIELD_MANAGER = "reconciler-leader-election"


class InMemoryLeaseStore:
    def __init__(self, cluster: InMemoryCluster, field_manager: str = FIELD_MANAGER) -> None:
        self.cluster = cluster
        self.field_manager = field_manager

    def get(self, namespace: str, name: str) -> Obj | None:
        return self.cluster.get(LEASE_API_VERSION, LEASE.kind, namespace, name)

    def create(self, lease: Obj) -> Obj:
        return self.cluster.create(lease, self.field_manager)

    def update(self, lease: Obj, resource_version: str) -> Obj:
        body = deep_copy(lease)
        body.setdefault("metadata", {})["resourceVersion"] = resource_version
        return self.cluster.update(body, self.field_manager)
