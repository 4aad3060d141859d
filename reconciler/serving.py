"""A stdlib HTTP server on a background thread: what the artifact and operations servers share.

Both serve small, independent requests next to the reconcile loop, so a ThreadingHTTPServer on a
daemon thread is enough; this module owns starting it, naming its URL and stopping it cleanly.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class BackgroundHTTPServer:
    def __init__(
        self,
        handler: type[BaseHTTPRequestHandler],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        name: str,
        poll_interval: float = 0.1,
    ) -> None:
        self.handler = handler
        self.host, self.port, self.name = host, port, name
        # How often serve_forever looks for a shutdown request: stop() waits up to this long.
        self.poll_interval = poll_interval
        self._httpd: ThreadingHTTPServer | None = None
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
        httpd = ThreadingHTTPServer((self.host, self.port), self.handler)
        httpd.daemon_threads = True
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
