"""`KubernetesBackend`: the `Backend` protocol over a real API server, with the official client.

This is the one module that imports the `kubernetes` package (an import-linter contract), and the
package is untyped, so everything it hands back is `Any`: the untyped surface stays in this file,
behind functions that return plain dicts and the product's own types and errors.

How each operation maps to the API:

- `kind_info`: discovery through `DynamicClient.resources` (cached per api version and kind);
  a kind no API serves is `Rejected` with the simulator's message.
- `get` / `list`: plain GETs; a 404 on `get` is `None`; lists page through `limit`/`continue`
  and fill in each item's `apiVersion`/`kind`, which list responses leave out. Objects are
  returned as the server gives them (managedFields included): the diff normalizes.
- `apply`: server-side apply (`application/apply-patch+yaml`) with the caller's field manager;
  conflicts come back as `ApplyConflict`, one entry per field, as the simulator raises them.
- `update_status`: server-side apply to the `status` subresource, forced, without the
  object's resourceVersion, so a status write never fails on a stale read.
- `delete`: background propagation, as `kubectl delete` does.
- `emit_event` / `events`: core/v1 Events with the simulator's shape; the same involved uid,
  reason, message and source count up on one Event (a deterministic name, so the aggregation
  survives a restart of the daemon).
- `leases()`: a `KubernetesLeaseStore` for leader election (`reconciler.ha`): get, create and
  replace of coordination.k8s.io/v1 Leases with optimistic concurrency, outside the rate limit.
- `as_user(user, groups)` (`backends.base.Impersonating`): a view whose apply, update_status and
  delete are sent with `Impersonate-User`/`Impersonate-Group` headers, so the API server
  authorizes them as that user (a tenant's ServiceAccount); its reads are the backend's own
  (the shared informer caches, under the controller's identity). The identity rides on a
  context variable read by the connection pool wrapper, so it covers exactly the requests made
  inside the view's call, retries included, and never an informer's list or watch.

Errors: `map_api_exception` turns an `ApiException` (status code plus a `Status` body) into the
product's error tree; network failures are `Transient`.
"""

from __future__ import annotations

import builtins
import contextlib
import contextvars
import hashlib
import json
import os
import random as _random
import re
import shutil
import socket
import tempfile
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import structlog
import urllib3.exceptions
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError, ResourceNotUniqueError
from kubernetes.watch.watch import iter_resp_lines

from reconciler.backends.base import FIELD_MANAGER, Backend, Forwarding, Identity
from reconciler.backends.informer import (
    ChangeLog,
    Informer,
    KindCache,
    WatchExpired,
    name_of,
    selector_matcher,
    version_of,
)
from reconciler.backends.throttle import (
    Backoff,
    TokenBucket,
    retry_after_seconds,
    should_retry,
)
from reconciler.model.conflicts import ApplyConflict, FieldConflict
from reconciler.model.errors import (
    BackendError,
    Conflict,
    NotFound,
    ReconcilerError,
    Rejected,
    Transient,
)
from reconciler.model.kinds import KindInfo
from reconciler.model.labelsets import LabelSet
from reconciler.model.objects import GroupVersionKind, Obj, deep_copy, describe
from reconciler.runtime.clock import Clock, SystemClock, rfc3339
from reconciler.settings import KubernetesSettings

log = structlog.get_logger(__name__)

# Fields the server owns: an apply that carries them is refused (managedFields) or turned into a
# precondition that fails once the object moved on (resourceVersion, uid).
SERVER_METADATA = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields")

ObjectKey = tuple[str, str, str, str]  # group, kind, namespace, name


# --- pure parts: request shaping, selectors, events, error mapping --------------------------


@dataclass(frozen=True)
class ApplyRequest:
    """The arguments of one server-side apply PATCH."""

    body: Obj
    name: str
    namespace: str | None
    field_manager: str
    force_conflicts: bool


def apply_request(obj: Obj, info: KindInfo, field_manager: str, force: bool) -> ApplyRequest:
    """Shape a server-side apply of `obj`, refusing what the simulator refuses the same way."""
    body = deep_copy(obj)
    # Status goes only through the subresource (`update_status`), as the simulator has it.
    body.pop("status", None)
    metadata = body.setdefault("metadata", {})
    for field in SERVER_METADATA:
        metadata.pop(field, None)
    name = str(metadata.get("name") or "")
    if not name:
        raise Rejected(f"{describe(obj)}: metadata.name: Required value", field="metadata.name")
    namespace: str | None = str(metadata.get("namespace") or "")
    if info.namespaced:
        if not namespace:
            raise Rejected(f"{describe(obj)}: metadata.namespace: Required value for a "
                           "namespaced kind", field="metadata.namespace")
    else:
        metadata.pop("namespace", None)
        namespace = None
    return ApplyRequest(body, name, namespace, field_manager, force)


def status_request(obj: Obj, info: KindInfo, field_manager: str = FIELD_MANAGER) -> ApplyRequest:
    """Shape a server-side apply of `obj["status"]` to the status subresource.

    Only identity and status are sent: no resourceVersion (a status written from a read a few
    seconds old must not fail on it) and no spec. Forced, because the product is the status
    writer of what it reconciles: fields another manager set are taken over, as the simulator
    replaces status wholesale. A missing status sends none, which removes the fields we own.
    """
    meta = obj.get("metadata") or {}
    name = str(meta.get("name") or "")
    if not name:
        raise Rejected(f"{describe(obj)}: metadata.name: Required value", field="metadata.name")
    namespace = str(meta.get("namespace") or "") if info.namespaced else None
    if info.namespaced and not namespace:
        raise Rejected(f"{describe(obj)}: metadata.namespace: Required value for a "
                       "namespaced kind", field="metadata.namespace")
    body: Obj = {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"),
                 "metadata": {"name": name, **({"namespace": namespace} if namespace else {})}}
    if obj.get("status") is not None:
        body["status"] = deep_copy({"status": obj["status"]})["status"]
    return ApplyRequest(body, name, namespace, field_manager, True)


def label_selector(labels: Mapping[str, str] | None) -> str | None:
    """`a=1,b=2` (equality on every label, sorted so requests are stable); None for no labels."""
    if not labels:
        return None
    for key, value in labels.items():
        # These would change the selector's meaning rather than fail: refuse them here.
        if not key or any(c in key for c in ",=!() ") or any(c in value for c in ",=!() "):
            raise Rejected(f"label selector {key}={value!r}: not a valid label key and value",
                           field="labels")
    return ",".join(f"{key}={labels[key]}" for key in sorted(labels))


EventKey = tuple[str, str, str, str]  # involved uid, reason, message, source component


def event_key(involved: Obj, reason: str, message: str, source: str) -> EventKey:
    """What makes two events the same one, whose count goes up instead of a new Event."""
    meta = involved.get("metadata") or {}
    return (str(meta.get("uid") or ""), reason, message, source)


def event_name(involved: Obj, key: EventKey) -> str:
    """`<involved name>.<16 hex>`: deterministic, so a restarted daemon finds its Event again,
    and at most 253 characters, the limit of an object name."""
    meta = involved.get("metadata") or {}
    digest = hashlib.sha256("\x00".join(key).encode()).hexdigest()[:16]
    return f"{str(meta.get('name') or 'unnamed')[:236]}.{digest}"


def event_namespace(involved: Obj) -> str:
    """The involved object's namespace; `default` for cluster-scoped objects, as kubectl and
    the API server's validation expect."""
    meta = involved.get("metadata") or {}
    return str(meta.get("namespace") or "default")


def new_event(involved: Obj, type_: str, reason: str, message: str, source: str,
              now: float) -> Obj:
    """A core/v1 Event in the simulator's shape (count 1)."""
    meta = involved.get("metadata") or {}
    stamp = rfc3339(now)
    involved_ref = {
        "apiVersion": involved.get("apiVersion"),
        "kind": involved.get("kind"),
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "uid": meta.get("uid"),
    }
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"namespace": event_namespace(involved),
                     "name": event_name(involved, event_key(involved, reason, message, source))},
        "involvedObject": {k: v for k, v in involved_ref.items() if v},
        "type": type_,
        "reason": reason,
        "message": message,
        "source": {"component": source},
        "count": 1,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
    }


@dataclass(frozen=True)
class Operation:
    """What was being done when the API server answered, for messages and RBAC hints."""

    verb: str  # get, list, patch, create, delete
    resource: str  # qualified plural: configmaps, deployments.apps, services/status
    namespace: str | None = None
    name: str | None = None

    def __str__(self) -> str:
        target = f"{self.resource} {self.name!r}" if self.name else self.resource
        where = f" in namespace {self.namespace!r}" if self.namespace else ""
        return f"{self.verb} {target}{where}"


_RBAC = re.compile(r'cannot (?P<verb>[\w-]+) resource "(?P<resource>[^"]+)"'
                   r'(?: in API group "(?P<group>[^"]*)")?')
_MANAGER = re.compile(r'conflicts? with "(?P<manager>[^"]+)"')


def status_of(exc: Any) -> Obj:
    """The `Status` object an `ApiException` carries in its body ({} when it has none)."""
    body = getattr(exc, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not isinstance(body, str) or not body:
        return {}
    try:
        parsed = json.loads(body)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _causes(status: Obj) -> list[Obj]:
    details = status.get("details")
    causes = details.get("causes") if isinstance(details, dict) else None
    return [c for c in causes if isinstance(c, dict)] if isinstance(causes, list) else []


def _message(exc: Any, status: Obj) -> str:
    if status.get("message"):
        return str(status["message"])
    body = getattr(exc, "body", None)
    if isinstance(body, str) and body.strip():
        return body.strip()[:500]
    return str(getattr(exc, "reason", None) or "no message")


def apply_conflict(status: Obj, obj: str, manager: str) -> ApplyConflict | None:
    """The field conflicts of a failed server-side apply, one per `FieldManagerConflict` cause
    (`.data.a`, owned by the manager named in the cause's message); None if it has none."""
    conflicts = []
    for cause in _causes(status):
        if cause.get("reason") != "FieldManagerConflict":
            continue
        found = _MANAGER.search(str(cause.get("message") or ""))
        conflicts.append(FieldConflict(str(cause.get("field") or "?"),
                                       found.group("manager") if found else "unknown manager"))
    return ApplyConflict(obj, manager, conflicts) if conflicts else None


def map_api_exception(exc: Any, op: Operation, applied: str | None = None,
                      field_manager: str = FIELD_MANAGER,
                      identity: Identity | None = None) -> ReconcilerError:
    """The product's error for an API server's refusal.

    `applied` names the object of a server-side apply, so a 409 becomes an `ApplyConflict`
    listing each field and its manager. `identity`: the request was sent impersonating it, so
    a 403 names it as the one to grant the verb to.
    """
    code = int(getattr(exc, "status", 0) or 0)
    status = status_of(exc)
    message = _message(exc, status)
    causes = _causes(status)
    field = str(causes[0]["field"]) if causes and causes[0].get("field") else None
    if code == 0:
        # The client raises status 0 for failures before any HTTP answer (TLS, connection).
        return Transient("Unreachable", f"cannot reach the API server to {op}: {message}")
    if code == 404:
        return NotFound(f"{message} ({op})")
    if code == 409:
        if applied is not None:
            conflict = apply_conflict(status, applied, field_manager)
            if conflict is not None:
                return conflict
        return Conflict(f"{message} ({op})")
    if code in (400, 422):
        return Rejected(message, field=field)
    if code == 401:
        return BackendError(
            f"unauthorized to {op}: the API server rejected the credentials (an expired token "
            "or the wrong kubeconfig context?)")
    if code == 403:
        return _forbidden(message, op, causes, field, identity)
    if code == 405:
        return Rejected(f"{message} ({op}: the resource does not support this verb)")
    if code in (408, 410, 429) or code >= 500:
        reason = str(status.get("reason") or getattr(exc, "reason", None) or code)
        return Transient(reason, f"{op}: {message} (HTTP {code}; retrying)")
    return BackendError(f"{op}: HTTP {code}: {message}")


def _forbidden(message: str, op: Operation, causes: Sequence[Obj],
               field: str | None, identity: Identity | None = None) -> ReconcilerError:
    rbac = _RBAC.search(message)
    if rbac is not None:
        group = rbac.group("group")
        resource = rbac.group("resource") + (f".{group}" if group else "")
        verb = rbac.group("verb")
        # Refused impersonation is the reconciler's own permission; anything else, the
        # impersonated identity's.
        who = str(identity) if identity is not None and verb != "impersonate" else (
            "the reconciler's identity")
        return BackendError(
            f"forbidden to {op}: {message}. Grant {who} the {verb!r} verb on {resource!r} "
            "(a Role, or a ClusterRole for cluster-scoped kinds and lists across namespaces) "
            "and bind it")
    if any(c.get("reason") == "NamespaceTerminating" for c in causes):
        return Transient("NamespaceTerminating", f"{op}: {message}")
    if "admission webhook" in message or "exceeded quota" in message:
        # Policy, not permissions: the object itself was refused.
        return Rejected(message, field=field)
    who = f" {identity}" if identity is not None else ""
    return BackendError(
        f"forbidden to {op}: {message}. If this is RBAC, grant{who} the {op.verb!r} verb on "
        f"{op.resource!r}")


# --- the untyped client, wrapped ----------------------------------------------------------


def _decode(response: Any) -> Obj:
    data = getattr(response, "data", b"")
    if not data:
        return {}
    parsed = json.loads(data.decode("utf-8") if isinstance(data, bytes) else str(data))
    return parsed if isinstance(parsed, dict) else {}


@dataclass(frozen=True)
class _Kind:
    info: KindInfo
    resource: Any  # kubernetes.dynamic.resource.Resource


class WriteCounter:
    """Counts this process's writes that changed something, for `Environment.revision()`.

    The runner repeats rounds while the revision moves; a server-side apply that changes nothing
    returns the same resourceVersion, so comparing it with the last one seen for that object
    keeps a no-op round from looking like a change (and the daemon from spinning).
    """

    def __init__(self) -> None:
        self.count = 0
        self._seen: dict[ObjectKey, str] = {}

    def observe(self, key: ObjectKey, resource_version: str) -> None:
        self._seen[key] = resource_version

    def wrote(self, key: ObjectKey, resource_version: str) -> bool:
        changed = self._seen.get(key) != resource_version or not resource_version
        self._seen[key] = resource_version
        if changed:
            self.count += 1
        return changed

    def removed(self, key: ObjectKey) -> None:
        self._seen.pop(key, None)
        self.count += 1


def _key(info: KindInfo, obj: Obj) -> ObjectKey:
    meta = obj.get("metadata") or {}
    return (info.group, info.kind, str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def _resource_version(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


class RequestCounter:
    """API requests this backend sent, by verb (get, list, watch, create, patch, delete)."""

    READS = ("get", "list", "watch")

    def __init__(self) -> None:
        self.by_verb: Counter[str] = Counter()
        self.by_resource: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def count(self, op: Operation) -> None:
        with self._lock:
            self.by_verb[op.verb] += 1
            self.by_resource[(op.verb, op.resource)] += 1

    @property
    def reads(self) -> int:
        return sum(n for verb, n in self.by_verb.items() if verb in self.READS)

    @property
    def writes(self) -> int:
        return sum(n for verb, n in self.by_verb.items() if verb not in self.READS)

    @property
    def watches(self) -> int:
        return self.by_verb["watch"]


class _KubeWatch:
    """One watch request over the dynamic client: newline-delimited JSON events from a
    streaming response. `close` shuts the socket down first, so a thread blocked reading it
    wakes up (closing an SSL socket another thread reads would wait for its lock)."""

    def __init__(self, response: Any, api_version: str, kind: str) -> None:
        self._response = response
        self._api_version, self._kind = api_version, kind
        self._closed = False

    def __iter__(self) -> Iterator[tuple[str, Obj]]:
        for line in iter_resp_lines(self._response):  # type: ignore[no-untyped-call]
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except ValueError as exc:
                raise Transient("WatchDecode", f"undecodable watch event: {line[:200]!r}") \
                    from exc
            type_ = str(event.get("type") or "")
            obj = event.get("object")
            if not isinstance(obj, dict):
                continue
            if type_ == "ERROR":
                code = int(obj.get("code") or 0)
                if code == 410:
                    raise WatchExpired(str(obj.get("message") or "Gone"))
                raise Transient(str(obj.get("reason") or "WatchError"),
                                f"watch of {self._kind}: {obj.get('message')} (HTTP {code})")
            obj.setdefault("apiVersion", self._api_version)
            obj.setdefault("kind", self._kind)
            yield type_, obj

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            sock = getattr(getattr(self._response, "connection", None), "sock", None)
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(Exception):
            self._response.close()
            self._response.release_conn()


_ALWAYS = 2 ** 62  # the change revision of what no informer watches: always changed

LEASE_REQUEST_SECONDS = 5.0
"""A Lease request's bound: half the default renew deadline, so one hung request leaves time
for another attempt before leadership lapses."""


class KubernetesBackend:
    """The `Backend` protocol over an API server reached through `dynamic`, a `DynamicClient`.

    Build it with `connect`; the constructor takes the client so nothing here dials out.

    With `settings.informers` (the default), get/list of a kind start an informer for it (one
    list, then one watch across namespaces) and are answered from its cache from then on; the
    writes' responses go into the cache too, so a reconcile reads its own writes. A kind the
    identity may not list or watch (403) is read with plain requests instead.

    It is also a `reconciler.engine.tracking.ChangeFeed` over those caches, so the runner skips
    objects none of whose reads changed. Once the runner reads the feed (`names`), watch events
    are applied only at its sync points (the next `names`): a reconcile reads a snapshot that
    does not move under it, and a change that arrives meanwhile is seen as one after it.
    Before that (tests, scripts), every read applies what has arrived.

    With a listener (`add_change_listener`: the daemon's work queue), events are applied as they
    arrive instead, and the listener is told of each changed key at once, as controller-runtime's
    informers feed its queues.
    """

    thread_safe = True
    """Reconciles may call it from several threads at once (the daemon's workers)."""

    def __init__(
        self,
        dynamic: Any,
        clock: Clock | None = None,
        request_timeout: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        component: str = FIELD_MANAGER,
        settings: KubernetesSettings | None = None,
        now: Callable[[], float] = time.monotonic,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self._settings = settings = settings or KubernetesSettings()
        self._dynamic = dynamic
        self._clock = clock or SystemClock()
        self._timeout = (request_timeout if request_timeout is not None
                         else settings.request_timeout_seconds)
        self._sleep = sleep
        self._bucket = TokenBucket(settings.qps, settings.burst, now, sleep)
        self._backoff = Backoff(settings.retry_base_seconds, settings.retry_max_seconds, random)
        self._kinds: dict[tuple[str, str], _Kind] = {}
        self._counter = WriteCounter()
        self._event_counts: dict[tuple[str, str], int] = {}
        # events() lists what this backend's components emitted: ours, and any other
        # `source` a caller passed to emit_event.
        self._components: set[str] = {component}
        self.requests = RequestCounter()
        self.http_requests: Counter[str] = Counter()
        """Every HTTP request by method, discovery included (set by `connect`)."""
        self.retries = 0
        # Informers: one per (api version, kind) read; their caches and change log under _lock.
        self._lock = threading.RLock()
        self._start_lock = threading.Lock()
        self._changes = ChangeLog()
        self._caches: dict[tuple[str, str], KindCache] = {}
        self._watched_kinds: frozenset[tuple[str, str]] = frozenset()  # (group, kind) cached
        self._informers: dict[tuple[str, str], Informer] = {}
        self._uncached: set[tuple[str, str]] = set()
        # Label selectors of the informers (`select_informers`): per (api version, kind), the
        # selector string and its matcher; a kind not here is watched whole.
        self._selector_for: Callable[[str, str], str | None] = lambda api_version, kind: None
        self._filters: dict[tuple[str, str], Callable[[Obj], bool]] = {}
        self._pending: list[Callable[[], None]] = []
        self._frozen = False
        self._live = False
        self._closed = False

    @property
    def writes(self) -> int:
        """Writes this process made that changed the cluster (see `WriteCounter`)."""
        return self._counter.count

    @property
    def default_service_account(self) -> str | None:
        """Flux's `--default-service-account` (`KubernetesSettings.default_service_account`)."""
        return self._settings.default_service_account

    @property
    def informers(self) -> Mapping[tuple[str, str], Informer]:
        return dict(self._informers)

    def select_informers(self, selector_for: Callable[[str, str], str | None]) -> None:
        """List and watch each kind with `selector_for(apiVersion, kind)` as `labelSelector`
        (None: the whole kind), as controller-runtime's cache `ByObject` label selectors and
        Flux's `--watch-label-selector` do: the daemon's `--shard` passes
        `ShardFilter.selector_for`, so a shard's informers hold only its own owners. An object
        relabelled out of the selector leaves the cache (the API server sends DELETED).

        A filtered cache is this replica's view, not the cluster's: a `get` it misses and every
        `list` of a filtered kind are asked of the API server (an owner of another shard read
        by name, a Receiver selecting sources), and those reads are not watched. Call before
        the first read of a filtered kind; BackendError when its informer already runs."""
        for api_version, kind in list(self._caches):
            if selector_for(api_version, kind):
                raise BackendError(f"{kind} ({api_version}) is already watched (with another "
                                   "selector or none); select informers before the first read")
        self._selector_for = selector_for

    def close(self) -> None:
        """Stop every informer (their watch connections close)."""
        self._closed = True
        for informer in list(self._informers.values()):
            informer.stop()

    # --- Backend ---------------------------------------------------------------------------

    def kind_info(self, api_version: str, kind: str) -> KindInfo:
        return self._kind(api_version, kind).info

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        found = self._kind(api_version, kind)
        if not name or (found.info.namespaced and not namespace):
            # Without a name the client would list; no namespaced object is outside one.
            return None
        ns = namespace if found.info.namespaced else None
        cache = self._cache(found, api_version)
        if cache is not None:
            with self._lock:
                if not self._frozen:
                    self._drain()
                cached = cache.get((ns or "", name))
                obj = deep_copy(cached) if cached is not None else None
            if obj is not None:
                self._counter.observe(_key(found.info, obj), _resource_version(obj))
                return obj
            if (api_version, kind) not in self._filters:
                return None
            # A filtered cache misses what is outside its selector: ask the API server.
        op = Operation("get", found.info.qualified_resource, ns, name)
        try:
            obj = self._call(op, lambda: found.resource.get(
                name=name, namespace=ns, serialize=False, _request_timeout=self._timeout))
        except NotFound:
            return None
        self._counter.observe(_key(found.info, obj), _resource_version(obj))
        return obj

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> builtins.list[Obj]:
        found = self._kind(api_version, kind)
        if found.info.namespaced and namespace == "":
            # "" is a namespace no object is in (the simulator's answer); the client would
            # read it as "all namespaces".
            return []
        ns = namespace if found.info.namespaced else None
        selector = label_selector(labels)  # refuses what the API server would
        cache = self._cache(found, api_version)
        if cache is not None and (api_version, kind) not in self._filters:
            with self._lock:
                if not self._frozen:
                    self._drain()
                items = [deep_copy(o) for o in cache.items(ns, labels)]
        else:
            items = list(self._pages(found, ns, label_selector=selector)[0])
        for item in items:
            # List responses leave apiVersion and kind out of their items.
            item["apiVersion"], item["kind"] = api_version, kind
            self._counter.observe(_key(found.info, item), _resource_version(item))
        return items

    # --- resourceVersions without copies (the owner controller's no-op fast path) ----------

    def resource_versions(self, refs: Sequence[tuple[str, str, str, str]]
                          ) -> tuple[str | None, ...]:
        """The metadata.resourceVersion of each (apiVersion, kind, namespace, name), None for
        an object that does not exist: what `get` would say of it, read from the informer
        caches without copying any object. A kind with no cache, and a miss in a filtered one
        (`select_informers`), are asked of the API server with `get`."""
        out: list[str | None] = []
        for api_version, kind, namespace, name in refs:
            found = self._kind(api_version, kind)
            if not name or (found.info.namespaced and not namespace):
                out.append(None)
                continue
            ns = namespace if found.info.namespaced else ""
            cache = self._cache(found, api_version)
            if cache is not None:
                with self._lock:
                    if not self._frozen:
                        self._drain()
                    cached = cache.get((ns, name))
                    version = _resource_version(cached) if cached is not None else None
                if version is not None:
                    self._counter.observe((found.info.group, found.info.kind, ns, name), version)
                    out.append(version)
                    continue
                if (api_version, kind) not in self._filters:
                    out.append(None)
                    continue
            obj = self.get(api_version, kind, namespace, name)  # observed by `get`
            out.append(_resource_version(obj) if obj is not None else None)
        return tuple(out)

    def kind_version(self, api_version: str, kind: str) -> tuple[tuple[str, str, str], ...]:
        """(namespace, name, resourceVersion) of every object of a kind, sorted: what `list`
        would say of them, from the informer cache without copying any object (a kind with no
        cache, or a filtered one, is listed)."""
        found = self._kind(api_version, kind)
        cache = self._cache(found, api_version)
        if cache is not None and (api_version, kind) not in self._filters:
            with self._lock:
                if not self._frozen:
                    self._drain()
                versions = cache.versions()
            group, kind_name = found.info.group, found.info.kind
            for ns, name, version in versions:
                self._counter.observe((group, kind_name, ns, name), version)
            return tuple(versions)
        listed = self.list(api_version, kind)  # observed by `list`
        return tuple(sorted((str((o.get("metadata") or {}).get("namespace") or ""),
                             str((o.get("metadata") or {}).get("name") or ""),
                             _resource_version(o)) for o in listed))

    def apply(self, obj: Obj, field_manager: str = FIELD_MANAGER, force: bool = False) -> Obj:
        api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
        found = self._kind(api_version, kind)
        request = apply_request(obj, found.info, field_manager, force)
        op = Operation("patch", found.info.qualified_resource, request.namespace, request.name)
        live = self._call(
            op,
            lambda: found.resource.server_side_apply(
                body=request.body, name=request.name, namespace=request.namespace,
                field_manager=request.field_manager,
                # Sent only when forcing: `force=false` is the server's default anyway.
                force_conflicts=True if request.force_conflicts else None,
                serialize=False, _request_timeout=self._timeout),
            applied=describe(obj), field_manager=field_manager, retry_as="apply")
        if self._counter.wrote(_key(found.info, live), _resource_version(live)):
            log.debug("applied", object=describe(live), manager=field_manager, force=force)
        self._remember(api_version, kind, live)
        if found.info.kind == "CustomResourceDefinition" and found.info.group == (
                "apiextensions.k8s.io"):
            live = self._await_established(live)
        return live

    def update_status(self, obj: Obj) -> Obj:
        api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
        found = self._kind(api_version, kind)
        request = status_request(obj, found.info)
        subresource = getattr(found.resource, "subresources", {}).get("status")
        if subresource is None:
            raise Rejected(f"{describe(obj)}: {found.info.qualified_resource} has no status "
                           "subresource on this API server", field="status")
        op = Operation("patch", f"{found.info.qualified_resource}/status", request.namespace,
                       request.name)
        live = self._call(op, lambda: subresource.server_side_apply(
            body=request.body, name=request.name, namespace=request.namespace,
            field_manager=request.field_manager, force_conflicts=True, serialize=False,
            _request_timeout=self._timeout), retry_as="apply")
        self._counter.wrote(_key(found.info, live), _resource_version(live))
        self._remember(api_version, kind, live)
        return live

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        found = self._kind(api_version, kind)
        ns = namespace if found.info.namespaced else None
        if found.info.namespaced and not namespace:
            # The client refuses this with a ValueError; no object has no namespace.
            raise NotFound(f"{kind}//{name} not found (a namespaced kind needs a namespace)")
        op = Operation("delete", found.info.qualified_resource, ns, name)
        answer = self._call(op, lambda: found.resource.delete(
            name=name, namespace=ns, propagation_policy="Background", serialize=False,
            _request_timeout=self._timeout))
        self._counter.removed((found.info.group, found.info.kind, ns or "", name))
        cache = self._caches.get((api_version, kind))
        if cache is not None:
            with self._lock:
                meta = answer.get("metadata") or {}
                if answer.get("kind") == kind and meta.get("deletionTimestamp") and \
                        meta.get("finalizers"):
                    cache.upsert({**answer, "apiVersion": api_version})  # still finalizing
                else:
                    cache.remove((ns or "", name), str(meta.get("resourceVersion") or ""))
        if found.info.kind == "CustomResourceDefinition":
            # Its kind stops being served: look it up afresh next time, watch it no more.
            self._forget_crd(name)

    def emit_event(
        self, involved: Obj, type_: str, reason: str, message: str, source: str = FIELD_MANAGER
    ) -> None:
        self._components.add(source)
        events = self._kind("v1", "Event")
        namespace = event_namespace(involved)
        name = event_name(involved, event_key(involved, reason, message, source))
        known = self._event_counts.get((namespace, name))
        if known is not None and self._count_up(events, namespace, name, known + 1):
            return
        body = new_event(involved, type_, reason, message, source, self._clock.now())
        create = Operation("create", "events", namespace)
        try:
            self._call(create, lambda: events.resource.create(
                body=body, namespace=namespace, serialize=False,
                _request_timeout=self._timeout))
            self._event_counts[(namespace, name)] = 1
            return
        except Conflict:
            pass  # emitted before this process started (or by a replica): count it up
        current = self._call(Operation("get", "events", namespace, name),
                             lambda: events.resource.get(name=name, namespace=namespace,
                                                         serialize=False,
                                                         _request_timeout=self._timeout))
        self._count_up(events, namespace, name, int(current.get("count") or 1) + 1)

    def events(self) -> Sequence[Obj]:
        events = self._kind("v1", "Event")
        found: dict[tuple[str, str], Obj] = {}
        for component in sorted(self._components):
            for item in self._pages(events, None, field_selector=f"source={component}")[0]:
                item["apiVersion"], item["kind"] = "v1", "Event"
                meta = item.get("metadata") or {}
                found[(str(meta.get("namespace")), str(meta.get("name")))] = item
        return sorted(found.values(), key=lambda e: (str(e.get("firstTimestamp") or ""),
                                                     str(e["metadata"].get("name"))))

    # --- Impersonating (reconciler.backends.base) --------------------------------------------

    def as_user(self, user: str, groups: Sequence[str] = ()) -> Backend:
        """A view whose writes go as `user` with `groups` (see `KubernetesView`); the
        credentials need the `impersonate` verb on them (users or serviceaccounts, groups)."""
        if not user:
            raise BackendError("impersonation needs a user name")
        _install_identity_pool(self._dynamic)
        return KubernetesView(self, Identity(user, tuple(groups)))

    # --- Leases (reconciler.ha) --------------------------------------------------------------

    def leases(self, timeout: float = LEASE_REQUEST_SECONDS) -> KubernetesLeaseStore:
        """A `reconciler.ha.lease.LeaseStore` over this cluster's coordination.k8s.io/v1 Leases
        (discovered through this backend; requests bounded by `timeout` seconds)."""
        found = self._kind("coordination.k8s.io/v1", "Lease")
        return KubernetesLeaseStore(found.resource, timeout, self.requests)

    # --- ChangeFeed (reconciler.engine.tracking) -------------------------------------------

    @property
    def revision(self) -> int:
        return self._changes.revision

    def last_change(self, group: str, kind: str, namespace: str, name: str) -> int:
        if not self._watched(group, kind):
            return _ALWAYS
        return self._changes.last_change(group, kind, namespace, name)

    def last_kind_change(self, group: str, kind: str, namespace: str | None) -> int:
        if not self._watched(group, kind):
            return _ALWAYS
        return self._changes.last_kind_change(group, kind, namespace)

    def names(self, api_version: str, kind: str) -> builtins.list[tuple[str, str]]:
        """(namespace, name) of every object of a kind; a sync point (see the class)."""
        found = self._kind(api_version, kind)
        cache = self._cache(found, api_version)
        if cache is None:
            return sorted((str(o["metadata"].get("namespace") or ""), str(o["metadata"]["name"]))
                          for o in self.list(api_version, kind))
        with self._lock:
            self._frozen = True
            self._drain()
            return cache.names()

    def add_change_listener(self, listener: Callable[[str, str, str, str], None]) -> None:
        """Call `listener(group, kind, namespace, name)` for every change of a cached object
        (watch events, our own writes' responses, re-lists), under the cache lock, from the
        thread that saw it; from now on events are applied as they arrive."""
        with self._lock:
            self._changes.listeners.append(listener)
            self._live = True
            self._drain()

    def add_labelled_change_listener(
            self, listener: Callable[[str, str, str, str, LabelSet | None], None]) -> None:
        """As `add_change_listener`, with the (label, value) pairs the object carried before
        or after the change as a fifth argument (the daemon's work queue wakes a reader of a
        list by labels only for a change its selector matches)."""
        with self._lock:
            self._changes.labelled_listeners.append(listener)
            self._live = True
            self._drain()

    def sync(self) -> int:
        """Apply the watch events that arrived; the change revision after them."""
        with self._lock:
            self._drain()
            return self._changes.revision

    # --- internals -------------------------------------------------------------------------

    def _watched(self, group: str, kind: str) -> bool:
        # A set lookup: the runner asks this for every object of every pass.
        return (group, kind) in self._watched_kinds

    def _cache(self, found: _Kind, api_version: str) -> KindCache | None:
        """The informer cache of a kind, started on first use; None when not caching it."""
        key = (api_version, found.info.kind)
        cache = self._caches.get(key)
        if cache is not None or not self._settings.informers or self._closed or \
                key in self._uncached or found.info.kind == "Event":
            return cache
        with self._start_lock:
            cache = self._caches.get(key)
            if cache is not None or key in self._uncached:
                return cache
            cache = KindCache(found.info.group, found.info.kind, self._changes)
            selector = self._selector_for(api_version, found.info.kind) or None
            started: list[bool] = []

            def apply(type_: str, obj: Obj | None, items: Iterable[Obj] | None) -> None:
                def run() -> None:
                    self._apply_event(cache, type_, obj, items)
                with self._lock:
                    if not started or self._live:  # the first list: its caller waits for it
                        run()
                    else:
                        self._pending.append(run)

            informer = Informer(
                name=f"{found.info.qualified_resource}",
                lister=partial(self._list_all, found, api_version, selector),
                watcher=partial(self._watch, found, api_version, selector=selector),
                apply=apply, backoff=Backoff(self._settings.retry_base_seconds,
                                             self._settings.retry_max_seconds,
                                             self._backoff.random))
            try:
                informer.relist()
            except BackendError as exc:
                if "forbidden" not in str(exc):
                    raise
                log.warning("cannot watch, reading without a cache", kind=key, error=str(exc))
                self._uncached.add(key)
                return None
            except Rejected:
                self._uncached.add(key)
                return None
            started.append(True)
            with self._lock:
                self._caches[key] = cache
                self._watched_kinds = frozenset(
                    (c.group, c.kind) for c in self._caches.values())
                self._informers[key] = informer
                if selector is not None:
                    self._filters[key] = selector_matcher(selector)
            thread = threading.Thread(target=informer.run, name=f"informer {informer.name}",
                                      daemon=True)
            informer._thread = thread  # started here, after the synchronous list
            thread.start()
            log.debug("informer started", kind=key, objects=len(cache), selector=selector,
                      resource_version=informer.resource_version)
            return cache

    def _apply_event(self, cache: KindCache, type_: str, obj: Obj | None,
                     items: Iterable[Obj] | None) -> None:
        if type_ == "RELIST":
            cache.replace(items or ())
        elif obj is not None and type_ == "DELETED":
            cache.remove(name_of(obj), version_of(obj))
        elif obj is not None:
            cache.upsert(obj)

    def _drain(self) -> None:
        pending, self._pending = self._pending, []
        for run in pending:
            run()

    def _remember(self, api_version: str, kind: str, live: Obj) -> None:
        """A write's response into the cache (read your writes)."""
        cache = self._caches.get((api_version, kind))
        if cache is not None and live.get("metadata"):
            selected = self._filters.get((api_version, kind))
            with self._lock:
                if selected is not None and not selected(live):
                    # Outside this cache's selector (another shard's): never cached.
                    cache.remove(name_of(live), version_of(live))
                    return
                cache.upsert({**live, "apiVersion": api_version, "kind": kind})

    def _forget_crd(self, name: str) -> None:
        self._kinds.clear()
        with contextlib.suppress(Exception):
            # The client's discovery cache still lists the kind; a lookup that misses
            # refreshes it, but one that hits would not.
            self._dynamic.resources.invalidate_cache()
        for key, informer in list(self._informers.items()):
            cache = self._caches[key]
            plural = informer.name.split(".", 1)[0]
            if f"{plural}.{cache.group}" == name:
                informer.stop(join=0)
                with self._lock:
                    del self._informers[key]
                    del self._caches[key]
                    self._watched_kinds = frozenset(
                        (c.group, c.kind) for c in self._caches.values())

    def _list_all(self, found: _Kind, api_version: str,
                  selector: str | None = None) -> tuple[builtins.list[Obj], str]:
        token = _ACTING_AS.set(None)  # the shared caches are read as the controller
        try:
            items, version = self._pages(found, None, label_selector=selector)
            listed = []
            for item in items:
                item["apiVersion"], item["kind"] = api_version, found.info.kind
                listed.append(item)
            return listed, version()
        finally:
            _ACTING_AS.reset(token)

    def _watch(self, found: _Kind, api_version: str, resource_version: str,
               selector: str | None = None) -> _KubeWatch:
        token = _ACTING_AS.set(None)
        try:
            return self._watch_as_controller(found, api_version, resource_version, selector)
        finally:
            _ACTING_AS.reset(token)

    def _watch_as_controller(self, found: _Kind, api_version: str, resource_version: str,
                             selector: str | None = None) -> _KubeWatch:
        op = Operation("watch", found.info.qualified_resource)
        seconds = self._settings.watch_timeout_seconds
        filtered = {"label_selector": selector} if selector else {}
        response = self._call_raw(op, lambda: found.resource.get(
            namespace=None, watch=True, resource_version=resource_version or None,
            allow_watch_bookmarks=True, timeout_seconds=seconds, serialize=False,
            _request_timeout=(self._settings.connect_timeout_seconds, seconds + 30.0),
            **filtered), retry_as="watch")
        return _KubeWatch(response, api_version, found.info.kind)

    def _kind(self, api_version: str, kind: str) -> _Kind:
        cached = self._kinds.get((api_version, kind))
        if cached is not None:
            return cached
        gvk = GroupVersionKind.parse(api_version, kind)
        op = Operation("get", "discovery", name=f"{api_version}/{kind}")
        # The prefix and group narrow the search: with the group left open, discovery would
        # fetch the resources of every group that has a version of that name.
        search = ({"prefix": "apis", "group": gvk.group} if gvk.group else {"prefix": "api"})
        try:
            resource = self._call_raw(op, lambda: self._dynamic.resources.get(
                api_version=gvk.version, kind=kind, **search))
        except ResourceNotFoundError as exc:
            raise Rejected(
                f"no matches for kind \"{kind}\" in version \"{api_version}\": the cluster does "
                "not serve this kind (apply its CustomResourceDefinition first)",
                field="kind",
            ) from exc
        except ResourceNotUniqueError as exc:
            raise BackendError(f"discovery found more than one resource for {kind} in "
                               f"{api_version}: {exc}") from exc
        info = KindInfo(
            group=gvk.group, versions=(gvk.version,), kind=kind, plural=str(resource.name),
            namespaced=bool(resource.namespaced))
        entry = _Kind(info, resource)
        self._kinds[(api_version, kind)] = entry
        return entry

    def _pages(self, found: _Kind, namespace: str | None,
               **selectors: str | None) -> tuple[Iterator[Obj], Callable[[], str]]:
        """The items of every page, and (once they are consumed) the list's resourceVersion."""
        op = Operation("list", found.info.qualified_resource, namespace)
        version: list[str] = [""]

        def fetch(token: str | None) -> Any:
            return found.resource.get(
                namespace=namespace, limit=self._settings.list_page_size, _continue=token,
                serialize=False, _request_timeout=self._timeout, **selectors)

        def items() -> Iterator[Obj]:
            token: str | None = None
            while True:
                page = self._call(op, partial(fetch, token), retry_as="list")
                meta = page.get("metadata") or {}
                if not version[0]:
                    version[0] = str(meta.get("resourceVersion") or "")
                yield from (i for i in page.get("items") or [] if isinstance(i, dict))
                token = meta.get("continue") or None
                if token is None:
                    return

        return items(), lambda: version[0]

    def _count_up(self, events: _Kind, namespace: str, name: str, count: int) -> bool:
        """Set an Event's count and lastTimestamp; False if it is gone (events expire)."""
        patch = {"count": count, "lastTimestamp": rfc3339(self._clock.now())}
        op = Operation("patch", "events", namespace, name)
        try:
            # Setting, not adding: sending it twice is harmless, so it may be retried.
            self._call(op, lambda: events.resource.patch(
                body=patch, name=name, namespace=namespace,
                content_type="application/merge-patch+json", serialize=False,
                _request_timeout=self._timeout), retry_as="apply")
        except NotFound:
            self._event_counts.pop((namespace, name), None)
            return False
        self._event_counts[(namespace, name)] = count
        return True

    def _await_established(self, crd: Obj) -> Obj:
        """Wait until a CRD's kind is served, so objects of it applied next are not refused
        as unknown: until its `Established` condition is True (kube-apiserver sets it within
        about a second) or, for a server that writes no conditions, discovery lists the kind."""
        name = str(crd["metadata"]["name"])
        seconds = self._settings.crd_establish_seconds
        deadline = time.monotonic() + seconds
        api_version = str(crd.get("apiVersion"))
        spec = crd.get("spec") or {}
        versions = [v.get("name") for v in spec.get("versions") or []
                    if isinstance(v, dict) and v.get("served", True)]
        kind = str((spec.get("names") or {}).get("kind") or "")
        served = f"{spec.get('group')}/{versions[0]}" if versions and kind else None
        while True:
            conditions = (crd.get("status") or {}).get("conditions") or []
            if any(c.get("type") == "Established" and c.get("status") == "True"
                   for c in conditions if isinstance(c, dict)):
                self._kinds.clear()  # discovery may have been read before the kind existed
                return crd
            if served is not None:
                self._kinds.pop((served, kind), None)
                with contextlib.suppress(Rejected):
                    self._kind(served, kind)
                    return crd
            if time.monotonic() > deadline:
                raise Transient("CRDNotEstablished", f"CustomResourceDefinition {name} is not "
                                f"established after {seconds:g}s")
            self._sleep(0.2)
            crds = self._kind(api_version, "CustomResourceDefinition")
            with contextlib.suppress(NotFound):
                crd = self._call(Operation("get", crds.info.qualified_resource, None, name),
                                 partial(crds.resource.get, name=name, serialize=False,
                                         _request_timeout=self._timeout))

    def _call(self, op: Operation, call: Callable[[], Any], applied: str | None = None,
              field_manager: str = FIELD_MANAGER, retry_as: str | None = None) -> Obj:
        return _decode(self._call_raw(op, call, applied, field_manager, retry_as))

    def _call_raw(self, op: Operation, call: Callable[[], Any], applied: str | None = None,
                  field_manager: str = FIELD_MANAGER, retry_as: str | None = None) -> Any:
        """One request: a token from the bucket, then the call, retried with backoff (see
        `throttle.should_retry`; `retry_as` names the verb's retry class, default `op.verb`)."""
        verb = retry_as or op.verb
        attempt = 0
        while True:
            if op.resource != "discovery":
                self._bucket.acquire()
                self.requests.count(op)
            try:
                return call()
            except ApiException as exc:
                code = int(getattr(exc, "status", 0) or 0)
                wait = self._retry_wait(verb, code, attempt, getattr(exc, "headers", None))
                if wait is None:
                    raise map_api_exception(exc, op, applied, field_manager,
                                            _ACTING_AS.get()) from exc
                log.info("retrying", request=str(op), code=code, attempt=attempt + 1,
                         after_seconds=round(wait, 3))
            except urllib3.exceptions.HTTPError as exc:
                # Connection refused, timeouts, TLS: the server may be back on the next try.
                wait = self._retry_wait(verb, 0, attempt, None)
                if wait is None:
                    raise Transient("Unreachable",
                                    f"cannot reach the API server to {op}: {exc}") from exc
                log.info("retrying", request=str(op), error=str(exc)[:200],
                         attempt=attempt + 1, after_seconds=round(wait, 3))
            attempt += 1
            self.retries += 1
            self._sleep(wait)

    def _retry_wait(self, verb: str, code: int, attempt: int,
                    headers: Mapping[str, str] | None) -> float | None:
        """Seconds to wait before the next attempt, or None: do not retry."""
        if attempt >= self._settings.retries or not should_retry(verb, code):
            return None
        delay = self._backoff.delay(attempt)
        asked = retry_after_seconds(headers, cap=self._settings.retry_max_seconds) \
            if code == 429 else None
        return max(delay, asked) if asked is not None else delay


_ACTING_AS: contextvars.ContextVar[Identity | None] = contextvars.ContextVar(
    "reconciler_kube_acting_as", default=None)
"""The identity the requests made in this context are sent as (None: the backend's own, or
the settings' `impersonate_user`). Set only around a `KubernetesView`'s writes."""


@contextlib.contextmanager
def acting_as(identity: Identity | None) -> Iterator[None]:
    """Send the requests made inside as `identity` (the pool wrapper adds the headers)."""
    token = _ACTING_AS.set(identity)
    try:
        yield
    finally:
        _ACTING_AS.reset(token)


class KubernetesView(Forwarding):
    """`KubernetesBackend.as_user`: the backend, with its writes sent as `identity`.

    apply, update_status and delete go to the API server with the impersonation headers, so
    RBAC authorizes them as the tenant and a refusal is its 403 (mapped to a `BackendError`
    naming the identity, the verb and the resource); what they return goes into the shared
    caches as any write does. get, list, kind_info and events are the backend's own: the
    informer caches are shared and cluster-wide, filled under the controller's identity (the
    realizer reads back what it stamped and the objects its owner labels select; a tenant that
    may patch an object gets the same object back from its own apply).
    """

    thread_safe = True

    def __init__(self, base: KubernetesBackend, identity: Identity) -> None:
        super().__init__(base)
        self.identity = identity

    def apply(self, obj: Obj, field_manager: str = FIELD_MANAGER, force: bool = False) -> Obj:
        # Discovery first, as the controller: a tenant need not be able to read it.
        self.inner.kind_info(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
        with acting_as(self.identity):
            return self.inner.apply(obj, field_manager, force)

    def update_status(self, obj: Obj) -> Obj:
        self.inner.kind_info(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
        with acting_as(self.identity):
            return self.inner.update_status(obj)

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        self.inner.kind_info(api_version, kind)
        with acting_as(self.identity):
            self.inner.delete(api_version, kind, namespace, name)


class KubernetesLeaseStore:
    """`reconciler.ha.lease.LeaseStore` over coordination.k8s.io/v1 Leases: get, create (POST)
    and replace (PUT, carrying the resourceVersion read); 409 is `Conflict`, 404 `NotFound`.

    Its requests bypass the backend's token bucket and retries, as controller-runtime gives
    leader election a client of its own: a renewal must not queue behind a burst of reconcile
    writes, and the elector retries on its own schedule, within its renew deadline.
    """

    RESOURCE = "leases.coordination.k8s.io"

    def __init__(self, resource: Any, timeout: float = LEASE_REQUEST_SECONDS,
                 requests: RequestCounter | None = None) -> None:
        self._resource = resource  # kubernetes.dynamic.resource.Resource of Leases
        self._timeout = timeout
        self._requests = requests

    def get(self, namespace: str, name: str) -> Obj | None:
        try:
            return self._request(Operation("get", self.RESOURCE, namespace, name),
                                 lambda: self._resource.get(
                                     name=name, namespace=namespace, serialize=False,
                                     _request_timeout=self._timeout))
        except NotFound:
            return None

    def create(self, lease: Obj) -> Obj:
        meta = lease.get("metadata") or {}
        namespace = str(meta.get("namespace") or "")
        return self._request(Operation("create", self.RESOURCE, namespace, meta.get("name")),
                             lambda: self._resource.create(
                                 body=lease, namespace=namespace, serialize=False,
                                 _request_timeout=self._timeout))

    def update(self, lease: Obj, resource_version: str) -> Obj:
        body = deep_copy(lease)
        meta = body.setdefault("metadata", {})
        meta["resourceVersion"] = resource_version
        namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        return self._request(Operation("update", self.RESOURCE, namespace, name),
                             lambda: self._resource.replace(
                                 body=body, name=name, namespace=namespace, serialize=False,
                                 _request_timeout=self._timeout))

    def _request(self, op: Operation, call: Callable[[], Any]) -> Obj:
        if self._requests is not None:
            self._requests.count(op)
        try:
            return _decode(call())
        except ApiException as exc:
            raise map_api_exception(exc, op) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise Transient("Unreachable", f"cannot reach the API server to {op}: {exc}") from exc


class _CountingPool:
    """The client's urllib3 pool manager, counting every HTTP request by method, discovery
    included (the cross-check of `RequestCounter`, which counts what this module asks for)."""

    def __init__(self, inner: Any, counts: Counter[str]) -> None:
        self._inner, self.counts = inner, counts

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        self.counts[str(method).upper()] += 1
        return self._inner.request(method, url, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _ImpersonatingPool:
    """The client's urllib3 pool manager, adding `Impersonate-User` and one `Impersonate-Group`
    header per group to every request (the generated client keeps headers in a dict, which
    cannot repeat a name; kube-apiserver reads each repeated header as one group).

    The identity is the context's (`acting_as`, a `KubernetesView`'s writes) if one is set,
    else `user` and `groups` (the settings' `impersonate_user`), else none: the request goes
    as the credentials' own identity. kube-apiserver has no nested impersonation, so a view's
    identity replaces the settings' one; the credentials need `impersonate` on both."""

    def __init__(self, inner: Any, user: str | None, groups: Sequence[str]) -> None:
        self._inner, self._user, self._groups = inner, user, tuple(groups)

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        acting = _ACTING_AS.get()
        user, groups = ((acting.user, _groups_to_send(acting)) if acting is not None
                        else (self._user, self._groups))
        if user:
            kwargs["headers"] = impersonation_headers(kwargs.get("headers"), user, groups)
        return self._inner.request(method, url, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _groups_to_send(identity: Identity) -> tuple[str, ...]:
    """The `Impersonate-Group` headers for `identity`: none for a ServiceAccount with exactly
    the groups kube-apiserver gives one impersonated without groups (`system:serviceaccounts`,
    `system:serviceaccounts:NS`, `system:authenticated`), so the controller needs `impersonate`
    on `serviceaccounts` only, as Flux's does; otherwise every group, each authorized."""
    ref = identity.service_account_ref
    if ref is not None and identity.groups == Identity.service_account(*ref).groups:
        return ()
    return identity.groups


def _install_identity_pool(dynamic: Any) -> None:
    """Make sure the client's pool manager adds a view's impersonation headers (`connect`
    installs the wrapper; a backend built around another client gets it here)."""
    rest = getattr(getattr(dynamic, "client", None), "rest_client", None)
    pool = getattr(rest, "pool_manager", None)
    if rest is None or pool is None:
        raise BackendError("impersonation needs the official client's connection pool "
                           "(build the backend with `connect`)")
    layer = pool
    while layer is not None:
        if isinstance(layer, _ImpersonatingPool):
            return
        layer = getattr(layer, "_inner", None) if isinstance(
            layer, _CountingPool | _ImpersonatingPool) else None
    rest.pool_manager = _ImpersonatingPool(pool, None, ())


def impersonation_headers(headers: Mapping[str, str] | None, user: str,
                          groups: Sequence[str]) -> urllib3.HTTPHeaderDict:
    """`headers` plus `Impersonate-User: user` and an `Impersonate-Group` header per group
    (replacing any the caller set)."""
    out = urllib3.HTTPHeaderDict()
    for key, value in (headers or {}).items():
        if key.lower() not in ("impersonate-user", "impersonate-group"):
            out.add(key, value)
    out.add("Impersonate-User", user)
    for group in groups:
        out.add("Impersonate-Group", group)
    return out


def connect(
    kubeconfig: Path | None = None,
    context: str | None = None,
    clock: Clock | None = None,
    request_timeout: float | None = None,
    settings: KubernetesSettings | None = None,
) -> KubernetesBackend:
    """A backend for the cluster in `kubeconfig`; without one, the in-cluster service account
    if this runs in a pod, else the default kubeconfig (`$KUBECONFIG`, `~/.kube/config`).

    Raises `BackendError` when no configuration is found or the API server cannot be reached
    (the client reads discovery data while it is built).
    """
    settings = settings or KubernetesSettings()
    configuration = k8s_client.Configuration()
    try:
        if kubeconfig is not None:
            if not kubeconfig.is_file():
                raise BackendError(f"kubeconfig {kubeconfig} does not exist or is not a file")
            # The config loaders and DynamicClient are the package's untyped corner.
            k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=str(kubeconfig), context=context,
                client_configuration=configuration, persist_config=False)
            source = str(kubeconfig)
        else:
            try:
                k8s_config.load_incluster_config(  # type: ignore[no-untyped-call]
                    client_configuration=configuration)
                source = "in-cluster service account"
            except ConfigException:
                k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                    context=context, client_configuration=configuration, persist_config=False)
                source = "default kubeconfig"
    except (ConfigException, OSError, ValueError) as exc:
        where = str(kubeconfig) if kubeconfig is not None else (
            "in-cluster config or the default kubeconfig ($KUBECONFIG, ~/.kube/config)")
        raise BackendError(f"cannot load Kubernetes configuration from {where}: {exc}") from exc
    host = str(configuration.host)
    # One connection per watched kind stays open; leave room for the requests beside them.
    configuration.connection_pool_maxsize = max(
        int(configuration.connection_pool_maxsize or 0), 32)
    api = k8s_client.ApiClient(configuration)
    # Always: the settings' identity (if any), and a `KubernetesView`'s per request.
    api.rest_client.pool_manager = _ImpersonatingPool(  # type: ignore[assignment]
        api.rest_client.pool_manager, settings.impersonate_user,
        settings.impersonate_groups)
    http_requests: Counter[str] = Counter()
    api.rest_client.pool_manager = _CountingPool(  # type: ignore[assignment]
        api.rest_client.pool_manager, http_requests)
    # The client's default discovery cache is /tmp/osrcp-<md5(host)>.json: shared by every
    # process and user on the host, so another cluster once served at the same address (or
    # another user) could hand us stale or planted discovery. Ours is private to this backend.
    cache_dir = tempfile.mkdtemp(prefix="reconciler-discovery-")
    try:
        dynamic = DynamicClient(  # type: ignore[no-untyped-call]
            api, cache_file=os.path.join(cache_dir, "discovery.json"))
    except ApiException as exc:
        shutil.rmtree(cache_dir, ignore_errors=True)
        raise map_api_exception(exc, Operation("get", "discovery")) from exc
    except (urllib3.exceptions.HTTPError, ValueError) as exc:
        shutil.rmtree(cache_dir, ignore_errors=True)
        raise BackendError(f"cannot reach the API server at {host} ({source}): {exc}") from exc
    weakref.finalize(dynamic, shutil.rmtree, cache_dir, True)
    log.info("connected to Kubernetes", host=host, config=source,
             impersonating=settings.impersonate_user)
    backend = KubernetesBackend(dynamic, clock, request_timeout, settings=settings)
    backend.http_requests = http_requests
    return backend
