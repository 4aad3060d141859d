"""What the simulated built-in controllers share: their timing, the simulation annotations, when a
simulated process started, and Kubernetes-style generated names.

Annotations under `simulator.reconciler.dev/` (the prefix the simulated Tekton uses too) steer
the simulation of one object:

- `simulator.reconciler.dev/outcome: Failed`: the rollout, Job or Pod fails (what failing means is
  kind-specific and said in each controller's docstring).
- `simulator.reconciler.dev/duration: "30"`: the virtual seconds the rollout or run takes.
- `simulator.reconciler.dev/manual-status: "true"`: the simulator leaves the object's status
  alone, so a test can write it by hand.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from reconciler.backends.base import Backend
from reconciler.backends.base import write_status as write_status_of
from reconciler.model.conditions import Condition
from reconciler.model.objects import Obj, meta, status_of
from reconciler.runtime.clock import Clock

ANNOTATION_PREFIX: Final = "simulator.reconciler.dev/"
OUTCOME_ANNOTATION: Final = ANNOTATION_PREFIX + "outcome"
DURATION_ANNOTATION: Final = ANNOTATION_PREFIX + "duration"
MANUAL_STATUS_ANNOTATION: Final = ANNOTATION_PREFIX + "manual-status"

# The alphabet Kubernetes uses for generated name suffixes (no vowels, no look-alikes), so
# simulated ReplicaSet, revision and Pod names look like real ones.
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


@dataclass
class KubeTiming:
    """Virtual seconds the simulated built-in controllers take, so waiting is exercised."""

    rollout: float = 5.0  # one generation of a Deployment, StatefulSet, DaemonSet, ReplicaSet
    pod_start: float = 2.0  # a Pod from Pending to Running
    run: float = 10.0  # a Job, or a Pod that runs to completion (restartPolicy Never/OnFailure)
    load_balancer: float = 3.0  # a LoadBalancer Service until its ingress IP is assigned
    volume_binding: float = 1.0  # a PersistentVolumeClaim until it is Bound
    nodes: int = 3  # the simulated cluster's nodes: a DaemonSet runs one Pod on each


def field_of(obj: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """A map-valued field of `obj` (`metadata`, `spec`, `status`), or an empty map. Reads a dict
    or a read-only view of one (the simulated cluster's `view`/`views`) alike."""
    found = obj.get(name)
    # dict first: the abstract Mapping check costs more, and nearly every one is a dict.
    return found if isinstance(found, (dict, Mapping)) else {}


def annotations_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    found = field_of(obj, "metadata").get("annotations")
    return found if isinstance(found, (dict, Mapping)) else {}


def namespace_name(obj: Mapping[str, Any]) -> tuple[str, str]:
    m = field_of(obj, "metadata")
    return (str(m.get("namespace") or ""), str(m.get("name") or ""))


def condition_of(obj: Mapping[str, Any], type_: str) -> Mapping[str, Any]:
    """The status condition of type `type_`, or an empty mapping."""
    return condition_in(field_of(obj, "status"), type_)


def condition_in(status: Mapping[str, Any], type_: str) -> Mapping[str, Any]:
    """The condition of type `type_` in `status` (an object's status), or an empty mapping."""
    for cond in status.get("conditions") or []:
        if isinstance(cond, (dict, Mapping)) and cond.get("type") == type_:
            return cond
    return {}


_CONDITION_FIELDS: Final = 5  # type, status, reason, message, lastTransitionTime


def conditions_hold(previous: Any, wanted: Sequence[Condition]) -> bool:
    """Whether `merge_conditions(previous, wanted, now)` (no observedGeneration) gives back a
    list equal to `previous`, whatever `now`: the wanted conditions in their order, each with
    the same status, reason and message, a lastTransitionTime and nothing else. True means
    conditions already written need no rendering again and no write."""
    if not isinstance(previous, (list, Sequence)) or isinstance(previous, str) or (
            len(previous) != len(wanted)):
        return False
    for old, cond in zip(previous, wanted, strict=True):
        if not isinstance(old, (dict, Mapping)) or len(old) != _CONDITION_FIELDS:
            return False
        stamp = old.get("lastTransitionTime")
        if not (old.get("type") == cond.type and old.get("status") == cond.status
                and old.get("reason") == cond.reason and old.get("message") == cond.message
                and type(stamp) is str and stamp):
            return False
    return True


def succeeded(obj: Mapping[str, Any]) -> str | None:
    """The status of the `Succeeded` condition ("True", "False", "Unknown"), or None."""
    status = condition_of(obj, "Succeeded").get("status")
    return str(status) if status is not None else None


_ON: Final = ("1", "true", "on", "yes")
_OFF: Final = ("0", "false", "off", "no")


def env_flag(name: str, default: bool, environ: Mapping[str, str] | None = None) -> bool:
    """An on/off environment variable (1/true/on/yes, 0/false/off/no, any case); anything
    else, or unset, is `default`."""
    value = (os.environ if environ is None else environ).get(name, "").strip().lower()
    if value in _OFF:
        return False
    if value in _ON:
        return True
    return default


def manual_status(obj: Obj) -> bool:
    """True when a test owns the object's status and the simulator must not write it."""
    return str(annotations_of(obj).get(MANUAL_STATUS_ANNOTATION, "")).lower() == "true"


def fails(obj: Obj) -> bool:
    return str(annotations_of(obj).get(OUTCOME_ANNOTATION, "")).lower() == "failed"


def duration(obj: Obj, default: float) -> float:
    """The duration annotation in seconds, else `default` (also for an unreadable value)."""
    given = annotations_of(obj).get(DURATION_ANNOTATION)
    if given is None:
        return default
    try:
        value = float(given)
    except (TypeError, ValueError):
        return default
    return max(0.0, value) if math.isfinite(value) else default


def generation(obj: Mapping[str, Any]) -> int:
    try:
        return int(field_of(obj, "metadata").get("generation", 1))
    except (TypeError, ValueError):
        return 1


_TIME_LENGTH: Final = 40
"""Longer than any timestamp `parse_time` reads (at most 35 characters: `+hh:mm:ss.ffffff`)."""


def parse_time(value: Any) -> float | None:
    """Seconds since the epoch of an RFC 3339 timestamp as the cluster writes them (whole
    seconds, `Z` or a numeric offset), or None."""
    if not isinstance(value, str) or not value or len(value) > _TIME_LENGTH:
        return None
    return _parse_time(value)


# The simulated controllers read creation times on every reconcile, and objects made in the
# same (virtual) second share one: remember the last answers. Keys are at most _TIME_LENGTH
# characters, so the cache stays small whatever the objects say.
@functools.lru_cache(maxsize=4096)
def _parse_time(value: str) -> float | None:
    try:
        parsed = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return None
    return parsed.astimezone(UTC).timestamp()


def name_hash(content: Any, length: int = 10) -> str:
    """A stable suffix from `content`, spelled like Kubernetes' pod-template-hash."""
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).digest()
    number = int.from_bytes(digest, "big")
    out = []
    for _ in range(length):
        number, index = divmod(number, len(_SAFE_ALPHABET))
        out.append(_SAFE_ALPHABET[index])
    return "".join(out)


def stable_number(seed: str, modulo: int) -> int:
    """A number in [0, modulo) that depends only on `seed`: simulated IPs and node choices."""
    digest = hashlib.sha256(seed.encode()).digest()
    return int.from_bytes(digest[:8], "big") % max(1, modulo)


def positive_int(value: Any, default: int) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return default


class Stopwatch:
    """When each object's current simulated process (a generation's rollout, a load balancer
    being provisioned) started, keyed by uid and generation.

    Kept in memory, as the simulated kpack and Knative do: after a state file is loaded, a
    process still in flight starts over, which only makes it take longer. Finished processes are
    recognised from the status they wrote, never from here.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._started: dict[tuple[str, int], float] = {}

    def remaining(self, obj: Obj, seconds: float) -> float:
        """Seconds left of a `seconds`-long process for this generation of `obj` (<= 0: done)."""
        key = (str(meta(obj).get("uid") or ""), generation(obj))
        started = self._started.setdefault(key, self.clock.now())
        return started + seconds - self.clock.now()

    def forget(self, obj: Obj) -> None:
        self._started.pop((str(meta(obj).get("uid") or ""), generation(obj)), None)


def set_conditions(previous: Any, wanted: Sequence[Condition], now: str,
                   stamps: tuple[str, ...] = ("lastUpdateTime", "lastTransitionTime"),
                   ) -> list[dict[str, Any]]:
    """`previous` conditions with `wanted` set, in the shape built-in kinds use (`stamps` names
    their timestamps: Deployments have lastUpdateTime, Jobs lastProbeTime).

    A condition's lastTransitionTime moves only when its status changes and its other stamps
    only when status, reason or message change, so writing the same state twice is no change:
    the simulated controllers run every round and must reach a fixed point.
    """
    by_type = {c.type: c for c in wanted}
    old = [c for c in previous or [] if isinstance(c, Mapping)]
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for cond in old:
        kind = str(cond.get("type"))
        if kind in by_type:
            out.append(_condition(by_type[kind], cond, now, stamps))
            seen.add(kind)
        else:
            out.append(dict(cond))
    out += [_condition(c, None, now, stamps) for c in wanted if c.type not in seen]
    return out


def _condition(cond: Condition, old: Mapping[str, Any] | None, now: str,
               stamps: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {"type": cond.type, "status": cond.status}
    same_status = old is not None and old.get("status") == cond.status
    same = same_status and old is not None and (
        old.get("reason") or "", old.get("message") or "") == (cond.reason, cond.message)
    for stamp in stamps:
        keep = same_status if stamp == "lastTransitionTime" else same
        out[stamp] = str(old.get(stamp) or now) if keep and old is not None else now
    if cond.reason:
        out["reason"] = cond.reason
    if cond.message:
        out["message"] = cond.message
    return out


def write_status(backend: Backend, obj: Obj, status: dict[str, Any]) -> None:
    """Write `status` unless it is what the object already has (a write is a cluster change)."""
    if status != status_of(obj):
        write_status_of(backend, {**obj, "status": status})


def without_zeros(counts: Mapping[str, int]) -> dict[str, int]:
    """Counts as the API server serialises them: `omitempty` drops zeros."""
    return {k: v for k, v in counts.items() if v}
