"""The engine's source controller end to end: a Secret read through the Backend, status and
events written, and the artifact fetched from the ArtifactServer with its digest and size."""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from reconciler.engine.sources import GitRepositoryReconciler
from reconciler.model.crds import product_crds
from reconciler.sources.artifacts import ArtifactStore
from reconciler.sources.git import GitRepositoryController
from reconciler.sources.server import ArtifactServer
from simulator.clock import VirtualClock
from simulator.cluster import InMemoryCluster
from tests.gitservers import BareRepo, HttpAuth, SmartHttpServer
from tests.integration.conftest import gitrepository


def test_engine_reads_secret_writes_status_and_serves_the_artifact(
    tmp_path: Path, served: Path, repo: BareRepo,
) -> None:
    clock = VirtualClock()
    cluster = InMemoryCluster(clock)
    for crd in product_crds():
        cluster.apply(crd)
    with ArtifactServer(ArtifactStore(tmp_path / "store", "http://pending")) as server:
        store = ArtifactStore(tmp_path / "store", server.base_url)
        reconciler = GitRepositoryReconciler(
            cluster, GitRepositoryController(store, clock, tmp_path / "work"))
        with SmartHttpServer(served, HttpAuth(users={"deploy": "s3cr3t-pw"})) as http:
            cluster.apply({"apiVersion": "v1", "kind": "Namespace",
                           "metadata": {"name": "default"}})
            cluster.apply({"apiVersion": "v1", "kind": "Secret",
                           "metadata": {"name": "auth", "namespace": "default"},
                           "data": {"username": "ZGVwbG95", "password": "czNjcjN0LXB3"}})
            obj = cluster.apply(gitrepository(http.url(repo), {"branch": "main"},
                                              secretRef={"name": "auth"}))
            assert reconciler.reconcile(obj) == 60.0
        live = cluster.get("source.toolkit.fluxcd.io/v1", "GitRepository", "default", "app")
        assert live is not None
        artifact = live["status"]["artifact"]
        with urllib.request.urlopen(artifact["url"]) as response:
            body = response.read()
        assert f"sha256:{hashlib.sha256(body).hexdigest()}" == artifact["digest"]
        assert len(body) == artifact["size"]
        assert [e["reason"] for e in cluster.events()] == ["NewArtifact"]
        assert "s3cr3t-pw" not in repr(live) + repr(cluster.events())
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{server.base_url}/gitrepository/%2e%2e/%2e%2e/etc/passwd")
        assert refused.value.code == 403
        refused.value.close()
