"""The HTTP(S) transport: TLS, authentication, bounded request reading, responses and streams.

A request is authenticated (`Gate.authenticate`) before its body is read: without a token
that authenticates, only the public paths answer (401 otherwise). The rest of the way in
(impersonation, authorization, the authn/authz APIs, then the resource API) is `gate.Gate`.

Each connection is served on its own thread (a watch holds one for its duration), at most
`MAX_CONNECTIONS` at once. What a client sends is bounded: headers by the stdlib's limits and a
read timeout per receive, bodies by `MAX_BODY_BYTES` (413 beyond, and the connection closed),
chunked request bodies refused (411; kubectl and client-go send Content-Length). A request
that breaks a handler gets a 500 Status with a one-line message; the traceback goes to the log.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import structlog

from reconciler.runtime.serving import READ_TIMEOUT_SECONDS, BoundedHTTPServer
from simulator.apiserver.errors import status_body
from simulator.apiserver.faults import Faults
from simulator.apiserver.gate import Gate
from simulator.apiserver.handlers import MAX_BODY_BYTES, PUBLIC, Request, Response

log = structlog.get_logger(__name__)

MAX_CONNECTIONS = 256
DRAIN_BYTES = 4 * MAX_BODY_BYTES
"""A body over the limit but under this is read and dropped before the 413; beyond, the
connection is closed at once."""


Mounted = Callable[[BaseHTTPRequestHandler], None]
"""Answers a request under `/ui` (the portal) on the handler it is given."""


class _Server(BoundedHTTPServer):
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], gate: Gate,
                 tls: ssl.SSLContext | None, ui: Mounted | None = None,
                 faults: Faults | None = None) -> None:
        self.gate, self.tls, self.ui, self.faults = gate, tls, ui, faults
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler, read_timeout=READ_TIMEOUT_SECONDS,
                         max_connections=MAX_CONNECTIONS)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        if self.tls is not None:
            # The handshake happens on the connection's own thread (`_Handler.setup`), so a
            # client that stalls it holds only that thread.
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection error", client=str(client_address), exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    server_version = "reconciler-apiserver"
    sys_version = ""

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            try:
                self.request.do_handshake()
            except (ssl.SSLError, OSError) as exc:
                log.debug("TLS handshake failed", error=str(exc))
                raise
        super().setup()

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("request", line=format % args)

    def _serve(self) -> None:
        path = self.path.split("?", 1)[0].strip("/")
        ui: Mounted | None = getattr(self.server, "ui", None)
        if ui is not None and (path == "ui" or path.startswith("ui/")):
            # The portal, read-only and outside the API's authentication (see command.py).
            ui(self)
            return
        user = self.server.gate.authenticate(self.headers.get("Authorization", ""))
        if path not in PUBLIC and user is None:
            # The body is not read: the connection cannot be reused (its unread bytes would be
            # taken for the next request), so it is closed after the 401, once a small body
            # has been drained so that the client reads the 401 rather than a reset.
            if self.headers.get("Content-Length", "0").strip() not in ("", "0") or \
                    self.headers.get("Transfer-Encoding"):
                self.close_connection = True
                with contextlib.suppress(ValueError):
                    length = int(self.headers.get("Content-Length") or 0)
                    if 0 < length <= MAX_BODY_BYTES:
                        self._drain(length)
            self._respond(Response(401, status_body(401, "Unauthorized", "Unauthorized")))
            return
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self._respond(Response(411, status_body(411, "a request body must have a "
                                                         "Content-Length", "LengthRequired")))
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            self.close_connection = True
            if MAX_BODY_BYTES < length <= DRAIN_BYTES:
                self._drain(length)  # so the client reads the 413 rather than a reset
            code, reason = (413, "RequestEntityTooLarge") if length > 0 else (400, "BadRequest")
            self._respond(Response(code, status_body(
                code, f"Request entity too large: limit is {MAX_BODY_BYTES}" if code == 413
                else "invalid Content-Length", reason)))
            return
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = Request(self.command, self.path, headers, body)
        try:
            def answer() -> Response:
                return self.server.gate.handle(request, user, list(self.headers.items()))
            faults = self.server.faults
            found = answer() if faults is None else faults.around(request, answer)
            if found is None:  # an injected fault: no answer at all
                self.close_connection = True
                return
            response = found
        except Exception:
            log.exception("request failed", method=self.command, path=self.path.split("?")[0])
            response = Response(500, status_body(500, "an internal error occurred while "
                                                      "serving the request (see the server "
                                                      "log)", "InternalError"))
        self._respond(response)

    def _drain(self, length: int) -> None:
        with contextlib.suppress(OSError):
            while length > 0:
                chunk = self.rfile.read(min(length, 65536))
                if not chunk:
                    return
                length -= len(chunk)

    def _respond(self, response: Response) -> None:
        if response.stream is not None:
            self._stream(response)
            return
        if isinstance(response.body, bytes):
            data = response.body
        elif response.body is None:
            data = b""
        else:
            data = json.dumps(response.body, separators=(",", ":")).encode()
        self.send_response(response.code)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        for name, value in response.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _stream(self, response: Response) -> None:
        assert response.stream is not None
        self.send_response(response.code)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.flush()
        chunks = response.stream
        try:
            for chunk in chunks:
                if not chunk:
                    if self._client_gone():
                        self.close_connection = True
                        return
                    continue
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True
        finally:
            close = getattr(chunks, "close", None)
            if callable(close):
                close()

    def _client_gone(self) -> bool:
        """During a watch the client sends nothing: readable means it closed (or misbehaved)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable)
        except (OSError, ValueError):
            return True


class ApiServer:
    """Serves `gate` on `host:port` (port 0: any free one), over TLS when given a cert/key,
    and `ui` under `/ui` when given."""

    def __init__(self, gate: Gate, host: str, port: int,
                 cert: tuple[Path, Path] | None, ui: Mounted | None = None,
                 faults: Faults | None = None) -> None:
        tls = None
        if cert is not None:
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.minimum_version = ssl.TLSVersion.TLSv1_2
            tls.load_cert_chain(str(cert[0]), str(cert[1]))
            tls.set_alpn_protocols(["http/1.1"])
        self._httpd = _Server((host, port), gate, tls, ui, faults)
        self._thread: threading.Thread | None = None
        self.secure = tls is not None
        self._port = port

        def remake(port: int) -> _Server:
            return _Server((host, port), gate, tls, ui, faults)
        self._remake = remake
        if faults is not None:
            faults.attach(self)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        host_text = host.decode() if isinstance(host, bytes) else str(host)
        if ":" in host_text:
            host_text = f"[{host_text}]"
        return f"{'https' if self.secure else 'http'}://{host_text}:{port}"

    @property
    def address(self) -> str:
        return self.url.split("://", 1)[1]

    def start(self) -> None:
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.1}, name="apiserver",
                                        daemon=True)
        self._thread.start()

    def stop_listening(self) -> None:
        """Go away (an injected outage): new connections are refused until `listen_again`."""
        self._port = int(self._httpd.server_address[1])
        self.stop()

    def listen_again(self) -> None:
        """Listen again on the port `stop_listening` gave up."""
        for _ in range(50):
            try:
                self._httpd = self._remake(self._port)
                break
            except OSError:
                threading.Event().wait(0.1)
        self.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
