"""Real Git servers on 127.0.0.1 for tests: `git daemon`, smart HTTP (git-http-backend as CGI
behind Basic/Bearer auth, optionally TLS with a CA the test makes) and `sshd`; an HTTP proxy
(forwarding and CONNECT, optional Basic auth) to put in front of them; plus bare repositories to
serve and an OpenPGP key to sign commits and tags with.

Every server is a context manager that starts on a free port and stops on exit. The only waiting
is for a server's port to accept connections.
"""

from __future__ import annotations

import base64
import contextlib
import os
import select
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

GIT_HTTP_BACKEND = "/usr/lib/git-core/git-http-backend"
SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else None)
GPG = shutil.which("gpg")

_GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
}


def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
        input: bytes | None = None) -> str:
    done = subprocess.run(list(args), cwd=cwd, env={**os.environ, **_GIT_ENV, **(env or {})},
                          check=True, capture_output=True, input=input)
    return done.stdout.decode().strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Block until something accepts on 127.0.0.1:port (the one wait tests may do)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"server exited with {proc.returncode}: {err}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after 10s")


class BareRepo:
    """A bare repository under a served root, changed through a private work tree."""

    def __init__(self, root: Path, name: str, branch: str = "main") -> None:
        self.root, self.name = root, name
        self.path = root / f"{name}.git"
        self.work = root.parent / f"{name}-work"
        run("git", "init", "-q", "--bare", "-b", branch, str(self.path))
        run("git", "init", "-q", "-b", branch, str(self.work))
        self.branch = branch

    def git(self, *args: str, env: dict[str, str] | None = None) -> str:
        return run("git", *args, cwd=self.work, env=env)

    def commit(self, files: dict[str, str], message: str = "change", branch: str | None = None,
               sign_with: GpgKey | None = None, delete: tuple[str, ...] = ()) -> str:
        branch = branch or self.branch
        if self.git("branch", "--show-current") != branch:
            has = self.git("branch", "--list", branch)
            self.git("checkout", "-q", *([] if has else ["-b"]), branch)
        for rel, content in files.items():
            target = self.work / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
        for rel in delete:
            (self.work / rel).unlink()
        self.git("add", "-A")
        sign: list[str] = []
        env = None
        if sign_with is not None:
            sign = ["-c", "gpg.program=gpg", "-c", f"user.signingkey={sign_with.key_id}"]
            env = {"GNUPGHOME": str(sign_with.home)}
        self.git(*sign, "commit", "-q", "--allow-empty", *(["-S"] if sign_with else []),
                 "-m", message, env=env)
        sha = self.git("rev-parse", "HEAD")
        self.push(f"HEAD:refs/heads/{branch}")
        return sha

    def tag(self, name: str, target: str = "HEAD", sign_with: GpgKey | None = None,
            annotated: bool = True) -> str:
        """Create (or move) tag `name` on `target` and push it; returns what the tag ref names
        (the tag object of an annotated tag, the commit of a lightweight one)."""
        env = {"GNUPGHOME": str(sign_with.home)} if sign_with is not None else None
        if sign_with is not None:
            self.git("-c", "gpg.program=gpg", "-c", f"user.signingkey={sign_with.key_id}",
                     "tag", "-f", "-s", "-m", f"release {name}", name, target, env=env)
        elif annotated:
            self.git("tag", "-f", "-a", "-m", f"release {name}", name, target)
        else:
            self.git("tag", "-f", name, target)
        self.push(f"refs/tags/{name}:refs/tags/{name}")
        return self.git("rev-parse", f"refs/tags/{name}")

    def push(self, *refspecs: str) -> None:
        self.git("push", "-q", "--force", str(self.path), *refspecs)

    def update_refs(self, lines: list[str]) -> None:
        """Many refs at once (`create refs/tags/v1 <sha>` lines), straight into the bare repo."""
        run("git", "update-ref", "--stdin", cwd=self.path, input="\n".join(lines).encode() + b"\n")


# --- git daemon -----------------------------------------------------------------------------


class GitDaemon:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes]

    def url(self, repo: BareRepo) -> str:
        return f"git://127.0.0.1:{self.port}/{repo.path.name}"

    def __enter__(self) -> GitDaemon:
        # A log file, not a pipe: nobody reads a pipe while tests run, and a daemon blocked on
        # a full stderr pipe stops answering, which hangs the test talking to it.
        self._log = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={self.root}",
             "--listen=127.0.0.1", f"--port={self.port}", str(self.root)],
            stdout=subprocess.DEVNULL, stderr=self._log, start_new_session=True,
        )
        wait_for_port(self.port, self._proc)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            # `git daemon` forks a process per connection: stop its whole group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()
            self._log.close()


# --- smart HTTP -----------------------------------------------------------------------------


@dataclass
class HttpAuth:
    users: dict[str, str] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)

    def allows(self, header: str | None) -> bool:
        if not self.users and not self.tokens:
            return True
        if not header:
            return False
        kind, _, value = header.partition(" ")
        if kind.lower() == "bearer":
            return value in self.tokens
        if kind.lower() == "basic":
            user, _, password = base64.b64decode(value).decode().partition(":")
            return self.users.get(user) == password
        return False


class _CgiHandler(BaseHTTPRequestHandler):
    root: Path
    auth: HttpAuth
    seen_paths: list[str]

    def do_GET(self) -> None:
        self._cgi()

    def do_POST(self) -> None:
        self._cgi()

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _cgi(self) -> None:
        self.seen_paths.append(self.path)
        if not self.auth.allows(self.headers.get("Authorization")):
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        body = self._body()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.root), "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)), "REMOTE_ADDR": "127.0.0.1",
            "REMOTE_USER": "git", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
        }
        for header, var in (("Git-Protocol", "HTTP_GIT_PROTOCOL"),
                            ("Content-Encoding", "HTTP_CONTENT_ENCODING")):
            if self.headers.get(header):
                env[var] = self.headers[header]
        out = subprocess.run([GIT_HTTP_BACKEND], input=body, env=env, capture_output=True).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode().split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class SmartHttpServer:
    """git-http-backend over HTTP or HTTPS, with Basic and Bearer auth checked by the handler."""

    def __init__(self, root: Path, auth: HttpAuth | None = None,
                 tls: tuple[Path, Path] | None = None) -> None:
        self.root, self.auth, self.tls = root, auth or HttpAuth(), tls
        self.seen_paths: list[str] = []
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self._httpd is not None
        return int(self._httpd.server_address[1])

    def url(self, repo: BareRepo) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}/{repo.path.name}"

    def __enter__(self) -> SmartHttpServer:
        handler = type("Handler", (_CgiHandler,), {
            "root": self.root, "auth": self.auth, "seen_paths": self.seen_paths})
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(self.tls[0]), str(self.tls[1]))
            httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
        self._httpd = httpd
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()


# --- HTTP proxy -----------------------------------------------------------------------------


class HttpProxy:
    """A real HTTP proxy on 127.0.0.1: absolute-URI forwarding for http:// targets and CONNECT
    tunnels for https:// ones, with optional Basic auth (407 otherwise). `seen` records each
    request line it accepted or refused as (method, target, authorized)."""

    def __init__(self, users: dict[str, str] | None = None) -> None:
        self.users = users or {}
        self.seen: list[tuple[str, str, bool]] = []
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        self._stopped = threading.Event()

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> HttpProxy:
        self._sock.listen(32)
        self._sock.settimeout(0.05)
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self._sock.close()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _authorized(self, headers: dict[str, str]) -> bool:
        if not self.users:
            return True
        kind, _, value = headers.get("proxy-authorization", "").partition(" ")
        if kind.lower() != "basic":
            return False
        user, _, password = base64.b64decode(value).decode().partition(":")
        return self.users.get(user) == password

    def _serve(self, client: socket.socket) -> None:
        with contextlib.ExitStack() as stack:
            stack.enter_context(client)
            client.settimeout(10)
            head, rest = _read_head(client)
            if not head:
                return
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip()
                       for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            allowed = self._authorized(headers)
            self.seen.append((method, target, allowed))
            if not allowed:
                client.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                               b'Proxy-Authenticate: Basic realm="proxy"\r\n'
                               b"Content-Length: 0\r\nConnection: close\r\n\r\n")
                return
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                upstream = stack.enter_context(socket.create_connection((host, int(port))))
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                parts = urlsplit(target)
                upstream = stack.enter_context(
                    socket.create_connection((parts.hostname, parts.port or 80)))
                path = parts.path + (f"?{parts.query}" if parts.query else "")
                kept = [line for line in lines[1:] if line and line.split(":")[0].lower() not in
                        ("proxy-authorization", "proxy-connection", "connection")]
                # One request per upstream connection: the origin closes after answering.
                request = "\r\n".join([f"{method} {path} {version}", *kept,
                                        "Connection: close", "", ""])
                upstream.sendall(request.encode("latin-1") + rest)
                rest = b""
            if rest:
                upstream.sendall(rest)
            _relay(client, upstream)


def _read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return b"", b""
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _relay(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    peers = {a: b, b: a}
    while True:
        readable, _, _ = select.select(list(peers), [], [], 10)
        if not readable:
            return
        for sock in readable:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            peers[sock].sendall(data)


@dataclass
class TestCA:
    ca_cert: Path
    server_cert: Path
    server_key: Path


def make_ca(directory: Path) -> TestCA:
    """A CA and a server certificate for 127.0.0.1 signed by it (openssl CLI)."""
    directory.mkdir(parents=True, exist_ok=True)
    d = str(directory)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", "/CN=test-ca", "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.crt")
    (directory / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", f"{d}/server.key", "-out", f"{d}/server.csr")
    run("openssl", "x509", "-req", "-in", f"{d}/server.csr", "-CA", f"{d}/ca.crt",
        "-CAkey", f"{d}/ca.key", "-CAcreateserial", "-days", "2",
        "-extfile", f"{d}/ext.cnf", "-out", f"{d}/server.crt")
    return TestCA(directory / "ca.crt", directory / "server.crt", directory / "server.key")


# --- sshd -----------------------------------------------------------------------------------


@dataclass
class SshKey:
    private: Path
    public: str


def make_ssh_key(path: Path, passphrase: str = "") -> SshKey:
    path.parent.mkdir(parents=True, exist_ok=True)
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", "test", "-f", str(path))
    return SshKey(path, Path(f"{path}.pub").read_text().strip())


class Sshd:
    """OpenSSH's sshd on a free port with its own config and host key; logs in as this user."""

    def __init__(self, directory: Path, authorized: list[str]) -> None:
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.host_key = make_ssh_key(directory / "host_ed25519")
        (directory / "authorized_keys").write_text("\n".join(authorized) + "\n")
        os.chmod(directory / "authorized_keys", 0o600)
        self.user = os.environ.get("USER") or run("id", "-un")
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def known_hosts(self) -> str:
        kind, key = self.host_key.public.split()[:2]
        return f"[127.0.0.1]:{self.port} {kind} {key}\n"

    def url(self, repo: BareRepo) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}{repo.path}"

    def __enter__(self) -> Sshd:
        Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory
        config = self.dir / "sshd_config"
        config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.host_key.private}\n"
            f"AuthorizedKeysFile {self.dir / 'authorized_keys'}\nPidFile none\n"
            "UsePAM no\nStrictModes no\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
            "LogLevel ERROR\n"
        )
        self._proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for_port(self.port, self._proc)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.communicate()


# --- gpg ------------------------------------------------------------------------------------


@dataclass
class GpgKey:
    home: Path
    key_id: str

    def public_armored(self) -> bytes:
        return subprocess.run(["gpg", "--armor", "--export", self.key_id],
                              env={**os.environ, "GNUPGHOME": str(self.home)},
                              check=True, capture_output=True).stdout


def make_gpg_key(home: Path, email: str = "signer@example.com") -> GpgKey:
    """A signing key in `home`; keep the path short (gpg-agent's socket lives there)."""
    home.mkdir(parents=True, mode=0o700)
    env = {"GNUPGHOME": str(home)}
    run("gpg", "--batch", "--passphrase", "", "--quick-gen-key", f"Signer <{email}>",
        "ed25519", "sign", "never", env=env)
    listing = run("gpg", "--batch", "--with-colons", "--list-secret-keys", env=env)
    key_id = next(line.split(":")[4] for line in listing.splitlines() if line.startswith("sec"))
    return GpgKey(home, key_id)


@contextmanager
def hanging_server() -> Iterator[int]:
    """A port that accepts connections and never answers, for timeouts."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        yield int(sock.getsockname()[1])
    finally:
        sock.close()
