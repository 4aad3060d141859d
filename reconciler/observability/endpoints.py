"""The operations HTTP server: `/metrics`, `/healthz`, `/readyz`, `/debug/objects` and the
portal under `/ui`.

It owns the listening socket and its serving thread; what it serves comes from outside: a
Prometheus registry, a `HealthState`, a callable that returns the debug document, and one that
serves a request under `/ui` (the portal, `reconciler.portal.http.serve_request`). Only GET and
HEAD are answered, except under `/ui` (the portal's actions are POSTs, refused unless turned on),
and nothing else here changes the daemon's state.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import structlog
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from reconciler.model.errors import ReconcilerError
from reconciler.observability.health import HealthState, Verdict
from reconciler.runtime.serving import BackgroundHTTPServer

log = structlog.get_logger(__name__)

DebugObjects = Callable[[Mapping[str, str]], Any]
"""Gets the query parameters (first value of each) and returns a JSON-serializable document."""

Mounted = Callable[[BaseHTTPRequestHandler], None]
"""Answers one request under `/ui` on the handler it is given (reads the body, writes the
response)."""


class EndpointsError(ReconcilerError):
    """The server could not start (the address is taken, or not ours to bind)."""


class _OperationsHandler(BaseHTTPRequestHandler):
    # Set on the per-server subclass made in OperationsServer.start.
    registry: CollectorRegistry
    health: HealthState
    debug_objects: DebugObjects | None
    ui: Mounted | None
    server_version = "reconciler"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._route(with_body=True)

    def do_HEAD(self) -> None:
        self._route(with_body=False)

    def do_POST(self) -> None:
        if self.ui is not None and _under_ui(self.path):
            self.ui(self)
            return
        self.close_connection = True  # its body is not read
        self._send(HTTPStatus.METHOD_NOT_ALLOWED, "text/plain; charset=utf-8",
                   b"405 Method Not Allowed: only GET and HEAD, and POST under /ui/api\n", True)

    def _route(self, with_body: bool) -> None:
        url = urlsplit(self.path)
        if self.ui is not None and _under_ui(self.path):
            self.ui(self)
        elif url.path == "/metrics":
            # Prometheus asks for OpenMetrics in its Accept header; anything else gets text.
            encode, content_type = choose_encoder(self.headers.get("Accept") or "")
            self._send(HTTPStatus.OK, content_type, encode(self.registry), with_body)
        elif url.path == "/healthz":
            self._verdict(self.health.liveness(), with_body)
        elif url.path == "/readyz":
            self._verdict(self.health.readiness(), with_body)
        elif url.path == "/debug/objects" and self.debug_objects is not None:
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            body = json.dumps(self.debug_objects(query), indent=1).encode()
            self._send(HTTPStatus.OK, "application/json", body, with_body)
        else:
            self._send(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8",
                       b"404 Not Found: try /metrics, /healthz, /readyz, /debug/objects "
                       b"or /ui/\n",
                       with_body)

    def _verdict(self, verdict: Verdict, with_body: bool) -> None:
        status = HTTPStatus.OK if verdict.ok else HTTPStatus.SERVICE_UNAVAILABLE
        self._send(status, "text/plain; charset=utf-8", f"{verdict.reason}\n".encode(),
                   with_body)

    def _send(self, status: HTTPStatus, content_type: str, body: bytes, with_body: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # Prometheus scrapes every few seconds: access lines are debug, through structlog.
        log.debug("operations request", client=self.client_address[0], line=format % args)


def _under_ui(target: str) -> bool:
    path = urlsplit(target).path
    return path == "/ui" or path.startswith("/ui/")


class OperationsServer:
    """Serves the operations endpoints from a background thread."""

    def __init__(
        self,
        registry: CollectorRegistry,
        health: HealthState,
        host: str = "127.0.0.1",
        port: int = 0,
        debug_objects: DebugObjects | None = None,
        ui: Mounted | None = None,
    ) -> None:
        handler = type("OperationsHandler", (_OperationsHandler,), {
            "registry": registry, "health": health,
            # staticmethod: a plain function stored on a class would be bound to the handler.
            "debug_objects": staticmethod(debug_objects) if debug_objects else None,
            "ui": staticmethod(ui) if ui else None,
        })
        self._server = BackgroundHTTPServer(handler, host, port, name="operations-server")

    @property
    def url(self) -> str:
        url = self._server.url
        if url is None:
            raise EndpointsError("operations server is not started; call start() first")
        return url

    def start(self) -> None:
        if self._server.started:
            return
        try:
            self._server.start()
        except OSError as exc:
            raise EndpointsError(
                f"cannot serve metrics and health on {self._server.host}:{self._server.port}: "
                f"{exc.strerror} (choose another address with --listen)") from exc
        log.info("operations server started", url=self.url)

    def stop(self) -> None:
        if not self._server.started:
            return
        self._server.stop()
        log.info("operations server stopped")
