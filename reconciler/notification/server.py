"""The webhook receiver: `POST /hook/<sha256>` requests a reconcile of a Receiver's resources.

One request, in order:
1. only `POST` (405 otherwise, 404 outside `/hook/`); a `Content-Length` is required (411) and
   a body over `max_body_bytes` is refused with 413 before any of it is read;
2. the Receiver whose `status.webhookPath` is the path (constant-time comparison; 404 when none,
   or when the path no longer matches the Secret's current token); suspended or not Ready: 503;
3. the body is read (the server's read timeout bounds a slow sender) and verified per type
   (`verify`): 401 for a missing or wrong signature or token, 400 for a malformed request;
4. an event the Receiver does not accept is 400 (Flux's answer), except GitHub's `ping`, which is
   answered 200 and triggers nothing unless `spec.events` lists it;
5. `reconcile.fluxcd.io/requestedAt` is set on every matching object (`targets`, `requests`);
   200, or 500 if one could not be, as Flux answers. Nothing waits for a reconcile: the writes
   are single API (or in-memory) writes, and the controllers see them as changes.

The request thread reads and writes through the Backend. `guard`, when given, wraps every
Backend access of a request (e.g. a lock the reconcile loop also holds, for a backend that is not
thread-safe); the default calls straight through, which `KubernetesBackend` allows. Tokens are
never logged, and responses carry no detail an unauthenticated caller could use.
"""

from __future__ import annotations

import contextlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any, TypeVar

import structlog

from reconciler.backends.base import Backend
from reconciler.model.conditions import TRUE, find_condition
from reconciler.model.errors import ReconcilerError
from reconciler.model.objects import Obj, status_of
from reconciler.notification.metrics import ReceiverMetrics
from reconciler.notification.receiver import (
    API_VERSION,
    GITHUB,
    KIND,
    WEBHOOK_PREFIX,
    Receiver,
    ResourceRef,
    webhook_path,
)
from reconciler.notification.requests import Clock, ReconcileRequester
from reconciler.notification.targets import Target, TargetError, resolve_targets
from reconciler.notification.token import TokenNotFound, read_token
from reconciler.notification.verify import Refused, verify
from reconciler.runtime.serving import MAX_CONNECTIONS, READ_TIMEOUT_SECONDS, BackgroundHTTPServer

log = structlog.get_logger(__name__)

MAX_BODY_BYTES = 1 << 20
"""Largest body accepted (1 MiB; Flux allows 3 MiB). GitHub caps its payloads at 25 MB, but a
push event with its commit list stays far below this."""
DRAIN_FACTOR = 4
"""An oversized body up to this many times the limit is read and dropped before the 413."""

T = TypeVar("T")
Guard = Callable[[Callable[[], T]], T]


class ReceiverServerError(RuntimeError):
    """The server was used out of order (e.g. `url` before `start`)."""


@dataclass(frozen=True)
class Answer:
    status: HTTPStatus
    outcome: str
    message: str = ""


class WebhookReceiver:
    """What a request does, apart from HTTP: find, verify, request reconciles."""

    def __init__(self, backend: Backend, clock: Clock, *, no_cross_namespace_refs: bool = False,
                 guard: Callable[[Callable[[], Any]], Any] | None = None) -> None:
        self.backend = backend
        self.requester = ReconcileRequester(backend, clock)
        self.no_cross_namespace_refs = no_cross_namespace_refs
        self._guard = guard or (lambda work: work())

    def find(self, path: str) -> Obj | None:
        """The Receiver publishing `path`, compared in constant time against every one."""
        found: Obj | None = None
        for obj in self._guard(lambda: self.backend.list(API_VERSION, KIND)):
            published = status_of(obj).get("webhookPath")
            if isinstance(published, str) and published and hmac.compare_digest(
                    published.encode(), path.encode()):
                found = obj
        return found

    def token_for(self, receiver: Receiver, path: str) -> str | None:
        """The Secret's current token, if the path is still the one it yields."""
        try:
            token = self._guard(lambda: read_token(self.backend.get, receiver.namespace,
                                                   receiver.secret_name))
        except (TokenNotFound, ReconcilerError):
            return None
        expected = webhook_path(token, receiver.name, receiver.namespace)
        return token if hmac.compare_digest(expected.encode(), path.encode()) else None

    def handle(self, path: str, headers: Callable[[str], str | None],
               read_body: Callable[[], bytes]) -> Answer:
        obj = self.find(path)
        if obj is None:
            return Answer(HTTPStatus.NOT_FOUND, "not_found")
        receiver = Receiver.parse(obj)
        bound = log.bind(kind=KIND, namespace=receiver.namespace, name=receiver.name)
        ready = find_condition(status_of(obj).get("conditions"), "Ready")
        if receiver.suspend or ready is None or ready.get("status") != TRUE:
            bound.warning("unable to process request", suspended=receiver.suspend)
            return Answer(HTTPStatus.SERVICE_UNAVAILABLE, "unavailable")
        token = self.token_for(receiver, path)
        if token is None:
            # The Secret changed since the controller published the path: not this path now.
            return Answer(HTTPStatus.NOT_FOUND, "not_found")
        body = read_body()
        try:
            verified = verify(receiver.type, token, headers, body)
        except Refused as exc:
            bound.warning("unable to validate payload", error=exc.message)
            outcome = "unauthorized" if exc.status == HTTPStatus.UNAUTHORIZED else "bad_request"
            return Answer(HTTPStatus(exc.status), outcome)
        if not receiver.accepts(verified.event):
            if receiver.type == GITHUB and verified.event.casefold() == "ping":
                bound.info("answered GitHub ping")
                return Answer(HTTPStatus.OK, "ignored", "pong")
            bound.warning("event not accepted", webhook_event=verified.event)
            return Answer(HTTPStatus.BAD_REQUEST, "bad_request")
        bound.info("handling event", type=receiver.type, webhook_event=verified.event or None)
        failed = self._request_all(receiver, bound)
        if failed:
            return Answer(HTTPStatus.INTERNAL_SERVER_ERROR, "failed")
        return Answer(HTTPStatus.OK, "accepted")

    def _request_all(self, receiver: Receiver, bound: Any) -> bool:
        failed = False
        for ref in receiver.resources:
            def resolve(ref: ResourceRef = ref) -> list[Target]:
                return resolve_targets(self.backend, receiver, ref,
                                       no_cross_namespace_refs=self.no_cross_namespace_refs)

            try:
                targets: list[Target] = self._guard(resolve)
            except TargetError as exc:
                bound.error("unable to request reconciliation", error=str(exc))
                failed = True
                continue
            if not targets:
                bound.warning("no resources found with matching labels", resource_kind=ref.kind,
                              match_labels=dict(ref.match_labels))
            for target in targets:
                def write(target: Target = target) -> str:
                    return self.requester.request(target)

                try:
                    value = self._guard(write)
                except ReconcilerError as exc:
                    bound.error("failed to annotate resource", resource=str(target),
                                error=str(exc))
                    failed = True
                    continue
                bound.info("resource annotated", resource=str(target), requested_at=value)
        return failed


class _HookHandler(BaseHTTPRequestHandler):
    receiver: WebhookReceiver
    metrics: ReceiverMetrics | None
    max_body_bytes: int
    server_version = "reconciler-receiver"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        if not path.startswith(WEBHOOK_PREFIX):
            self._answer(Answer(HTTPStatus.NOT_FOUND, "not_found"))
            return
        raw_length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding") or raw_length is None:
            self.close_connection = True
            self._answer(Answer(HTTPStatus.LENGTH_REQUIRED, "length_required"))
            return
        try:
            length = int(raw_length)
            if length < 0:
                raise ValueError(raw_length)
        except ValueError:
            self.close_connection = True
            self._answer(Answer(HTTPStatus.BAD_REQUEST, "bad_request"))
            return
        if length > self.max_body_bytes:
            # Refused from the header alone. A body of a few times the limit is read and dropped
            # first, so a client that sends all of it before reading the answer gets the 413
            # rather than a reset connection; a larger one goes away with the connection.
            self.close_connection = True
            if length <= DRAIN_FACTOR * self.max_body_bytes:
                with contextlib.suppress(OSError):
                    remaining = length
                    while remaining > 0:
                        chunk = self.rfile.read(min(remaining, 65536))
                        if not chunk:
                            break
                        remaining -= len(chunk)
            self._answer(Answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "too_large"))
            return
        read = False

        def read_body() -> bytes:
            nonlocal read
            read = True
            body = self.rfile.read(length)
            if len(body) != length:
                raise ConnectionError("client sent less than its Content-Length")
            return body

        try:
            answer = self.receiver.handle(path, self.headers.get, read_body)
        except (TimeoutError, ConnectionError) as exc:
            log.info("webhook client went away", error=str(exc))
            self.close_connection = True
            return
        except Exception as exc:
            # No traceback: its frames' locals would include the token.
            log.error("webhook request failed", error=f"{type(exc).__name__}: {exc}")
            answer = Answer(HTTPStatus.INTERNAL_SERVER_ERROR, "failed")
        if not read:
            self.close_connection = True  # the body is still on the wire
        self._answer(answer)

    def do_GET(self) -> None:
        self._not_allowed()

    def do_HEAD(self) -> None:
        self._not_allowed()

    def do_PUT(self) -> None:
        self._not_allowed()

    def do_PATCH(self) -> None:
        self._not_allowed()

    def do_DELETE(self) -> None:
        self._not_allowed()

    def do_OPTIONS(self) -> None:
        self._not_allowed()

    def _not_allowed(self) -> None:
        self.close_connection = True
        self._answer(Answer(HTTPStatus.METHOD_NOT_ALLOWED, "method_not_allowed"),
                     extra={"Allow": "POST"})

    def _answer(self, answer: Answer, extra: dict[str, str] | None = None) -> None:
        if self.metrics is not None:
            self.metrics.count(answer.outcome)
        body = f"{answer.message or answer.status.phrase}\n".encode()
        self.send_response(answer.status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                log.debug("webhook client went away before the answer")

    def log_message(self, format: str, *args: Any) -> None:
        # The path is a bearer secret for generic receivers: never log request lines.
        log.debug("webhook request", client=self.client_address[0], status=args[1:2])


class ReceiverServer:
    """`POST /hook/<sha256>` on its own address, from a background thread; a context manager."""

    def __init__(
        self,
        backend: Backend,
        clock: Clock,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        metrics: ReceiverMetrics | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
        no_cross_namespace_refs: bool = False,
        guard: Callable[[Callable[[], Any]], Any] | None = None,
        read_timeout: float = READ_TIMEOUT_SECONDS,
        max_connections: int = MAX_CONNECTIONS,
        poll_interval: float = 0.1,
    ) -> None:
        self.receiver = WebhookReceiver(backend, clock,
                                        no_cross_namespace_refs=no_cross_namespace_refs,
                                        guard=guard)
        handler = type("HookHandler", (_HookHandler,), {
            "receiver": self.receiver, "metrics": metrics, "max_body_bytes": max_body_bytes})
        self._server = BackgroundHTTPServer(handler, host, port, name="webhook-receiver",
                                            poll_interval=poll_interval,
                                            read_timeout=read_timeout,
                                            max_connections=max_connections)

    @property
    def url(self) -> str:
        url = self._server.url
        if url is None:
            raise ReceiverServerError("webhook receiver is not started; call start() first")
        return url

    def start(self) -> None:
        if self._server.started:
            return
        self._server.start()
        log.info("webhook receiver started", url=self.url)

    def stop(self) -> None:
        if not self._server.started:
            return
        self._server.stop()
        log.info("webhook receiver stopped")

    def __enter__(self) -> ReceiverServer:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
