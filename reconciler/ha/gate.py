"""`LeaderGatedBackend`: a `Backend` whose writes happen only while this replica leads.

The daemon reconciles through it when `--leader-elect` is on. Reads pass through (a standby
keeps its informers warm, so it takes over with full caches); `apply`, `update_status` (and
`write_status`), `delete` and `emit_event` first ask `is_leader` (`LeaderElector.is_leader`,
which also ends leadership when renewals stop for the renew deadline) and raise `NotLeader` if
it says no.

This is the last line of defence, not the mechanism: a standby should not start reconciles
at all (the work queue's workers wait for `on_started_leading`). A write that raises
`NotLeader` fails the reconcile as a `Transient` error would; once leadership is lost the
daemon exits (see `reconciler.ha` for why), so that retry never happens here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from reconciler.backends.base import (
    FIELD_MANAGER,
    Backend,
    Forwarding,
    StatusWritten,
    impersonating_backend,
    write_status,
)
from reconciler.model.errors import Transient
from reconciler.model.objects import Obj, describe


class NotLeader(Transient):
    """A write refused because this replica does not hold the leader election Lease."""

    def __init__(self, operation: str) -> None:
        super().__init__("NotLeader", f"not the leader: refusing to {operation}")


class LeaderGatedBackend(Forwarding):
    """`backend` with every write gated on `is_leader()`; everything else (the change feed,
    `close`, `informers`) is the wrapped backend's."""

    def __init__(self, backend: Backend, is_leader: Callable[[], bool]) -> None:
        super().__init__(backend)
        self._is_leader = is_leader

    def _gate(self, operation: str) -> None:
        if not self._is_leader():
            raise NotLeader(operation)

    def apply(self, obj: Obj, field_manager: str = FIELD_MANAGER, force: bool = False) -> Obj:
        self._gate(f"apply {describe(obj)}")
        return self.inner.apply(obj, field_manager, force)

    def update_status(self, obj: Obj) -> Obj:
        self._gate(f"write the status of {describe(obj)}")
        return self.inner.update_status(obj)

    def write_status(self, obj: Obj) -> StatusWritten:
        self._gate(f"write the status of {describe(obj)}")
        return write_status(self.inner, obj)

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        self._gate(f"delete {kind}/{namespace}/{name}" if namespace else f"delete {kind}/{name}")
        self.inner.delete(api_version, kind, namespace, name)

    def emit_event(self, involved: Obj, type_: str, reason: str, message: str,
                   source: str = FIELD_MANAGER) -> None:
        self._gate(f"emit event {reason} for {describe(involved)}")
        self.inner.emit_event(involved, type_, reason, message, source)

    def as_user(self, user: str, groups: Sequence[str] = ()) -> Backend:
        """A tenant's view (`backends.base.impersonated`), gated as well: without this, the
        view of the impersonating backend underneath would write past the gate. A backend
        that cannot impersonate (the simulator) gives this gate itself."""
        found = impersonating_backend(self.inner)
        if found is None:
            return self
        return LeaderGatedBackend(found.as_user(user, groups), self._is_leader)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
