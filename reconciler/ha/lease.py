"""The Lease a leader election holds, and the store it is read from and written to.

The record mirrors client-go's `LeaderElectionRecord` as `LeaseLock` stores it in a
`coordination.k8s.io/v1` Lease's spec: `holderIdentity`, `leaseDurationSeconds` (whole
seconds), `acquireTime` and `renewTime` (MicroTime: RFC 3339 with microseconds, UTC) and
`leaseTransitions`. Writes use optimistic concurrency: an update carries the resourceVersion
that was read, and a store raises `Conflict` when the Lease has moved on since.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from reconciler.model.objects import Obj, deep_copy

LEASE_API_VERSION = "coordination.k8s.io/v1"
LEASE_KIND = "Lease"


class LeaseStore(Protocol):
    """Where Leases live. Errors are the product's: `Conflict` for a create of a Lease that
    exists (409 AlreadyExists) and for an update whose resourceVersion is stale (409),
    `NotFound` for an update of a Lease that is gone, any other `ReconcilerError` (`Transient`,
    `BackendError`) for a request that failed."""

    def get(self, namespace: str, name: str) -> Obj | None:
        """The Lease, or None if there is none."""
        ...

    def create(self, lease: Obj) -> Obj:
        """Create `lease`; return it as stored (with its resourceVersion)."""
        ...

    def update(self, lease: Obj, resource_version: str) -> Obj:
        """Replace the Lease if its resourceVersion is still `resource_version`; return it as
        stored."""
        ...


def format_micro_time(seconds: float) -> str:
    """MicroTime as the API server writes it: `2026-01-01T00:00:00.000000Z`."""
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: object) -> float | None:
    """Seconds since the epoch of a MicroTime or Time (RFC 3339, any fraction, `Z` or an
    offset); None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def whole_seconds(duration: float) -> int:
    """A lease duration as the Lease stores it (int32 seconds), rounded up so that the
    duration other replicas read is never shorter than the one configured."""
    return max(1, math.ceil(duration - 1e-9))


@dataclass(frozen=True)
class LeaseRecord:
    """The election's fields of a Lease spec; times in seconds since the epoch."""

    holder_identity: str = ""
    lease_duration_seconds: int = 0
    acquire_time: float | None = None
    renew_time: float | None = None
    lease_transitions: int = 0

    @classmethod
    def from_lease(cls, lease: Obj) -> LeaseRecord:
        spec = lease.get("spec")
        spec = spec if isinstance(spec, dict) else {}
        return cls(
            holder_identity=str(spec.get("holderIdentity") or ""),
            lease_duration_seconds=_int(spec.get("leaseDurationSeconds")),
            acquire_time=parse_time(spec.get("acquireTime")),
            renew_time=parse_time(spec.get("renewTime")),
            lease_transitions=_int(spec.get("leaseTransitions")),
        )

    def expired(self, now: float) -> bool:
        """Free to take: nobody holds it, or `renewTime + leaseDurationSeconds < now`."""
        if not self.holder_identity or self.renew_time is None:
            return True
        return self.renew_time + self.lease_duration_seconds < now

    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "holderIdentity": self.holder_identity,
            "leaseDurationSeconds": self.lease_duration_seconds,
            "leaseTransitions": self.lease_transitions,
        }
        if self.acquire_time is not None:
            spec["acquireTime"] = format_micro_time(self.acquire_time)
        if self.renew_time is not None:
            spec["renewTime"] = format_micro_time(self.renew_time)
        return spec


def new_lease(namespace: str, name: str, record: LeaseRecord) -> Obj:
    return {
        "apiVersion": LEASE_API_VERSION,
        "kind": LEASE_KIND,
        "metadata": {"namespace": namespace, "name": name},
        "spec": record.spec(),
    }


def with_record(lease: Obj, record: LeaseRecord) -> Obj:
    """`lease` (as read) with the election's fields replaced; its metadata and any other spec
    field (`strategy`, `preferredHolder`) kept. Server-owned metadata is left for the server."""
    out = deep_copy(lease)
    spec = out.get("spec")
    spec = dict(spec) if isinstance(spec, dict) else {}
    for field in ("holderIdentity", "leaseDurationSeconds", "acquireTime", "renewTime",
                  "leaseTransitions"):
        spec.pop(field, None)
    spec.update(record.spec())
    out["spec"] = spec
    out.setdefault("apiVersion", LEASE_API_VERSION)
    out.setdefault("kind", LEASE_KIND)
    return out


def resource_version(lease: Obj) -> str:
    meta = lease.get("metadata")
    return str((meta or {}).get("resourceVersion") or "") if isinstance(meta, dict) else ""


def _int(value: object) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return 0
