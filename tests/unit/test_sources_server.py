"""ArtifactServer: serves archives over HTTP on 127.0.0.1 and nothing outside the store."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from reconciler.sources.artifacts import Artifact, ArtifactStore
from reconciler.sources.server import ArtifactServer, ArtifactServerError


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    (tmp_path / "outside.tar.gz").write_text("not for you")
    return ArtifactStore(tmp_path / "store", "http://artifacts.test")


@pytest.fixture
def artifact(tmp_path: Path, store: ArtifactStore) -> Artifact:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "app.yaml").write_text("kind: ConfigMap\n")
    return store.store_directory(
        "GitRepository", "default", "app", "main@sha1:abc", tree, now="2024-01-01T00:00:00Z"
    )


@pytest.fixture
def server(store: ArtifactStore) -> Iterator[ArtifactServer]:
    with ArtifactServer(store) as srv:
        yield srv


def request(
    server: ArtifactServer, method: str, raw_path: str
) -> tuple[int, dict[str, str], bytes]:
    netloc = urlsplit(server.base_url).netloc
    conn = http.client.HTTPConnection(netloc, timeout=5)
    try:
        # http.client sends the path verbatim, so traversal attempts reach the server unaltered.
        conn.request(method, raw_path)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def test_serves_an_artifact_by_its_path(
    server: ArtifactServer, store: ArtifactStore, artifact: Artifact
) -> None:
    assert server.base_url.startswith("http://127.0.0.1:")
    status, headers, body = request(server, "GET", f"/{artifact.path}")
    assert status == 200
    assert body == store.open(artifact.path).read_bytes()
    assert headers["Content-Type"] == "application/gzip"
    assert int(headers["Content-Length"]) == artifact.size


def test_head_reports_size_without_a_body(server: ArtifactServer, artifact: Artifact) -> None:
    status, headers, body = request(server, "HEAD", f"/{artifact.path}")
    assert (status, body) == (200, b"")
    assert int(headers["Content-Length"]) == artifact.size


def test_missing_artifact_is_404(server: ArtifactServer, artifact: Artifact) -> None:
    status, _, body = request(server, "GET", "/gitrepository/default/app/nope.tar.gz")
    assert status == 404
    assert b"store" not in body


@pytest.mark.parametrize(
    "raw_path",
    [
        "/../outside.tar.gz",
        "/gitrepository/../../outside.tar.gz",
        "/%2e%2e/outside.tar.gz",
        "/%2E%2E%2Foutside.tar.gz",
        "/gitrepository/%2e%2e/%2e%2e/outside.tar.gz",
    ],
)
def test_refuses_paths_outside_the_store(
    server: ArtifactServer, store: ArtifactStore, artifact: Artifact, raw_path: str
) -> None:
    status, _, body = request(server, "GET", raw_path)
    assert status in (403, 404)
    assert b"not for you" not in body
    assert str(store.root.parent).encode() not in body


def test_base_url_before_start_is_an_error(store: ArtifactStore) -> None:
    srv = ArtifactServer(store)
    with pytest.raises(ArtifactServerError):
        _ = srv.base_url
    srv.stop()  # stopping a server that never started is harmless
