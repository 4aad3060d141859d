"""A simulated cluster for the webhook receiver's tests, and Receiver objects.

`AnnotatingCluster` differs from `InMemoryCluster` in one way: a server-side apply of only
metadata to an existing object is merged before the CRD schema is checked, as kube-apiserver
does. `InMemoryCluster._admit` checks the applied configuration alone, so the receiver's apply of
just `reconcile.fluxcd.io/requestedAt` is refused there ("spec: required field is missing");
`test_receiver_targets.py` holds a strict xfail that flips when the simulator is fixed, and then
this class should go.
"""

from __future__ import annotations

import base64
from typing import Any

from reconciler.backends.base import FIELD_MANAGER
from reconciler.model.crds import product_crds
from reconciler.model.objects import Obj
from simulator.clock import VirtualClock
from simulator.cluster import InMemoryCluster

TOKEN = "s3cr3t-webhook-token"


class AnnotatingCluster(InMemoryCluster):
    def apply(self, obj: Obj, field_manager: str = FIELD_MANAGER, force: bool = False) -> Obj:
        meta = obj.get("metadata") or {}
        only_metadata = set(obj) <= {"apiVersion", "kind", "metadata"}
        if only_metadata and set(meta) <= {"name", "namespace", "annotations", "labels"}:
            live = self.get(str(obj["apiVersion"]), str(obj["kind"]),
                            str(meta.get("namespace") or ""), str(meta["name"]))
            if live is not None:
                def merge(current: Obj) -> None:
                    m = current.setdefault("metadata", {})
                    for key in ("annotations", "labels"):
                        if key in meta:
                            m[key] = {**(m.get(key) or {}), **meta[key]}
                return self.edit(str(obj["apiVersion"]), str(obj["kind"]),
                                 str(meta.get("namespace") or ""), str(meta["name"]), merge,
                                 field_manager)
        return super().apply(obj, field_manager, force)


def new_cluster(cls: type[InMemoryCluster] = AnnotatingCluster,
                namespaces: tuple[str, ...] = ("default",)) -> tuple[InMemoryCluster,
                                                                    VirtualClock]:
    clock = VirtualClock()
    cluster = cls(clock)
    for crd in product_crds():
        cluster.apply(crd)
    for ns in namespaces:
        cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    return cluster, clock


def token_secret(name: str = "webhook-token", namespace: str = "default",
                 token: str | None = TOKEN) -> Obj:
    data = {"token": base64.b64encode(token.encode()).decode()} if token is not None else {
        "other": "eA=="}
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace}, "data": data}


def receiver(type_: str = "github", name: str = "hook", namespace: str = "default",
             resources: list[dict[str, Any]] | None = None, **spec: Any) -> Obj:
    return {
        "apiVersion": "notification.toolkit.fluxcd.io/v1", "kind": "Receiver",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"type": type_, "secretRef": {"name": "webhook-token"},
                 "resources": resources if resources is not None else [
                     {"kind": "GitRepository", "name": "app"}],
                 **spec},
    }


def gitrepository(name: str = "app", namespace: str = "default",
                  labels: dict[str, str] | None = None, url: str = "https://example.com/a.git",
                  ) -> Obj:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": meta, "spec": {"url": url, "interval": "1m0s"}}
