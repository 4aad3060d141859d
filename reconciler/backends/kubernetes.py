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

Errors: `map_api_exception` turns an `ApiException` (status code plus a `Status` body) into the
product's error tree; network failures are `Transient`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
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

from reconciler.apply.conflicts import ApplyConflict, FieldConflict
from reconciler.backends.base import FIELD_MANAGER
from reconciler.engine.clock import Clock, SystemClock, rfc3339
from reconciler.model.errors import (
    BackendError,
    Conflict,
    NotFound,
    ReconcilerError,
    Rejected,
    Transient,
)
from reconciler.model.kinds import KindInfo
from reconciler.model.objects import GroupVersionKind, Obj, deep_copy, describe

log = structlog.get_logger(__name__)

# Fields the server owns: an apply that carries them is refused (managedFields) or turned into a
# precondition that fails once the object moved on (resourceVersion, uid).
SERVER_METADATA = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields")
LIST_PAGE_SIZE = 500
DEFAULT_REQUEST_TIMEOUT = 30.0
CRD_ESTABLISH_TIMEOUT = 30.0

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
        body["status"] = copy.deepcopy(obj["status"])
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
                      field_manager: str = FIELD_MANAGER) -> ReconcilerError:
    """The product's error for an API server's refusal.

    `applied` names the object of a server-side apply, so a 409 becomes an `ApplyConflict`
    listing each field and its manager.
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
        return _forbidden(message, op, causes, field)
    if code == 405:
        return Rejected(f"{message} ({op}: the resource does not support this verb)")
    if code in (408, 410, 429) or code >= 500:
        reason = str(status.get("reason") or getattr(exc, "reason", None) or code)
        return Transient(reason, f"{op}: {message} (HTTP {code}; retrying)")
    return BackendError(f"{op}: HTTP {code}: {message}")


def _forbidden(message: str, op: Operation, causes: Sequence[Obj],
               field: str | None) -> ReconcilerError:
    rbac = _RBAC.search(message)
    if rbac is not None:
        group = rbac.group("group")
        resource = rbac.group("resource") + (f".{group}" if group else "")
        return BackendError(
            f"forbidden to {op}: {message}. Grant the reconciler's identity the "
            f"{rbac.group('verb')!r} verb on {resource!r} (a Role, or a ClusterRole for "
            "cluster-scoped kinds and lists across namespaces) and bind it")
    if any(c.get("reason") == "NamespaceTerminating" for c in causes):
        return Transient("NamespaceTerminating", f"{op}: {message}")
    if "admission webhook" in message or "exceeded quota" in message:
        # Policy, not permissions: the object itself was refused.
        return Rejected(message, field=field)
    return BackendError(
        f"forbidden to {op}: {message}. If this is RBAC, grant the {op.verb!r} verb on "
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


class KubernetesBackend:
    """The `Backend` protocol over an API server reached through `dynamic`, a `DynamicClient`.

    Build it with `connect`; the constructor takes the client so nothing here dials out.
    """

    def __init__(
        self,
        dynamic: Any,
        clock: Clock | None = None,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        sleep: Callable[[float], None] = time.sleep,
        component: str = FIELD_MANAGER,
    ) -> None:
        self._dynamic = dynamic
        self._clock = clock or SystemClock()
        self._timeout = request_timeout
        self._sleep = sleep
        self._kinds: dict[tuple[str, str], _Kind] = {}
        self._counter = WriteCounter()
        self._event_counts: dict[tuple[str, str], int] = {}
        # events() lists what this backend's components emitted: ours, and any other
        # `source` a caller passed to emit_event.
        self._components: set[str] = {component}

    @property
    def writes(self) -> int:
        """Writes this process made that changed the cluster (see `WriteCounter`)."""
        return self._counter.count

    # --- Backend ---------------------------------------------------------------------------

    def kind_info(self, api_version: str, kind: str) -> KindInfo:
        return self._kind(api_version, kind).info

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        found = self._kind(api_version, kind)
        if not name or (found.info.namespaced and not namespace):
            # Without a name the client would list; no namespaced object is outside one.
            return None
        ns = namespace if found.info.namespaced else None
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
    ) -> list[Obj]:
        found = self._kind(api_version, kind)
        if found.info.namespaced and namespace == "":
            # "" is a namespace no object is in (the simulator's answer); the client would
            # read it as "all namespaces".
            return []
        ns = namespace if found.info.namespaced else None
        items = []
        for item in self._pages(found, ns, label_selector=label_selector(labels)):
            # List responses leave apiVersion and kind out of their items.
            item["apiVersion"], item["kind"] = api_version, kind
            self._counter.observe(_key(found.info, item), _resource_version(item))
            items.append(item)
        return items

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
            applied=describe(obj), field_manager=field_manager)
        if self._counter.wrote(_key(found.info, live), _resource_version(live)):
            log.debug("applied", object=describe(live), manager=field_manager, force=force)
        if found.info.kind == "CustomResourceDefinition" and found.info.group == (
                "apiextensions.k8s.io"):
            self._await_established(live)
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
            _request_timeout=self._timeout))
        self._counter.wrote(_key(found.info, live), _resource_version(live))
        return live

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        found = self._kind(api_version, kind)
        ns = namespace if found.info.namespaced else None
        if found.info.namespaced and not namespace:
            # The client refuses this with a ValueError; no object has no namespace.
            raise NotFound(f"{kind}//{name} not found (a namespaced kind needs a namespace)")
        op = Operation("delete", found.info.qualified_resource, ns, name)
        self._call(op, lambda: found.resource.delete(
            name=name, namespace=ns, propagation_policy="Background", serialize=False,
            _request_timeout=self._timeout))
        self._counter.removed((found.info.group, found.info.kind, ns or "", name))
        if found.info.kind == "CustomResourceDefinition":
            # Its kind stops being served; look it up afresh next time.
            self._kinds.clear()

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
            for item in self._pages(events, None, field_selector=f"source={component}"):
                item["apiVersion"], item["kind"] = "v1", "Event"
                meta = item.get("metadata") or {}
                found[(str(meta.get("namespace")), str(meta.get("name")))] = item
        return sorted(found.values(), key=lambda e: (str(e.get("firstTimestamp") or ""),
                                                     str(e["metadata"].get("name"))))

    # --- internals -------------------------------------------------------------------------

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
               **selectors: str | None) -> Iterator[Obj]:
        op = Operation("list", found.info.qualified_resource, namespace)

        def fetch(token: str | None) -> Any:
            return found.resource.get(
                namespace=namespace, limit=LIST_PAGE_SIZE, _continue=token, serialize=False,
                _request_timeout=self._timeout, **selectors)

        token: str | None = None
        while True:
            page = self._call(op, partial(fetch, token))
            items = page.get("items") or []
            yield from (i for i in items if isinstance(i, dict))
            token = (page.get("metadata") or {}).get("continue") or None
            if token is None:
                return

    def _count_up(self, events: _Kind, namespace: str, name: str, count: int) -> bool:
        """Set an Event's count and lastTimestamp; False if it is gone (events expire)."""
        patch = {"count": count, "lastTimestamp": rfc3339(self._clock.now())}
        op = Operation("patch", "events", namespace, name)
        try:
            self._call(op, lambda: events.resource.patch(
                body=patch, name=name, namespace=namespace,
                content_type="application/merge-patch+json", serialize=False,
                _request_timeout=self._timeout))
        except NotFound:
            self._event_counts.pop((namespace, name), None)
            return False
        self._event_counts[(namespace, name)] = count
        return True

    def _await_established(self, crd: Obj) -> None:
        """Wait until a CRD's kind is served, so objects of it applied next are not refused
        as unknown (the API server establishes a new CRD within about a second)."""
        name = str(crd["metadata"]["name"])
        deadline = time.monotonic() + CRD_ESTABLISH_TIMEOUT
        while True:
            conditions = (crd.get("status") or {}).get("conditions") or []
            if any(c.get("type") == "Established" and c.get("status") == "True"
                   for c in conditions if isinstance(c, dict)):
                return
            if time.monotonic() > deadline:
                raise Transient("CRDNotEstablished", f"CustomResourceDefinition {name} is not "
                                f"established after {CRD_ESTABLISH_TIMEOUT:g}s")
            self._sleep(0.5)
            crd = self.get(str(crd.get("apiVersion")), "CustomResourceDefinition", "", name) or crd

    def _call(self, op: Operation, call: Callable[[], Any], applied: str | None = None,
              field_manager: str = FIELD_MANAGER) -> Obj:
        return _decode(self._call_raw(op, call, applied, field_manager))

    @staticmethod
    def _call_raw(op: Operation, call: Callable[[], Any], applied: str | None = None,
                  field_manager: str = FIELD_MANAGER) -> Any:
        try:
            return call()
        except ApiException as exc:
            raise map_api_exception(exc, op, applied, field_manager) from exc
        except urllib3.exceptions.HTTPError as exc:
            # Connection refused, timeouts, TLS: the server may be back on the next try.
            raise Transient("Unreachable", f"cannot reach the API server to {op}: {exc}") from exc


def connect(
    kubeconfig: Path | None = None,
    context: str | None = None,
    clock: Clock | None = None,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
) -> KubernetesBackend:
    """A backend for the cluster in `kubeconfig`; without one, the in-cluster service account
    if this runs in a pod, else the default kubeconfig (`$KUBECONFIG`, `~/.kube/config`).

    Raises `BackendError` when no configuration is found or the API server cannot be reached
    (the client reads discovery data while it is built).
    """
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
    api = k8s_client.ApiClient(configuration)
    try:
        dynamic = DynamicClient(api)  # type: ignore[no-untyped-call]
    except ApiException as exc:
        raise map_api_exception(exc, Operation("get", "discovery")) from exc
    except (urllib3.exceptions.HTTPError, ValueError) as exc:
        raise BackendError(f"cannot reach the API server at {host} ({source}): {exc}") from exc
    log.info("connected to Kubernetes", host=host, config=source)
    return KubernetesBackend(dynamic, clock, request_timeout)
