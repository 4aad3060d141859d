"""Simulated ecosystem controllers: what kpack and Knative would do in a real cluster.

They fill in the status outputs real controllers would, on the virtual clock, so supply chains
that read `status.latestImage` or wait for a `Ready` condition run end to end without them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.backends.base import Backend
from reconciler.model.conditions import Condition, merge_conditions
from reconciler.model.kinds import KindInfo
from reconciler.model.objects import Obj, meta, spec_of, status_of
from reconciler.runtime.clock import Clock, rfc3339

ECOSYSTEM_KINDS: tuple[KindInfo, ...] = (
    KindInfo("kpack.io", ("v1alpha2", "v1alpha1"), "Image", "images", True),
    KindInfo("kpack.io", ("v1alpha2", "v1alpha1"), "Build", "builds", True),
    KindInfo("kpack.io", ("v1alpha2",), "ClusterBuilder", "clusterbuilders", False),
    KindInfo("serving.knative.dev", ("v1",), "Service", "services", True),
    KindInfo("tekton.dev", ("v1", "v1beta1"), "PipelineRun", "pipelineruns", True),
    KindInfo("tekton.dev", ("v1", "v1beta1"), "TaskRun", "taskruns", True),
    KindInfo("tekton.dev", ("v1", "v1beta1"), "Pipeline", "pipelines", True),
    KindInfo("tekton.dev", ("v1", "v1beta1"), "Task", "tasks", True),
)


@dataclass
class Timing:
    """Virtual seconds each simulated controller takes, so waiting is exercised."""

    image_build: float = 30.0
    knative_rollout: float = 5.0


def _generation(obj: Obj) -> int:
    return int(meta(obj).get("generation", 1))


class ImageBuilder:
    """kpack `Image`: builds `<spec.tag>@sha256:<digest of the source blob url>`."""

    name = "simulated-kpack"

    def __init__(self, backend: Backend, clock: Clock, timing: Timing) -> None:
        self.backend, self.clock, self.timing = backend, clock, timing
        self._started: dict[tuple[str, str, str], float] = {}

    def watches(self) -> Sequence[tuple[str, str]]:
        return [("kpack.io/v1alpha2", "Image")]

    def reconcile(self, obj: Obj) -> float | None:
        spec, status = spec_of(obj), status_of(obj)
        source = spec.get("source") or {}
        url = str((source.get("blob") or {}).get("url") or (source.get("git") or {}).get("url")
                  or "")
        tag = str(spec.get("tag") or "")
        if not url or not tag:
            return self._write(obj, Condition("Ready", "False", "InvalidSpec",
                                              "spec.tag and spec.source are required"), None)
        key = ((*namespace_name(obj), url))
        if status.get("observedGeneration") == _generation(obj) and _ready(status):
            return None
        started = self._started.setdefault(key, self.clock.now())
        remaining = started + self.timing.image_build - self.clock.now()
        if remaining > 0:
            self._write(obj, Condition("Ready", "Unknown", "Building",
                                       f"building image from {url}"), None)
            return remaining
        digest = hashlib.sha256(url.encode()).hexdigest()
        self._write(obj, Condition("Ready", "True", "", ""), f"{tag}@sha256:{digest}")
        return None

    def _write(self, obj: Obj, ready: Condition, latest: str | None) -> float | None:
        status = dict(status_of(obj))
        status["observedGeneration"] = _generation(obj)
        status["conditions"] = merge_conditions(status.get("conditions"), [ready],
                                                rfc3339(self.clock.now()))
        if latest is not None:
            status["latestImage"] = latest
            status["buildCounter"] = int(status.get("buildCounter", 0)) + (
                1 if status_of(obj).get("latestImage") != latest else 0)
        if status != status_of(obj):
            self.backend.update_status({**obj, "status": status})
        return None


class KnativeServing:
    """Knative `serving.knative.dev/v1` `Service`: rolls out each generation, reports a URL."""

    name = "simulated-knative"

    def __init__(self, backend: Backend, clock: Clock, timing: Timing) -> None:
        self.backend, self.clock, self.timing = backend, clock, timing
        self._started: dict[tuple[str, str, int], float] = {}

    def watches(self) -> Sequence[tuple[str, str]]:
        return [("serving.knative.dev/v1", "Service")]

    def reconcile(self, obj: Obj) -> float | None:
        status = status_of(obj)
        generation = _generation(obj)
        if status.get("observedGeneration") == generation and _ready(status):
            return None
        ns, name = namespace_name(obj)
        started = self._started.setdefault((ns, name, generation), self.clock.now())
        remaining = started + self.timing.knative_rollout - self.clock.now()
        new = dict(status)
        new["observedGeneration"] = generation
        if remaining > 0:
            ready = Condition(
                "Ready", "Unknown", "RevisionMissing",
                f"Configuration \"{name}\" is waiting for a Revision to become ready.")
        else:
            ready = Condition("Ready", "True", "", "")
            revision = f"{name}-{generation:05d}"
            new["url"] = f"http://{name}.{ns}.example.com"
            new["address"] = {"url": f"http://{name}.{ns}.svc.cluster.local"}
            new["latestCreatedRevisionName"] = revision
            new["latestReadyRevisionName"] = revision
            new["traffic"] = [{"revisionName": revision, "latestRevision": True, "percent": 100}]
        conds = [Condition(t, ready.status, ready.reason, ready.message)
                 for t in ("ConfigurationsReady", "RoutesReady")] + [ready]
        new["conditions"] = merge_conditions(status.get("conditions"), conds,
                                             rfc3339(self.clock.now()))
        if new != status:
            self.backend.update_status({**obj, "status": new})
        return remaining if remaining > 0 else None


def namespace_name(obj: Obj) -> tuple[str, str]:
    m = meta(obj)
    return (str(m.get("namespace") or ""), str(m.get("name") or ""))


def _ready(status: Obj) -> bool:
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False
