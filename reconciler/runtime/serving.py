"""A stdlib HTTP server on a background thread: what the artifact and operations servers share.

Both serve small, independent requests next to the reconcile loop, so a ThreadingHTTPServer on a
daemon thread is enough; this module owns starting it, naming its URL, bounding what a client
can hold (a listen backlog sized for scrapes and probes arriving together, a read timeout so a
client that sends nothing cannot keep a thread, and a cap on connections served at once) and
stopping it cleanly.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LISTEN_BACKLOG = 128
"""Connections the kernel queues before `accept` (the stdlib default is 5)."""
READ_TIMEOUT_SECONDS = 10.0
"""How long a connection may stay silent while its request is read."""
MAX_CONNECTIONS = 64
"""Connections served at once; one more is answered 503 and closed."""

_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
         b"Retry-After: 1\r\nConnection: close\r\nContent-Length: 20\r\n\r\n"
         b"too many connections")


class BoundedHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server a client cannot hold: backlog, read timeout, connection cap."""

    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], *,
                 read_timeout: float, max_connections: int) -> None:
        self.read_timeout = read_timeout
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        sock.settimeout(self.read_timeout)
        # Headers and body go out in separate writes; with Nagle's algorithm the body waits
        # for the client's delayed ACK of the headers, about 40 ms on every response.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock, address

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            with contextlib.suppress(OSError):
                request.sendall(_BUSY)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class BackgroundHTTPServer:
    def __init__(
        self,
        handler: type[BaseHTTPRequestHandler],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        name: str,
        poll_interval: float = 0.1,
        read_timeout: float = READ_TIMEOUT_SECONDS,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.handler = handler
        self.host, self.port, self.name = host, port, name
        # How often serve_forever looks for a shutdown request: stop() waits up to this long.
        self.poll_interval = poll_interval
        self.read_timeout = read_timeout
        self.max_connections = max_connections
        self._httpd: BoundedHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def started(self) -> bool:
        return self._httpd is not None

    @property
    def url(self) -> str | None:
        """`http://host:port` with the port actually bound; None before `start()`."""
        if self._httpd is None:
            return None
        host, port = self._httpd.server_address[:2]
        host_str = host.decode() if isinstance(host, bytes) else str(host)
        return f"http://[{host_str}]:{port}" if ":" in host_str else f"http://{host_str}:{port}"

    def start(self) -> None:
        """Bind and serve; raises OSError (address in use, no permission) without a thread."""
        if self._httpd is not None:
            return
        httpd = BoundedHTTPServer((self.host, self.port), self.handler,
                                   read_timeout=self.read_timeout,
                                   max_connections=self.max_connections)
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever,
                                        kwargs={"poll_interval": self.poll_interval},
                                        name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._httpd = self._thread = None
