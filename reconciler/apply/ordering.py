"""The order objects are applied in: sync waves, then kinds an API server needs first.

Objects are grouped by the integer annotation `reconciler.dev/sync-wave` (default 0, lowest
first); a wave is applied only once every object of the previous wave is healthy. Within a wave,
Namespaces come first, then CustomResourceDefinitions, then `*Class` kinds (StorageClass,
IngressClass, ...), then the rest in `KIND_ORDER` (Helm's and Flux's install order), then kinds
not listed by name; ties by namespace and name, so the order is stable. Deletion runs in reverse.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from reconciler.model.errors import InputError
from reconciler.model.objects import Obj, describe, meta, name_of, namespace_of

SYNC_WAVE = "reconciler.dev/sync-wave"

KIND_ORDER = (
    "ResourceQuota", "LimitRange", "PodSecurityPolicy", "PodDisruptionBudget", "ServiceAccount",
    "Secret", "SecretList", "ConfigMap", "PersistentVolume", "PersistentVolumeClaim", "ClusterRole",
    "ClusterRoleList", "ClusterRoleBinding", "ClusterRoleBindingList", "Role", "RoleList",
    "RoleBinding", "RoleBindingList", "Service", "DaemonSet", "Pod", "ReplicationController",
    "ReplicaSet", "Deployment", "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob",
    "Ingress", "APIService", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
)
_RANK = {kind: i for i, kind in enumerate(KIND_ORDER)}


class SyncWaveError(InputError):
    """A sync-wave annotation that is not an integer."""


def kind_rank(kind: str) -> tuple[int, int, str]:
    if kind == "Namespace":
        return (0, 0, "")
    if kind == "CustomResourceDefinition":
        return (1, 0, "")
    if kind.endswith("Class"):
        return (2, 0, kind)
    if kind in _RANK:
        return (3, _RANK[kind], "")
    return (4, 0, kind)


def sort_key(obj: Mapping[str, Any]) -> tuple[Any, ...]:
    return (kind_rank(str(obj.get("kind", ""))), namespace_of(obj), name_of(obj))


def wave_of(obj: Mapping[str, Any]) -> int:
    raw = (meta(obj).get("annotations") or {}).get(SYNC_WAVE)
    if raw is None:
        return 0
    try:
        return int(str(raw).strip())
    except ValueError:
        raise SyncWaveError(f"{describe(obj)}: metadata.annotations[{SYNC_WAVE!r}]: {raw!r} is "
                            "not an integer (use e.g. \"-1\", \"0\", \"5\")") from None


def apply_order(objects: Iterable[Obj]) -> list[list[Obj]]:
    """Objects grouped into waves (lowest first), each wave in kind order."""
    waves: dict[int, list[Obj]] = {}
    for obj in objects:
        waves.setdefault(wave_of(obj), []).append(obj)
    return [sorted(waves[w], key=sort_key) for w in sorted(waves)]


def delete_order(objects: Iterable[Obj]) -> list[Obj]:
    """The reverse of the apply order: dependents before what they depend on."""
    flat = [o for wave in apply_order(objects) for o in wave]
    return list(reversed(flat))
