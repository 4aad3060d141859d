"""A simulated cluster for the webhook receiver's tests, and Receiver objects."""

from __future__ import annotations

import base64
from typing import Any

from reconciler.model.crds import product_crds
from reconciler.model.objects import Obj
from simulator.clock import VirtualClock
from simulator.cluster import InMemoryCluster

TOKEN = "s3cr3t-webhook-token"


def new_cluster(namespaces: tuple[str, ...] = ("default",)
                ) -> tuple[InMemoryCluster, VirtualClock]:
    clock = VirtualClock()
    cluster = InMemoryCluster(clock)
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
