"""simulator.sourcefetch: source artifacts read from an in-process store or over HTTP, bounded."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.model.limits import Limits
from reconciler.sources.artifacts import Artifact, ArtifactStore
from reconciler.sources.server import ArtifactServer
from simulator.sourcefetch import SourceFetchError, fetch_source
from simulator.tekton import TaskJob, run_task

NOW = "2024-01-01T00:00:00Z"


def _store_tree(tmp_path: Path, base_url: str, files: dict[str, str]) -> tuple[ArtifactStore,
                                                                               Artifact]:
    tree = tmp_path / "tree"
    tree.mkdir(exist_ok=True)
    for rel, text in files.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text(text)
    store = ArtifactStore(tmp_path / "store", base_url)
    return store, store.store_directory("GitRepository", "default", "app", "main@sha1:abc", tree,
                                        now=NOW)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ArtifactServer, ArtifactStore, Artifact]]:
    # The store's own base URL is one no server answers; the test fetches through the server's
    # 127.0.0.1 address, which no in-process store claims, so the bytes come over HTTP.
    store, artifact = _store_tree(tmp_path, "http://elsewhere.invalid",
                                  {"app.py": "print('hi')\n", "src/lib.txt": "x" * 4000})
    with ArtifactServer(store) as server:
        yield server, store, artifact


def test_an_in_process_store_is_read_without_http(tmp_path: Path) -> None:
    # `simulate` writes URLs with the in-cluster host; nothing listens there.
    _, artifact = _store_tree(
        tmp_path, "http://source-controller.reconciler-system.svc.cluster.local./",
        {"requirements.txt": "flask\n", "pkg/app.py": "x = 1\n"})
    root = fetch_source(artifact.url, tmp_path / "out")
    assert root == tmp_path / "out"
    assert (root / "requirements.txt").read_text() == "flask\n"
    assert (root / "pkg" / "app.py").read_text() == "x = 1\n"


def test_downloads_over_http_and_caches_by_url(
    tmp_path: Path, served: tuple[ArtifactServer, ArtifactStore, Artifact]
) -> None:
    server, _, artifact = served
    url = f"{server.base_url}/{artifact.path}"
    root = fetch_source(url, tmp_path / "first")
    assert (root / "app.py").read_text() == "print('hi')\n"
    assert (root / "src" / "lib.txt").read_text() == "x" * 4000
    server.stop()
    # Content-addressed: the second fetch of the same URL needs no server.
    again = fetch_source(url, tmp_path / "second")
    assert (again / "src" / "lib.txt").read_text() == "x" * 4000


def test_an_archive_over_the_size_limit_is_refused_while_downloading(
    tmp_path: Path, served: tuple[ArtifactServer, ArtifactStore, Artifact]
) -> None:
    server, _, artifact = served
    # A distinct URL (query) so the cache of another test cannot answer.
    url = f"{server.base_url}/{artifact.path}?size-test"
    small = Limits(artifact_bytes=1)
    with pytest.raises(SourceFetchError, match="limit artifact_bytes"):
        fetch_source(url, tmp_path / "out", small)


def test_unpacked_size_is_bounded_too(tmp_path: Path) -> None:
    _, artifact = _store_tree(tmp_path, "http://local.invalid", {"big.txt": "y" * 50_000})
    with pytest.raises(SourceFetchError, match="artifact_bytes"):
        fetch_source(artifact.url, tmp_path / "out", Limits(artifact_bytes=10_000))


def test_missing_artifact_names_the_status(
    tmp_path: Path, served: tuple[ArtifactServer, ArtifactStore, Artifact]
) -> None:
    server, _, _ = served
    url = f"{server.base_url}/gitrepository/default/app/{'0' * 64}.tar.gz"
    with pytest.raises(SourceFetchError, match="HTTP 404") as info:
        fetch_source(url, tmp_path / "out")
    assert url in str(info.value)


def test_a_file_that_is_not_an_archive_is_a_clear_error(
    tmp_path: Path, served: tuple[ArtifactServer, ArtifactStore, Artifact]
) -> None:
    server, store, _ = served
    (store.root / "junk.tar.gz").write_bytes(b"this is not gzip")
    with pytest.raises(SourceFetchError, match=r"not a readable tar\.gz"):
        fetch_source(f"{server.base_url}/junk.tar.gz", tmp_path / "out")


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/a.tar.gz", "/etc/passwd",
                                 "http:///nohost.tar.gz"])
def test_only_http_urls_are_fetched(tmp_path: Path, url: str) -> None:
    with pytest.raises(SourceFetchError, match="only http"):
        fetch_source(url, tmp_path / "out")
    assert not (tmp_path / "out").exists()


class _Redirecting(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(302)
        self.send_header("Location", "http://127.0.0.1:9/elsewhere.tar.gz")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_redirects_are_not_followed(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Redirecting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/a.tar.gz"
        with pytest.raises(SourceFetchError, match="redirect"):
            fetch_source(url, tmp_path / "out")
    finally:
        server.shutdown()
        server.server_close()


class _Dripping(http.server.BaseHTTPRequestHandler):
    """Sends the headers, then one byte every 0.2 s for 6 s (so a fetch without an overall
    limit ends, failing on the junk, rather than hanging the test): each read gets data well
    within any per-read timeout."""

    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/gzip")
        self.end_headers()
        stop = getattr(self.server, "stop")  # noqa: B009 - set on the server below
        try:
            for _ in range(30):
                if stop.wait(0.2):
                    break
                self.wfile.write(b"\x1f")
                self.wfile.flush()
        except OSError:
            pass

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def dripping() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Dripping)
    server.stop = threading.Event()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/drip.tar.gz"
    finally:
        server.stop.set()  # type: ignore[attr-defined]
        server.shutdown()
        server.server_close()


def test_a_dripping_server_cannot_outlast_the_download_limit(tmp_path: Path,
                                                             dripping: str) -> None:
    # A byte every 0.2 s never trips a per-read timeout of 1 s; the limit is for the whole
    # download, so the fetch fails (without it, it would never end).
    with pytest.raises(SourceFetchError) as raised:
        fetch_source(dripping, tmp_path / "out", Limits(source_fetch_seconds=1.0))
    message = str(raised.value)
    assert dripping in message
    assert "did not finish within 1s (limit source_fetch_seconds)" in message
    assert not (tmp_path / "out").exists()


def test_the_callers_deadline_ends_a_download_sooner(tmp_path: Path, dripping: str) -> None:
    # A Tekton run passes its own deadline: the download stops there, not at the 60 s limit.
    with pytest.raises(SourceFetchError, match="did not finish by the run's deadline"):
        fetch_source(dripping, tmp_path / "out", Limits(), deadline=time.monotonic() + 0.5)


def test_a_tekton_run_stops_fetching_at_its_own_timeout(dripping: str) -> None:
    # run_task passes its run's deadline: a 0.5 s run does not wait out source_fetch_seconds.
    job = TaskJob(task="test", run_name="run-1", namespace="apps", uid="u1",
                  steps=({"name": "s", "script": "true"},), params={}, result_names=(),
                  workspaces=(), source_url=dripping, timeout=0.5)
    outcome = run_task(job, Limits())
    assert outcome.failure is not None
    reason, message = outcome.failure
    assert reason == "Failed"
    assert 'task "test": cannot fetch the source' in message
    assert dripping in message and "did not finish by the run's deadline" in message
    assert outcome.steps == []
