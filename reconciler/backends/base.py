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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, cast, runtime_checkable

from reconciler.model.kinds import KindInfo
from reconciler.model.objects import Obj

FIELD_MANAGER = "reconciler"


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

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        self.writer.delete(api_version, kind, namespace, name)
