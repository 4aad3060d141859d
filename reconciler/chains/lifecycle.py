"""Template lifecycles: `mutable` (one object, updated in place) versus `immutable` and `tekton`
(a new object for every new input, the newest healthy one's outputs are used, and old ones are
garbage-collected by the template's `retentionPolicy`).

For the two immutable lifecycles this module owns: finding an existing object with the same
content (so a reconcile with unchanged inputs creates nothing), naming new objects from
`metadata.generateName`, judging each object's health, choosing the newest healthy object and
pruning what the retention policy no longer keeps.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.backends.base import Backend
from reconciler.chains.health import health_condition
from reconciler.diff.compare import in_sync
from reconciler.model.conditions import FALSE, TRUE, Condition
from reconciler.model.objects import Obj, meta, name_of, namespace_of

MUTABLE = "mutable"
IMMUTABLE = "immutable"
TEKTON = "tekton"
LIFECYCLES = (MUTABLE, IMMUTABLE, TEKTON)
LIFECYCLE_LABEL = "carto.run/template-lifecycle"

# Cartographer's CRD defaults for `retentionPolicy`.
DEFAULT_MAX_SUCCESSFUL = 10
DEFAULT_MAX_FAILED = 10

# Kubernetes' generateName alphabet: no vowels (no accidental words) and no look-alike digits.
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_SUFFIX_LEN = 5


def lifecycle_of(template_spec: Mapping[str, Any]) -> str:
    value = template_spec.get("lifecycle") or MUTABLE
    return str(value)


def is_immutable(lifecycle: str) -> bool:
    return lifecycle in (IMMUTABLE, TEKTON)


def generated_name(prefix: str, seed: str, taken: set[str]) -> str:
    """`prefix` plus five characters from `seed`, as an API server does for generateName.

    The name is derived from a hash instead of chance so simulated runs are reproducible; the
    API server would pick a random suffix, which is equally valid.
    """
    attempt = 0
    while True:
        digest = hashlib.sha256(f"{seed}/{attempt}".encode()).digest()
        suffix = "".join(_NAME_ALPHABET[b % len(_NAME_ALPHABET)] for b in digest[:_SUFFIX_LEN])
        name = f"{prefix}{suffix}"
        if name not in taken:
            return name
        attempt += 1


@dataclass
class ExaminedObject:
    obj: Obj
    health: Condition


@dataclass
class ImmutableResult:
    """The object for this reconcile's inputs, whether it was just created, and all examined."""

    current: Obj
    created: bool
    examined: list[ExaminedObject] = field(default_factory=list)
    removed: list[Obj] = field(default_factory=list)

    @property
    def latest_healthy(self) -> Obj | None:
        healthy = [e.obj for e in self.examined if e.health.status == TRUE]
        return max(healthy, key=_age_key) if healthy else None


def _age_key(obj: Obj) -> tuple[str, int, str]:
    """Newest last: creation time, then resourceVersion (same-second creations), then name."""
    m = meta(obj)
    try:
        version = int(str(m.get("resourceVersion") or 0))
    except ValueError:
        version = 0
    return (str(m.get("creationTimestamp") or ""), version, name_of(obj))


def _uid_of(obj: Obj) -> str:
    return str(meta(obj).get("uid") or "")


@dataclass(frozen=True)
class RetentionPolicy:
    max_successful: int = DEFAULT_MAX_SUCCESSFUL
    max_failed: int = DEFAULT_MAX_FAILED

    @classmethod
    def of(cls, raw: Any) -> RetentionPolicy:
        if not isinstance(raw, Mapping):
            return cls()
        return cls(int(raw.get("maxSuccessfulRuns", DEFAULT_MAX_SUCCESSFUL)),
                   int(raw.get("maxFailedRuns", DEFAULT_MAX_FAILED)))


def to_prune(examined: Sequence[ExaminedObject], policy: RetentionPolicy) -> list[Obj]:
    """Objects beyond the newest `max_successful` healthy and `max_failed` unhealthy ones.

    Objects whose health is still unknown are running: they are never pruned.
    """
    newest_first = sorted(examined, key=lambda e: _age_key(e.obj), reverse=True)
    succeeded = [e.obj for e in newest_first if e.health.status == TRUE]
    failed = [e.obj for e in newest_first if e.health.status == FALSE]
    return succeeded[policy.max_successful:] + failed[policy.max_failed:]


class ImmutableStamper:
    """Ensures an immutable stamped object exists for the desired content, then collects garbage."""

    def __init__(self, backend: Backend, on_removed: Callable[[Obj], None]) -> None:
        self.backend = backend
        self.on_removed = on_removed

    def ensure(
        self,
        desired: Obj,
        owner_labels: Mapping[str, str],
        health_rule: Mapping[str, Any] | None,
        retention: RetentionPolicy,
    ) -> ImmutableResult:
        api_version, kind = str(desired["apiVersion"]), str(desired["kind"])
        namespace = namespace_of(desired)
        existing = self.backend.list(api_version, kind, namespace, dict(owner_labels))
        match = next((obj for obj in sorted(existing, key=_age_key, reverse=True)
                      if _same_content(desired, obj)), None)
        created = False
        if match is None:
            match = self.backend.apply(self._named(desired, existing))
            created = True
            existing.append(match)
        examined = [ExaminedObject(obj, health_condition(health_rule, obj, has_outputs=True))
                    for obj in existing]
        removed = []
        for obj in to_prune(examined, retention):
            if _uid_of(obj) == _uid_of(match):
                continue
            self.backend.delete(api_version, kind, namespace, name_of(obj))
            self.on_removed(obj)
            removed.append(obj)
        gone = {_uid_of(o) for o in removed}
        kept = [e for e in examined if _uid_of(e.obj) not in gone]
        return ImmutableResult(match, created, kept, removed)

    @staticmethod
    def _named(desired: Obj, existing: Sequence[Obj]) -> Obj:
        obj = copy.deepcopy(desired)
        metadata = obj.setdefault("metadata", {})
        prefix = metadata.pop("generateName", None)
        if metadata.get("name") or not prefix:
            return obj
        taken = {name_of(o) for o in existing}
        seed = f"{namespace_of(obj)}/{prefix}/{len(existing)}/{_content_digest(obj)}"
        metadata["name"] = generated_name(str(prefix), seed, taken)
        return obj


def _content_digest(obj: Obj) -> str:
    body = {k: v for k, v in obj.items() if k not in ("metadata", "status")}
    return hashlib.sha256(repr(sorted(body.items())).encode()).hexdigest()


def _same_content(desired: Obj, live: Obj) -> bool:
    """Same declared content, whatever name the object was given."""
    probe = copy.deepcopy(desired)
    metadata = probe.get("metadata") or {}
    metadata.pop("generateName", None)
    if metadata.get("name") and metadata.get("name") != name_of(live):
        return False
    return in_sync(probe, live)
