"""The `Backend` protocol: everything the product asks of a cluster.

Two implementations: `reconciler.backends.kubernetes` (a real API server) and the simulator's
in-memory cluster. One contract test suite runs against both.

Multi-tenancy: a backend that can act as another identity implements `Impersonating`
(`as_user(user, groups)`, a view whose writes go as that user). `impersonated(backend, identity)`
is how a controller gets the backend it writes through for one owner: reads go on through
`backend` (the controller's shared, watch-fed caches, under its own identity, and its read
tracking), while apply, delete and status writes of the stamped objects go as the tenant, so
RBAC decides what a tenant's chain may create, change or delete. A backend with no
authentication (the simulated cluster) has no such view: its "view" is itself, and nothing is
enforced.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol, cast, runtime_checkable

from reconciler.model.kinds import KindInfo
from reconciler.model.objects import Obj

FIELD_MANAGER = "reconciler"

Ref = tuple[str, str, str, str]
"""(apiVersion, kind, namespace, name) of one object ("" for a cluster-scoped one's namespace)."""


class Backend(Protocol):
    def kind_info(self, api_version: str, kind: str) -> KindInfo:
        """The served resource for a kind; raises `Rejected` if no API serves it."""
        ...

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        ...

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> list[Obj]:
        ...

    def apply(self, obj: Obj, field_manager: str = FIELD_MANAGER, force: bool = False) -> Obj:
        """Create the object or update the fields it declares; return the live object."""
        ...

    def update_status(self, obj: Obj) -> Obj:
        """Write `obj["status"]` through the status subresource; return the live object."""
        ...

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        ...

    def emit_event(
        self, involved: Obj, type_: str, reason: str, message: str, source: str = FIELD_MANAGER
    ) -> None:
        ...

    def events(self) -> Sequence[Obj]:
        ...


# --- versions without copies (the owner controller's no-op fast path) ----------------------


def resource_versions(backend: Backend, refs: Sequence[Ref]) -> tuple[str | None, ...]:
    """Each ref's `metadata.resourceVersion` (None for an object that does not exist), read as
    `get` reads it (and recorded as `get`'s reads are) but, where the backend has its own
    `resource_versions` (the simulated cluster, informer caches), without copying any object.
    Raises what `get` raises (an unserved kind, a refused read)."""
    own: Callable[[Sequence[Ref]], tuple[str | None, ...]] | None = getattr(
        backend, "resource_versions", None)
    if own is not None:
        return own(refs)
    return _versions_by_get(backend, refs)


def _versions_by_get(backend: Backend, refs: Sequence[Ref]) -> tuple[str | None, ...]:
    out: list[str | None] = []
    for ref in refs:
        live = backend.get(*ref)
        version = (live.get("metadata") or {}).get("resourceVersion") if live is not None else None
        out.append(None if version is None else str(version))
    return tuple(out)


def kind_versions(backend: Backend, api_version: str, kind: str) -> Hashable:
    """A value that changes whenever any object of a kind is created, changed or deleted (and
    only then), read as `list` reads the kind in every namespace (and recorded as its reads
    are): the backend's own `kind_version` where it has one, else the sorted (namespace, name,
    resourceVersion) of a `list`. Compare two of them from the same backend only."""
    own: Callable[[str, str], Hashable] | None = getattr(backend, "kind_version", None)
    if own is not None:
        return own(api_version, kind)
    return _kind_version_by_list(backend, api_version, kind)


def _kind_version_by_list(backend: Backend, api_version: str, kind: str) -> Hashable:
    return tuple(sorted((str((o.get("metadata") or {}).get("namespace") or ""),
                         str((o.get("metadata") or {}).get("name") or ""),
                         str((o.get("metadata") or {}).get("resourceVersion") or ""))
                        for o in backend.list(api_version, kind)))


# --- status writes without copies ----------------------------------------------------------


class StatusWritten(NamedTuple):
    """What a status write (`write_status`) tells its caller, instead of the whole object."""

    resource_version: str
    """The object's `metadata.resourceVersion` after the write: what a `get` right after it
    shows (the live one, unchanged, when the status written was already the object's)."""

    same_apart_from_status: bool
    """Whether the object as written is the one sent but for its status and what the server
    keeps (resourceVersion, managedFields, uid, creationTimestamp): `metadata.generation`,
    `labels` and `annotations` and every top-level field other than apiVersion, kind, metadata
    and status are equal in both. False when someone changed the object after the caller read
    it (a status write carries no precondition, so its version includes that change)."""


def write_status(backend: Backend, obj: Obj) -> StatusWritten:
    """Write `obj["status"]` through the status subresource, as `backend.update_status(obj)`
    does (the same refusals raised, the same status recorded by read tracking), but return
    only the new resourceVersion and whether the object is otherwise the one sent: where the
    backend has its own `write_status` (the simulated cluster), no copy of the object is made;
    else from what `update_status` returns."""
    own: Callable[[Obj], StatusWritten] | None = getattr(backend, "write_status", None)
    if own is not None:
        return own(obj)
    return status_written(obj, backend.update_status(obj))


def status_written(sent: Obj, live: Obj) -> StatusWritten:
    """The `StatusWritten` of a status write that sent `sent` and got back `live`."""
    version = (live.get("metadata") or {}).get("resourceVersion")
    return StatusWritten("" if version is None else str(version),
                         same_apart_from_status(sent, live))


_NOT_BODY = frozenset({"apiVersion", "kind", "metadata", "status"})


def same_apart_from_status(sent: Mapping[str, object], live: Mapping[str, object]) -> bool:
    """`StatusWritten.same_apart_from_status` of `live`, the object as written, against
    `sent`. Reads both in place (either may be a stored object or a read-only view)."""
    a, b = sent.get("metadata"), live.get("metadata")
    # `type(...) is dict` first: an ABC's isinstance costs more than the rest of a call.
    if type(a) is not dict and not isinstance(a, Mapping):
        a = {}
    if type(b) is not dict and not isinstance(b, Mapping):
        b = {}
    if a.get("generation") != b.get("generation") or a.get("labels") != b.get("labels") \
            or a.get("annotations") != b.get("annotations"):
        return False
    fields = 0
    for key, value in sent.items():
        if key not in _NOT_BODY:
            if key not in live or live[key] != value:
                return False
            fields += 1
    for key in live:
        if key not in _NOT_BODY:
            fields -= 1
    return fields == 0


# --- identities and impersonation ----------------------------------------------------------

SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
SERVICE_ACCOUNTS_GROUP = "system:serviceaccounts"
AUTHENTICATED_GROUP = "system:authenticated"


@dataclass(frozen=True)
class Identity:
    """Who the writes done for one owner go as: a user name and its groups, as an API server's
    impersonation headers carry them (`Impersonate-User`, one `Impersonate-Group` each)."""

    user: str
    groups: tuple[str, ...] = ()

    @classmethod
    def service_account(cls, namespace: str, name: str) -> Identity:
        """`system:serviceaccount:NS:NAME` with the groups kube-apiserver gives a
        ServiceAccount: `system:serviceaccounts`, `system:serviceaccounts:NS`,
        `system:authenticated`."""
        return cls(f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}",
                   (SERVICE_ACCOUNTS_GROUP, f"{SERVICE_ACCOUNTS_GROUP}:{namespace}",
                    AUTHENTICATED_GROUP))

    @property
    def service_account_ref(self) -> tuple[str, str] | None:
        """(namespace, name) when this is a ServiceAccount, else None."""
        if not self.user.startswith(SERVICE_ACCOUNT_PREFIX):
            return None
        namespace, _, name = self.user[len(SERVICE_ACCOUNT_PREFIX):].partition(":")
        return (namespace, name) if namespace and name else None

    def __str__(self) -> str:
        ref = self.service_account_ref
        return f"ServiceAccount {ref[0]}/{ref[1]}" if ref else f"user {self.user!r}"


@runtime_checkable
class Impersonating(Protocol):
    """A backend that can act as another identity (an API server with authentication)."""

    def as_user(self, user: str, groups: Sequence[str] = ()) -> Backend:
        """A view of this backend whose writes (apply, update_status, delete) are sent as
        `user` with `groups`; its reads are this backend's (see `impersonated`)."""
        ...


def impersonating_backend(backend: Backend) -> Impersonating | None:
    """The first backend, from `backend` through the `inner` of the wrappers that forward to
    another (read tracking, locking), that can impersonate; None when none can."""
    seen: set[int] = set()
    current: object | None = backend
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        # Not isinstance against the runtime protocol: that inspects every member on every
        # call, and this runs once per owner reconcile.
        if callable(getattr(current, "as_user", None)):
            return cast(Impersonating, current)
        current = getattr(current, "inner", None)
    return None


def impersonated(backend: Backend, identity: Identity | None) -> Backend:
    """The backend to write through for an owner that acts as `identity` (None: the
    controller's own identity, `backend` itself).

    Writes (apply, update_status, delete) go through the impersonating backend's view, so the
    API server authorizes them as the tenant, and a refusal comes back as its 403 naming the
    user, verb and resource. Reads, kind lookups and events go through `backend` unchanged:
    from the controller's shared informer caches, recorded by read tracking (so a change of a
    stamped object still triggers its owner). A backend with no authentication (the simulated
    cluster) returns `backend`: nothing can be enforced there.
    """
    if identity is None:
        return backend
    found = impersonating_backend(backend)
    if found is None:
        return backend
    return WritesAs(backend, found.as_user(identity.user, identity.groups), identity)


class Forwarding:
    """A `Backend` that passes every call on to `inner`, unchanged. The wrappers that forward
    to another backend (a tenant's writes, read tracking, an impersonating view, the leader
    gate) subclass it and override only the calls they change; `inner` is also what
    `impersonating_backend` follows."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner

    def kind_info(self, api_version: str, kind: str) -> KindInfo:
        return self.inner.kind_info(api_version, kind)

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        return self.inner.get(api_version, kind, namespace, name)

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> list[Obj]:
        return self.inner.list(api_version, kind, namespace, labels)

    def apply(self, obj: Obj, field_manager: str = FIELD_MANAGER, force: bool = False) -> Obj:
        return self.inner.apply(obj, field_manager, force)

    def update_status(self, obj: Obj) -> Obj:
        return self.inner.update_status(obj)

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        self.inner.delete(api_version, kind, namespace, name)

    def emit_event(
        self, involved: Obj, type_: str, reason: str, message: str, source: str = FIELD_MANAGER
    ) -> None:
        self.inner.emit_event(involved, type_, reason, message, source)

    def events(self) -> Sequence[Obj]:
        return self.inner.events()

    # A wrapper that changes reads (overrides `get` or `list`: faults, filters, recording) is
    # read through that override, never around it.

    def resource_versions(self, refs: Sequence[Ref]) -> tuple[str | None, ...]:
        if type(self).get is not Forwarding.get:
            return _versions_by_get(self, refs)
        return resource_versions(self.inner, refs)

    def kind_version(self, api_version: str, kind: str) -> Hashable:
        if type(self).list is not Forwarding.list:
            return _kind_version_by_list(self, api_version, kind)
        return kind_versions(self.inner, api_version, kind)

    # Likewise a wrapper that changes status writes (overrides `update_status`: an identity,
    # a gate) is written through that override unless it overrides this too.

    def write_status(self, obj: Obj) -> StatusWritten:
        if type(self).update_status is not Forwarding.update_status:
            return status_written(obj, self.update_status(obj))
        return write_status(self.inner, obj)


class WritesAs(Forwarding):
    """A `Backend` that reads through `reader` and writes through `writer` (an impersonating
    view); `identity` names who the writes go as."""

    def __init__(self, reader: Backend, writer: Backend, identity: Identity) -> None:
        super().__init__(reader)
        self.writer = writer
        self.identity = identity

    def apply(self, obj: Obj, field_manager: str = FIELD_MANAGER, force: bool = False) -> Obj:
        return self.writer.apply(obj, field_manager, force)

    def update_status(self, obj: Obj) -> Obj:
        return self.writer.update_status(obj)

    def write_status(self, obj: Obj) -> StatusWritten:
        return write_status(self.writer, obj)

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        self.writer.delete(api_version, kind, namespace, name)
