"""The artifact HTTP server: read-only GET/HEAD of archives in an ArtifactStore.

It owns the listening socket and its serving thread. Every request path goes through
`ArtifactStore.open`, which is the single guard against traversal; responses never name a file
system path, only the generic status text.
"""

from __future__ import annotations

import shutil
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any
from urllib.parse import unquote

import structlog

from reconciler.runtime.serving import BackgroundHTTPServer
from reconciler.sources.artifacts import ArtifactNotFoundError, ArtifactPathError, ArtifactStore

log = structlog.get_logger(__name__)


class ArtifactServerError(RuntimeError):
    """The server was used out of order (e.g. `base_url` before `start`)."""


class _ArtifactHandler(BaseHTTPRequestHandler):
    # Set on the per-server subclass made in ArtifactServer.start.
    store: ArtifactStore
    server_version = "reconciler-artifacts"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._serve(with_body=True)

    def do_HEAD(self) -> None:
        self._serve(with_body=False)

    def _serve(self, with_body: bool) -> None:
        # Decode once, then let the store judge the decoded path: `%2e%2e` is `..` to it as well.
        raw_path = self.path.split("?", 1)[0].split("#", 1)[0]
        rel = unquote(raw_path).lstrip("/")
        try:
            file = self.store.open(rel)
        except ArtifactPathError:
            self._status_only(HTTPStatus.FORBIDDEN)
            return
        except ArtifactNotFoundError:
            self._status_only(HTTPStatus.NOT_FOUND)
            return
        size = file.stat().st_size
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/gzip")
        self.send_header("Content-Length", str(size))
        # Names are digests, so a URL's bytes never change.
        self.send_header("Cache-Control", "public, max-age=31536000, immutable")
        self.end_headers()
        if with_body:
            with file.open("rb") as fh:
                try:
                    shutil.copyfileobj(fh, self.wfile, 1 << 16)
                except (BrokenPipeError, ConnectionResetError):
                    log.debug("artifact client went away", path=rel)

    def _status_only(self, status: HTTPStatus) -> None:
        body = f"{status.value} {status.phrase}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # The stdlib writes to stderr; route access logs through structlog instead.
        log.debug("artifact request", client=self.client_address[0], line=format % args)


class ArtifactServer:
    """Serves one store over HTTP from a background thread; use as a context manager."""

    def __init__(
        self,
        store: ArtifactStore,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        poll_interval: float = 0.1,
    ) -> None:
        self.store = store
        handler = type("ArtifactHandler", (_ArtifactHandler,), {"store": store})
        self._server = BackgroundHTTPServer(handler, host, port, name="artifact-server",
                                            poll_interval=poll_interval)

    @property
    def base_url(self) -> str:
        url = self._server.url
        if url is None:
            raise ArtifactServerError("artifact server is not started; call start() first")
        return url

    def start(self) -> None:
        if self._server.started:
            return
        self._server.start()
        log.info("artifact server started", url=self.base_url)

    def stop(self) -> None:
        if not self._server.started:
            return
        self._server.stop()
        log.info("artifact server stopped")

    def __enter__(self) -> ArtifactServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
