"""One `/ui` request on a stdlib `BaseHTTPRequestHandler`: what the daemon's operations server
and `reconciler serve`'s API server both hand over for paths under `/ui`.

The portal is told the address the server is bound to, which the Host header must name. The
body is read only up to `MAX_BODY_BYTES` (a longer or chunked one is refused before it is
read, and the connection closed). A stream is written as it comes, with `Connection: close`
(no length, no chunking: an event stream ends with its connection), and closed however the
client leaves.
"""

from __future__ import annotations

import contextlib
import select
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler

from reconciler.portal.app import MAX_BODY_BYTES, Portal, PortalResponse, error_response


def serve_request(portal: Portal, handler: BaseHTTPRequestHandler) -> None:
    headers = {k.lower(): v for k, v in handler.headers.items()}
    refused = _refuse_body(headers)
    if refused is not None:
        handler.close_connection = True
        _write(handler, refused)
        return
    length = int(headers.get("content-length") or 0)
    body = handler.rfile.read(length) if length else b""
    _write(handler, portal.handle(handler.command, handler.path, headers, body,
                                  bound=_bound(handler)))


def _bound(handler: BaseHTTPRequestHandler) -> tuple[str, int]:
    """The (host, port) the server listens on: what the Host header must name."""
    address = handler.server.server_address
    if isinstance(address, tuple) and len(address) >= 2:
        return str(address[0]), int(address[1])
    return "", 0


def _client_gone(handler: BaseHTTPRequestHandler) -> bool:
    """A page reading a stream sends nothing: readable means it closed the connection."""
    try:
        readable, _, _ = select.select([handler.connection], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _refuse_body(headers: dict[str, str]) -> PortalResponse | None:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return error_response(HTTPStatus.LENGTH_REQUIRED,
                              "a request body must have a Content-Length")
    try:
        length = int(headers.get("content-length") or 0)
    except ValueError:
        length = -1
    if length < 0:
        return error_response(HTTPStatus.BAD_REQUEST, "invalid Content-Length")
    if length > MAX_BODY_BYTES:
        return error_response(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                      f"a request body is at most {MAX_BODY_BYTES} bytes")
    return None


def _write(handler: BaseHTTPRequestHandler, response: PortalResponse) -> None:
    handler.send_response(response.status)
    handler.send_header("Content-Type", response.content_type)
    for name, value in response.headers.items():
        handler.send_header(name, value)
    stream = response.stream
    if stream is None:
        handler.send_header("Content-Length", str(len(response.body)))
        if handler.close_connection:
            handler.send_header("Connection", "close")
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(response.body)
        return
    handler.close_connection = True
    try:
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.flush()
        if handler.command == "HEAD":
            return
        for chunk in stream:
            if not chunk:
                if _client_gone(handler):
                    return
                continue
            handler.wfile.write(chunk)
            handler.wfile.flush()
    except OSError:
        pass  # the page went away
    finally:
        with contextlib.suppress(Exception):
            stream.close()
