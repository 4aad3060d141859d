"""`/ui/...` requests to responses, without a socket: the daemon's operations server and
`reconciler serve` each pass their requests under `/ui` here and write what comes back.

    GET  /ui/                                       the page (index.html, portal.css, portal.js)
    GET  /ui/api/config                             {actions, live}
    GET  /ui/api/overview?namespace=&selector=      owners and sources, filtered
    GET  /ui/api/owners/KIND/NS/NAME                one owner's path, stage by stage
    GET  /ui/api/events/KIND/NS/NAME                an object's events
    GET  /ui/api/logs/KIND/NS/NAME/STAGE            a stage's latest Tekton logs
    GET  /ui/api/stream                             server-sent events: what changed
    POST /ui/api/actions/reconcile|suspend|resume   {kind, namespace, name}; only with actions on

Every request's `Host` must be one the portal is served as (`allowed_host`): the address it is
bound to, `localhost`/`127.0.0.1`/`[::1]` with its port when bound to loopback or all
interfaces, and the `daemon.portal_hosts` the operator adds (an Ingress name). A page on
another site whose name was re-pointed at this address (DNS rebinding) sends its own name as
Host and is refused with 421.

Read-only unless built with `actions=True` (the `daemon.portal_actions` setting). An action is
a POST with a JSON body from the page's own origin: the `Origin` header must name the host the
request was sent to (a cross-site form cannot send JSON without a preflight, and a cross-site
fetch carries its own Origin), so another site open in the same browser cannot press the
buttons. That guards a browser only; any other client writes whatever headers it likes. So when
the portal is built with a `token` (`daemon.portal_token_file`), an action also needs
`Authorization: Bearer TOKEN` (the page asks for it once), and on an address other than
loopback actions are refused outright without one (the daemon does not start so configured).
Every page response carries a Content-Security-Policy that allows only the portal's own script
and style, as a second line behind the page never building markup from data.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from importlib import resources
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import structlog

from reconciler.backends.base import Backend
from reconciler.model.annotations import REQUESTED_AT_ANNOTATION, SUSPEND_ANNOTATION
from reconciler.model.errors import InputError, ReconcilerError
from reconciler.model.objects import Obj
from reconciler.portal import views
from reconciler.portal.feed import ChangeFeed
from reconciler.settings import is_loopback, netloc

log = structlog.get_logger(__name__)

PREFIX = "/ui"
MAX_BODY_BYTES = 4096
"""An action's body; the adapters refuse a longer one before reading it."""
RECONCILE_MANAGER = "reconciler-portal-reconcile"
SUSPEND_MANAGER = "reconciler-portal-suspend"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
ALL_INTERFACES = ("", "0.0.0.0", "::")
MAX_TOKEN_BYTES = 4096

STATIC: Mapping[str, str] = {
    "": "text/html; charset=utf-8",
    "portal.js": "text/javascript; charset=utf-8",
    "portal.css": "text/css; charset=utf-8",
}
FILES: Mapping[str, str] = {"": "index.html", "portal.js": "portal.js",
                            "portal.css": "portal.css"}
SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; "
                                "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
                                "form-action 'self'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
ACTIONS = ("reconcile", "suspend", "resume")
FLUX_KINDS = ("GitRepository", "Kustomization")
SUSPEND_KINDS = (*FLUX_KINDS, "Workload", "Deliverable")
"""The kinds whose controllers honour a suspend: Flux's by `spec.suspend`, Cartographer's owners
(which have no such field) by the `reconciler.dev/suspend` annotation the owner controller
reads."""


Reader = Callable[[Callable[[], Any]], Any]
"""Runs a read of the backend under whatever lock the backend needs; returns its result."""


def _direct(read: Callable[[], Any]) -> Any:
    return read()


class Events(Protocol):
    """A stream's events; `close()` ends it and frees its slot."""

    def __iter__(self) -> Iterator[bytes]: ...

    def close(self) -> None: ...


@dataclass
class PortalResponse:
    status: int
    content_type: str = "application/json"
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    stream: Events | None = None
    """Server-sent events to write as they come (the body is empty then)."""


class Portal:
    """The portal over one backend. `read` runs a read with whatever lock the backend needs
    (the daemon's `QueueLoop.read`, the served cluster's `Store.locked`); `attach` the
    backend's change notifications for live updates. Actions write through `writer` (default:
    `backend`), e.g. the daemon's leader-gated backend, so a standby refuses them."""

    def __init__(self, backend: Backend, read: Reader = _direct, *, actions: bool = False,
                 writer: Backend | None = None, feed: ChangeFeed | None = None,
                 hosts: Collection[str] = (), token: str | None = None) -> None:
        self.backend = backend
        self.writer = writer if writer is not None else backend
        self.read = read
        self.actions = actions
        self.feed = feed or ChangeFeed()
        self.hosts = tuple(hosts)
        """Host header values allowed beside the bound address's (`daemon.portal_hosts`)."""
        self.token = token or None
        """The bearer token an action must carry; None: none (actions only on loopback)."""

    def attach(self, source: object) -> bool:
        return self.feed.attach(source)

    def close(self) -> None:
        self.feed.close()

    @staticmethod
    def serves(target: str) -> bool:
        path = urlsplit(target).path
        return path == PREFIX or path.startswith(PREFIX + "/")

    def handle(self, method: str, target: str, headers: Mapping[str, str],
               body: bytes = b"", bound: tuple[str, int] | None = None) -> PortalResponse:
        """One request under `/ui`; `headers` with lower-case names. `bound` is the (host, port)
        the server listens on: the Host header must name it (see `allowed_host`), and actions
        on an address other than loopback need the token. The socket adapters always pass it;
        None (tests of the API alone) skips those two checks."""
        if bound is not None and not allowed_host(headers.get("host", ""), bound, self.hosts):
            return error_response(
                HTTPStatus.MISDIRECTED_REQUEST,
                f"the portal is not served as host {headers.get('host', '')!r}: it answers to "
                f"{', '.join(served_names(bound)) or 'no name of its own'}; add the name to "
                "the daemon.portal_hosts setting to reach it through a proxy or an Ingress")
        url = urlsplit(target)
        path = url.path
        if path == PREFIX:
            return PortalResponse(HTTPStatus.PERMANENT_REDIRECT, "text/plain; charset=utf-8",
                                  b"see /ui/\n", {"Location": PREFIX + "/"})
        rest = path[len(PREFIX) + 1:]
        try:
            if rest.startswith("api/"):
                return self._api(method, rest[4:], parse_qs(url.query), headers, body, bound)
            if method not in ("GET", "HEAD"):
                return error_response(HTTPStatus.METHOD_NOT_ALLOWED, "the page is read with GET")
            return self._static(rest)
        except views.QueryError as exc:
            return error_response(HTTPStatus.BAD_REQUEST, str(exc))
        except ReconcilerError as exc:
            log.warning("portal request failed", path=path, error=str(exc))
            return error_response(HTTPStatus.BAD_GATEWAY, f"the cluster did not answer: {exc}")

    def _static(self, name: str) -> PortalResponse:
        if name not in FILES:
            return error_response(HTTPStatus.NOT_FOUND, f"no such page: /ui/{name}")
        data = resources.files("reconciler.portal").joinpath("static", FILES[name]).read_bytes()
        return PortalResponse(HTTPStatus.OK, STATIC[name], data, dict(SECURITY_HEADERS))

    def _api(self, method: str, route: str, query: Mapping[str, list[str]],
             headers: Mapping[str, str], body: bytes,
             bound: tuple[str, int] | None) -> PortalResponse:
        parts = [unquote(p) for p in route.split("/")]
        first = {k: v[0] for k, v in query.items()}
        if parts[0] == "actions":
            if method != "POST":
                return error_response(HTTPStatus.METHOD_NOT_ALLOWED, "actions are POSTed",
                              {"Allow": "POST"})
            return self._action(parts[1:], headers, body, bound)
        if method not in ("GET", "HEAD"):
            return error_response(HTTPStatus.METHOD_NOT_ALLOWED, "the portal's API is read-only "
                          "except /ui/api/actions", {"Allow": "GET, HEAD"})
        if parts == ["config"]:
            return _json({"actions": self.actions, "live": self.feed.attached,
                          "suspend_kinds": list(SUSPEND_KINDS) if self.actions else []})
        if parts == ["overview"]:
            where = views.Filter.from_query(first)
            return _json(self.read(lambda: views.overview(self.backend, where)))
        if parts == ["stream"]:
            stream = self.feed.open()
            if stream is None:
                return error_response(HTTPStatus.SERVICE_UNAVAILABLE, "too many live pages open; "
                              "close one or reload later", {"Retry-After": "5"})
            return PortalResponse(HTTPStatus.OK, "text/event-stream", b"",
                                  {"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
                                  stream)
        if len(parts) == 4 and parts[0] == "owners":
            _, kind, namespace, name = parts
            path = self.read(lambda: views.owner_path(self.backend, kind, namespace, name))
            if path is None:
                return error_response(HTTPStatus.NOT_FOUND, f"no {kind} {namespace}/{name}")
            return _json(path)
        if len(parts) == 4 and parts[0] == "events":
            _, kind, namespace, name = parts
            return _json(self.read(lambda: views.object_events(self.backend, kind,
                                                               namespace, name)))
        if len(parts) == 5 and parts[0] == "logs":
            _, kind, namespace, name, stage = parts
            logs = self.read(lambda: views.stage_logs(self.backend, kind, namespace, name,
                                                      stage))
            if logs is None:
                return error_response(HTTPStatus.NOT_FOUND,
                              f"no stage {stage!r} in {kind} {namespace}/{name}")
            return _json(logs)
        return error_response(HTTPStatus.NOT_FOUND, f"no such API: /ui/api/{route}")

    # --- actions -----------------------------------------------------------------------------

    def _action(self, parts: list[str], headers: Mapping[str, str], body: bytes,
                bound: tuple[str, int] | None) -> PortalResponse:
        if not self.actions:
            return error_response(HTTPStatus.FORBIDDEN, "the portal is read-only; actions are "
                                  "turned on with the daemon.portal_actions setting")
        if self.token is None and bound is not None and not is_loopback(bound[0]):
            return error_response(HTTPStatus.FORBIDDEN, f"actions on {bound[0]} (not loopback) "
                                  "need a token: set daemon.portal_token_file")
        if self.token is not None and not _bearer_matches(headers, self.token):
            return error_response(HTTPStatus.UNAUTHORIZED, "an action needs the portal's token "
                                  "(daemon.portal_token_file) as Authorization: Bearer TOKEN",
                                  {"WWW-Authenticate": 'Bearer realm="reconciler-portal"'})
        refused = same_origin_refusal(headers)
        if refused:
            return error_response(HTTPStatus.FORBIDDEN, refused)
        if len(parts) != 1 or parts[0] not in ACTIONS:
            return error_response(HTTPStatus.NOT_FOUND, f"actions are {', '.join(ACTIONS)}")
        if len(body) > MAX_BODY_BYTES:
            return error_response(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                          f"an action's body is at most {MAX_BODY_BYTES} bytes")
        try:
            request = json.loads(body or b"null")
        except ValueError:
            request = None
        if not isinstance(request, dict) or not all(
                isinstance(request.get(k), str) for k in ("kind", "namespace", "name")):
            return error_response(HTTPStatus.BAD_REQUEST,
                          'the body is {"kind": ..., "namespace": ..., "name": ...}')
        kind, namespace, name = request["kind"], request["namespace"], request["name"]
        if kind not in views.LISTED:
            return error_response(HTTPStatus.BAD_REQUEST,
                          f"kind {kind!r}: actions apply to {', '.join(views.LISTED)}")
        action = parts[0]
        if action != "reconcile" and kind not in SUSPEND_KINDS:
            return error_response(HTTPStatus.BAD_REQUEST, f"{kind} cannot be suspended here; "
                                  f"{action} applies to {', '.join(SUSPEND_KINDS)}")
        done = self.read(lambda: self._act(action, kind, namespace, name))
        if done is None:
            return error_response(HTTPStatus.NOT_FOUND, f"no {kind} {namespace}/{name}")
        log.info("portal action", action=action, kind=kind, namespace=namespace, name=name)
        return _json(done)

    def _act(self, action: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        live = views.lookup(self.backend, kind, namespace, name)
        if live is None:
            return None
        applied = live
        # One field manager per concern, each applying all of its fields every time: server-side
        # apply removes the fields a manager owned and left out, so a reconcile applied as the
        # manager that suspended would take the suspend away.
        if action != "reconcile":
            suspend = action == "suspend"
            if kind in FLUX_KINDS:
                applied = self._apply(live, SUSPEND_MANAGER, spec={"suspend": suspend})
            else:
                applied = self._apply(live, SUSPEND_MANAGER, annotations={
                    SUSPEND_ANNOTATION: "true" if suspend else "false"})
        if action in ("reconcile", "resume"):
            # A resumed object is reconciled at once, as `flux resume` does.
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            applied = self._apply(live, RECONCILE_MANAGER,
                                  annotations={REQUESTED_AT_ANNOTATION: now})
        return views.summary(applied)

    def _apply(self, live: Obj, manager: str, annotations: dict[str, str] | None = None,
               spec: dict[str, Any] | None = None) -> Obj:
        meta = live["metadata"]
        patch: dict[str, Any] = {"apiVersion": live["apiVersion"], "kind": live["kind"],
                                 "metadata": {"name": meta["name"],
                                              "namespace": meta.get("namespace", "")}}
        if annotations:
            patch["metadata"]["annotations"] = annotations
        if spec:
            patch["spec"] = spec
        return self.writer.apply(patch, field_manager=manager, force=True)


def served_names(bound: tuple[str, int]) -> list[str]:
    """The Host values a server bound to `bound` answers to without configuration: its own
    address, and the loopback names when bound to loopback or to all interfaces."""
    host, port = bound
    names = [] if host in ALL_INTERFACES else [netloc(host.lower(), port)]
    if host in ALL_INTERFACES or is_loopback(host):
        names += [n for n in (netloc(h, port) for h in LOOPBACK_NAMES) if n not in names]
    return names


def _split_host(value: str) -> tuple[str, str | None]:
    """`name:port`, `[v6]:port`, `name` into (host, port or None), lower-cased."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return value, None
        rest = value[end + 1:]
        return value[1:end], (rest[1:] if rest.startswith(":") else None)
    if value.count(":") == 1:
        name, port = value.split(":")
        return name, port
    return value, None


def allowed_host(header: str, bound: tuple[str, int], extra: Collection[str] = ()) -> bool:
    """Whether a request's `Host` header names the portal: one of `served_names(bound)` (the
    port may be left out only when it is 80), or an `extra` entry: `name:port` matches exactly,
    a bare `name` with any port."""
    if not header:
        return False
    host, port = _split_host(header)
    if port is None and bound[1] == 80:
        port = "80"
    given = (host, port)
    if any(_split_host(name) == given for name in served_names(bound)):
        return True
    for entry in extra:
        name, entry_port = _split_host(entry)
        if name == host and (entry_port is None or entry_port == port):
            return True
    return False


def _bearer_matches(headers: Mapping[str, str], token: str) -> bool:
    scheme, _, given = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def read_token(path: Path | None) -> str | None:
    """The portal token in `path` (`daemon.portal_token_file`; surrounding whitespace ignored),
    or None without one. Raises `InputError` naming the file and the setting when it cannot be
    read, is empty or is longer than `MAX_TOKEN_BYTES`."""
    if path is None:
        return None
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_TOKEN_BYTES + 1)
    except OSError as exc:
        raise InputError(f"daemon.portal_token_file {path}: {exc.strerror or exc}") from None
    token = data.decode("utf-8", "replace").strip()
    if len(data) > MAX_TOKEN_BYTES or not token or any(c.isspace() for c in token):
        raise InputError(f"daemon.portal_token_file {path}: need one token of 1 to "
                         f"{MAX_TOKEN_BYTES} bytes without spaces")
    return token


def same_origin_refusal(headers: Mapping[str, str]) -> str:
    """Why a state-changing request is refused as not coming from the portal's own page, or ""
    when it does: a JSON body and an `Origin` naming the host it was sent to."""
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        return "an action's body must be application/json"
    origin, host = headers.get("origin", ""), headers.get("host", "")
    if not origin or not host:
        return "an action needs the Origin and Host headers a browser sends"
    if urlsplit(origin).netloc.lower() != host.lower():
        return f"an action must come from the portal's own page ({host}), not {origin}"
    return ""


def _json(document: Any) -> PortalResponse:
    data = json.dumps(document, separators=(",", ":")).encode()
    return PortalResponse(HTTPStatus.OK, "application/json", data, dict(SECURITY_HEADERS))


def error_response(status: HTTPStatus, message: str,
           headers: Mapping[str, str] | None = None) -> PortalResponse:
    data = json.dumps({"error": message, "code": int(status)}).encode()
    return PortalResponse(status, "application/json", data,
                          {**SECURITY_HEADERS, **(headers or {})})
