"""The shared background HTTP server: a client cannot hold it with silence or numbers."""

from __future__ import annotations

import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from reconciler.runtime.serving import LISTEN_BACKLOG, BackgroundHTTPServer, BoundedHTTPServer


class _Hello(BaseHTTPRequestHandler):
    release = threading.Event()
    holding = threading.Semaphore(0)

    def do_GET(self) -> None:
        if self.path == "/hold":
            self.holding.release()
            self.release.wait(5)
        body = b"hello"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[BackgroundHTTPServer]:
    _Hello.release.clear()
    _Hello.holding = threading.Semaphore(0)
    srv = BackgroundHTTPServer(_Hello, name="test-server", read_timeout=0.3, max_connections=2)
    srv.start()
    yield srv
    _Hello.release.set()
    srv.stop()


def _address(srv: BackgroundHTTPServer) -> tuple[str, int]:
    assert srv.url is not None
    host, port = srv.url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def test_a_silent_client_is_disconnected_after_the_read_timeout(
        server: BackgroundHTTPServer) -> None:
    with socket.create_connection(_address(server), timeout=5) as silent:
        silent.sendall(b"GET / HTTP/1.1\r\n")  # never finishes its headers
        # The server gives up on it: the connection is closed (EOF), not held for ever.
        assert silent.recv(1024) == b""
    _get_when_free(server)


def _get_when_free(srv: BackgroundHTTPServer) -> None:
    """A plain GET succeeds once the slot of a closed connection is given back."""
    for _ in range(100):
        try:
            with urllib.request.urlopen(f"{srv.url}/", timeout=5) as answer:
                assert answer.read() == b"hello"
                return
        except urllib.error.HTTPError as exc:
            assert exc.code == 503
            threading.Event().wait(0.02)
    pytest.fail("the server never served again after its connections closed")


def test_connections_beyond_the_cap_are_refused_with_503(server: BackgroundHTTPServer) -> None:
    held = [threading.Thread(target=lambda: urllib.request.urlopen(f"{server.url}/hold",
                                                                   timeout=5).read())
            for _ in range(2)]
    for thread in held:
        thread.start()
    for _ in held:  # both requests are inside the handler, holding their connections
        assert _Hello.holding.acquire(timeout=5)
    with socket.create_connection(_address(server), timeout=5) as probe:
        probe.sendall(b"GET / HTTP/1.0\r\n\r\n")
        reply = probe.recv(1024)
    assert reply.startswith(b"HTTP/1.1 503")
    assert b"Retry-After: 1" in reply
    _Hello.release.set()
    for thread in held:
        thread.join(5)
    _get_when_free(server)


def test_the_listen_backlog_is_larger_than_the_stdlib_default() -> None:
    assert LISTEN_BACKLOG >= 128


def test_accepted_connections_are_not_held_back_by_nagle() -> None:
    """Accepted sockets have TCP_NODELAY, so a response's body is not delayed ~40 ms waiting
    for the client's delayed ACK of the headers."""
    httpd = BoundedHTTPServer(("127.0.0.1", 0), _Hello, read_timeout=1, max_connections=1)
    host, port = httpd.server_address[:2]
    with httpd, socket.create_connection((str(host), int(port)), timeout=5):
        sock, _ = httpd.get_request()
        with sock:
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
            assert sock.gettimeout() == 1
