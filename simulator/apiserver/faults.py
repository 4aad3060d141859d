"""Fault injection for `reconciler serve`: the API server misbehaving on purpose, seeded.

One `Faults` object sits in the request path (`server._Handler._serve` hands it every request
after authentication; it answers, delays, drops or lets the request through) and wraps the
watch streams it lets through. It is switched from the command line (`--faults SPEC` or
`--faults @FILE`), per test in-process (`Faults.set`, `Faults.outage`), and at run time by
an authenticated client: `GET /debug/faults` (the policy and the counts), `PUT /debug/faults`
(body: a new SPEC; `off` stops injecting), `POST /debug/faults/outage?seconds=N`.

SPEC grammar: comma- (or newline-) separated `KEY=VALUE` items; `#` starts a comment; `off`
(or an empty spec) injects nothing::

    409=SHARE       share of writes with a name (PUT, PATCH, DELETE; not server-side apply,
                    which kube-apiserver retries itself) answered 409 Conflict
    429=SHARE       share of API requests answered 429 with `Retry-After` (see retry-after)
    500=SHARE       share answered 500 InternalError
    503=SHARE       share answered 503 ServiceUnavailable
    slow=SHARE      share answered only after `delay` (then served normally)
    timeout=SHARE   share never answered: held `hang`, then the connection is dropped
    watch-cut=DUR   every watch stream is cut (connection dropped, no final chunk) after
                    DUR x [0.5, 1.0) (seeded); the next watch resumed from a resourceVersion
                    gets an ERROR event 410 Expired `too old resource version`, as after
                    a compaction
    outage=EVERY/FOR  every EVERY the server goes away for FOR: it stops listening (connection
                    refused), open connections are dropped, then it listens again on the same
                    port
    delay=DUR       how long `slow` waits (default 1s)
    hang=DUR        how long `timeout` holds a request (default 5s, at most 60s)
    retry-after=N   seconds in a 429's Retry-After header (default 1)
    seed=N          the random generator's seed (default 0)

SHARE is a fraction in [0, 1]; the shares of one request's faults add up to at most 1. DUR is
a number with an optional unit `ms`, `s` (default) or `m`. Only `/api` and `/apis` requests
are faulted (discovery included, health and `/version` not); watches are not delayed or held;
a request with the header `X-Reconciler-Faults: exempt` is not faulted (an observer's).

Bodies are kube-apiserver's: 429 is the max-in-flight / priority-and-fairness filter's plain
text with `Retry-After`; 409 the optimistic-concurrency Conflict Status; 500 a storage error
as `NewInternalError` words it; 503 a `NewServiceUnavailable` Status.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import structlog

from simulator.apiserver.errors import stale, status_body
from simulator.apiserver.handlers import Request, Response
from simulator.apiserver.routing import BadPath, Route, route, split

log = structlog.get_logger(__name__)

SHARES = ("409", "429", "500", "503", "timeout", "slow")
MAX_HANG_SECONDS = 60.0
MAX_SPEC_BYTES = 4096
ENDPOINT = "debug/faults"
EXEMPT_HEADER = "x-reconciler-faults"
"""`X-Reconciler-Faults: exempt` spares a request (an observer measuring a run, not the
client under test); an outage still refuses it."""
_WRITES = {"PUT", "PATCH", "DELETE"}


class FaultSpecError(ValueError):
    """A `--faults` spec that does not parse; the message names the item and why."""


@dataclass(frozen=True)
class FaultPolicy:
    shares: dict[str, float] = field(default_factory=dict)
    watch_cut: float | None = None
    outage_every: float | None = None
    outage_for: float = 0.0
    delay: float = 1.0
    hang: float = 5.0
    retry_after: int = 1
    seed: int = 0
    text: str = "off"

    @property
    def active(self) -> bool:
        return any(self.shares.values()) or self.watch_cut is not None or \
            self.outage_every is not None


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m)?$")


def _duration(key: str, value: str) -> float:
    found = _DURATION.match(value.strip())
    if found is None:
        raise FaultSpecError(f"--faults {key}={value}: expected a duration such as 30s, "
                             "500ms or 2m")
    number = float(found.group(1))
    return number * {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}[found.group(2)]


def parse(text: str) -> FaultPolicy:
    """The policy a SPEC (see the module docstring) describes; FaultSpecError when it does not
    parse."""
    if len(text.encode()) > MAX_SPEC_BYTES:
        raise FaultSpecError(f"--faults: a spec is at most {MAX_SPEC_BYTES} bytes")
    items = [part.strip() for line in text.splitlines() for part in
             line.split("#", 1)[0].split(",")]
    items = [item for item in items if item]
    if not items or items == ["off"]:
        return FaultPolicy()
    shares: dict[str, float] = {}
    values: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not value:
            raise FaultSpecError(f"--faults {item!r}: expected KEY=VALUE")
        if key in SHARES:
            try:
                share = float(value)
            except ValueError:
                share = -1.0
            if not 0.0 <= share <= 1.0:
                raise FaultSpecError(f"--faults {key}={value}: a share is a number from 0 to 1")
            shares[key] = share
        elif key == "watch-cut":
            values["watch_cut"] = max(_duration(key, value), 0.05)
        elif key == "outage":
            every, slash, down = value.partition("/")
            if not slash:
                raise FaultSpecError(f"--faults outage={value}: expected EVERY/FOR, "
                                     "such as 60s/5s")
            values["outage_every"] = max(_duration(key, every), 0.1)
            values["outage_for"] = min(_duration(key, down), values["outage_every"])
        elif key in ("delay", "hang"):
            values[key] = min(_duration(key, value), MAX_HANG_SECONDS)
        elif key in ("retry-after", "seed"):
            if not value.isdigit() or len(value) > 9:
                raise FaultSpecError(f"--faults {key}={value}: expected a whole number")
            values[key.replace("-", "_")] = int(value)
        else:
            raise FaultSpecError(f"--faults {key}: unknown; known are "
                                 f"{', '.join(SHARES)}, watch-cut, outage, delay, hang, "
                                 "retry-after, seed")
    if sum(shares.values()) > 1.0 + 1e-9:
        raise FaultSpecError(f"--faults: the shares add up to {sum(shares.values()):g}, "
                             "more than 1")
    return FaultPolicy(shares=shares, text=",".join(items), **values)


def load(spec: str) -> FaultPolicy:
    """`@FILE` reads the spec from FILE; anything else is the spec itself."""
    if spec.startswith("@"):
        path = Path(spec[1:])
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_SPEC_BYTES + 1)
        except OSError as exc:
            raise FaultSpecError(f"--faults {spec}: cannot read {path}: {exc.strerror}") \
                from exc
        try:
            return parse(data.decode())
        except UnicodeDecodeError as exc:
            raise FaultSpecError(f"--faults {spec}: not UTF-8 text") from exc
    return parse(spec)


class Listener(Protocol):
    """What an outage needs of the server: stop listening, and listen again on the same port."""

    def stop_listening(self) -> None: ...

    def listen_again(self) -> None: ...


class Faults:
    """The switchable, seeded fault policy in the request path; thread-safe."""

    def __init__(self, policy: FaultPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._lock = threading.Lock()
        self._sleep = sleep
        self._listener: Listener | None = None
        self._stop = threading.Event()
        self._outages: threading.Thread | None = None
        self.injected: Counter[str] = Counter()
        self.requests = 0
        self._epoch = 0  # bumped by an outage: streams of an older epoch are cut
        self._expire_next = 0  # cut watches whose resumption is answered 410
        self._down = False
        self.policy = FaultPolicy()
        self._rng = random.Random(0)
        self.set(policy or FaultPolicy())

    # --- the per-test handle ------------------------------------------------------------

    def set(self, policy: FaultPolicy | str) -> None:
        """Switch to `policy` (a FaultPolicy or a SPEC); the generator is reseeded."""
        chosen = parse(policy) if isinstance(policy, str) else policy
        with self._lock:
            self.policy = chosen
            self._rng = random.Random(chosen.seed)
            if chosen.watch_cut is None:
                self._expire_next = 0
        log.info("fault policy", faults=chosen.text)
        self._restart_outages()

    def off(self) -> None:
        self.set(FaultPolicy())

    def counts(self) -> dict[str, Any]:
        with self._lock:
            return {"policy": self.policy.text, "requests": self.requests,
                    "injected": dict(sorted(self.injected.items())), "down": self._down}

    def attach(self, listener: Listener) -> None:
        """The server whose listening an outage stops; outages start once attached."""
        self._listener = listener
        self._restart_outages()

    def close(self) -> None:
        self._stop.set()
        thread = self._outages
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=MAX_HANG_SECONDS)

    def outage(self, seconds: float) -> None:
        """The server goes away now for `seconds` (bounded), then listens again; blocks."""
        listener = self._listener
        seconds = min(max(seconds, 0.0), MAX_HANG_SECONDS)
        with self._lock:
            self._down = True
            self._epoch += 1
            self.injected["outage"] += 1
        log.info("fault: server going away", seconds=seconds)
        try:
            if listener is not None:
                listener.stop_listening()
            self._stop.wait(seconds)
        finally:
            try:
                if listener is not None:
                    listener.listen_again()
            finally:
                with self._lock:
                    self._down = False
            log.info("fault: server back")

    def _restart_outages(self) -> None:
        if self._listener is None or (self._outages is not None and self._outages.is_alive()):
            return
        if self.policy.outage_every is None:
            return
        self._outages = threading.Thread(target=self._outage_loop, name="fault-outages",
                                         daemon=True)
        self._outages.start()

    def _outage_loop(self) -> None:
        while not self._stop.is_set():
            every = self.policy.outage_every
            if every is None:
                return
            if self._stop.wait(every - self.policy.outage_for):
                return
            if self.policy.outage_every is None:
                return
            self.outage(self.policy.outage_for)

    # --- the request path ---------------------------------------------------------------

    def around(self, request: Request, handle: Callable[[], Response]) -> Response | None:
        """The response to `request`: a fault, or `handle()` (possibly delayed, its watch
        stream wrapped). None: no answer, the caller drops the connection."""
        path = urlsplit(request.target).path.strip("/")
        if path == ENDPOINT or path.startswith(ENDPOINT + "/"):
            return self._endpoint(request, path)
        if self._down:
            return None
        if request.headers.get(EXEMPT_HEADER) == "exempt":
            return handle()
        try:
            segments, query = split(request.target)
            where = route(segments)
        except (BadPath, ValueError):
            return handle()
        if where is None:
            return handle()
        watch = isinstance(where, Route) and (
            where.watch_path or query.get("watch", "") in ("true", "1"))
        with self._lock:
            self.requests += 1
            policy = self.policy
            kind = self._roll(request, where, watch)
            expire = watch and policy.watch_cut is not None and self._expire_next > 0 and \
                query.get("resourceVersion", "") not in ("", "0")
            if expire:
                self._expire_next -= 1
            if kind is not None:
                self.injected[kind] += 1
            if expire:
                self.injected["410"] += 1
            share_of_cut = 0.5 + self._rng.random() / 2
            epoch = self._epoch
        if expire:
            rv = query.get("resourceVersion", "")
            return Response(200, stream=iter([_event("ERROR", status_body(
                410, f"too old resource version: {rv} ({_newer(rv)})", "Expired"))]))
        if kind is not None:
            answer = self._answer(kind, request, where, policy)
            if answer is not None:
                return answer
            if kind == "timeout":
                self._sleep(min(policy.hang, MAX_HANG_SECONDS))
                return None
        response = handle()
        if response.stream is not None and watch:
            response.stream = self._watched(response.stream, share_of_cut, epoch)
        return response

    def _roll(self, request: Request, where: Route | Any, watch: bool) -> str | None:
        shares = self.policy.shares
        if not shares:
            return None
        draw = self._rng.random()
        for kind in SHARES:
            share = shares.get(kind, 0.0)
            if not share:
                continue
            if draw < share:
                if kind == "409" and not (
                        request.method in _WRITES and isinstance(where, Route) and
                        where.name and "apply-patch" not in
                        request.headers.get("content-type", "")):
                    return None
                if kind in ("slow", "timeout") and watch:
                    return None
                return kind
            draw -= share
        return None

    def _answer(self, kind: str, request: Request, where: Route | Any,
                policy: FaultPolicy) -> Response | None:
        if kind == "429":
            return Response(429, b"Too many requests, please try again later.\n",
                            "text/plain; charset=utf-8",
                            headers={"Retry-After": str(policy.retry_after),
                                     "X-Content-Type-Options": "nosniff"})
        if kind == "409":
            assert isinstance(where, Route)
            return Response(409, stale(where.resource, where.group, where.name).status())
        if kind == "500":
            cause = "etcdserver: request timed out"
            return Response(500, status_body(500, f"Internal error occurred: {cause}",
                                             "InternalError", {"causes": [{"message": cause}]}))
        if kind == "503":
            return Response(503, status_body(503, "service unavailable", "ServiceUnavailable"))
        if kind == "slow":
            self._sleep(policy.delay)
        return None

    def _watched(self, stream: Iterator[bytes], share_of_cut: float,
                 epoch: int) -> Iterator[bytes]:
        """`stream`, cut once it has run `share_of_cut` of the policy's watch-cut (the policy
        of the moment: a watch opened before `watch-cut` was switched on is cut too)."""
        started = time.monotonic()
        try:
            for chunk in stream:
                if self._epoch != epoch:
                    raise ConnectionAbortedError("fault: the server went away")
                cut = self.policy.watch_cut
                if cut is not None and time.monotonic() - started >= cut * share_of_cut:
                    with self._lock:
                        self.injected["watch-cut"] += 1
                        self._expire_next += 1
                    raise ConnectionAbortedError("fault: watch cut")
                yield chunk
        finally:
            close = getattr(stream, "close", None)
            if callable(close):
                close()

    def _endpoint(self, request: Request, path: str) -> Response:
        if path == ENDPOINT and request.method == "GET":
            return Response(200, self.counts())
        if path == ENDPOINT and request.method == "PUT":
            try:
                self.set(request.body.decode(errors="replace"))
            except FaultSpecError as exc:
                return Response(400, status_body(400, str(exc), "BadRequest"))
            return Response(200, self.counts())
        if path == ENDPOINT + "/outage" and request.method == "POST":
            query = parse_qs(urlsplit(request.target).query)
            try:
                seconds = _duration("seconds", (query.get("seconds") or ["1"])[-1])
            except FaultSpecError as exc:
                return Response(400, status_body(400, str(exc), "BadRequest"))
            # After this answer has gone out.
            threading.Timer(0.2, self.outage, args=(seconds,)).start()
            return Response(202, {"outage": seconds})
        return Response(405, status_body(405, f"{request.method} {path}: GET or PUT "
                                              f"/{ENDPOINT}, POST /{ENDPOINT}/outage",
                                         "MethodNotAllowed"))


def _newer(rv: str) -> str:
    return str(int(rv) + 1) if rv.isdigit() and len(rv) < 19 else "1"


def _event(kind: str, obj: Any) -> bytes:
    return json.dumps({"type": kind, "object": obj}, separators=(",", ":")).encode() + b"\n"


