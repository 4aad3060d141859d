"""The built-in deployer: Flux's `kustomize.toolkit.fluxcd.io/v1` `Kustomization`.

A reconcile is an ordered list of steps with one signature; each records what it learned in the
`KsRun` and stops the run (`StepStop`) with its own failure reason. Status, conditions and events
are written once, in `_finish`, from a `finally`.

    check_dependencies → fetch (artifact from the GitRepository's store) → build (folder,
    kustomization.yaml, postBuild, targetNamespace, owner labels) → apply (waves, drift,
    conflicts) → prune (only after a complete apply) → assess health (wait / healthChecks)

Status follows Flux: `lastAttemptedRevision`, `lastAppliedRevision`, `inventory.entries`, and a
`Ready` condition with Flux's reasons; `Healthy` and `Drifted` conditions say more.

Only a run whose every step returned is a success. A step that raised anything but `StepStop`
(an error of the product, a crash, the reconcile's deadline) is recorded as a
`ReconcileFailure`: Ready=False with its reason and message, `lastAppliedRevision` and
`lastAppliedDigest` stay at the last good revision, the inventory keeps every object (including
those applied before the failure), nothing more is pruned, and the exception goes on to the
runner, which retries with backoff. The requeue of a success, or of a failure retrying cannot
fix (`BuildFailed`), is a `Resync`; waits and retries are work in flight.
"""

from __future__ import annotations

import base64
import hashlib
import json
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import structlog

from reconciler.apply.health import Health, HealthStatus, assess, worst
from reconciler.apply.inventory import Inventory, ObjectRef
from reconciler.apply.kustomize import KustomizeError, build, substitute
from reconciler.apply.policy import OwnerPolicy
from reconciler.apply.prune import PruneResult, prune
from reconciler.apply.staged import ApplyOptions, SetResult, apply_set
from reconciler.backends.base import Backend
from reconciler.diff.changeset import ChangeAction
from reconciler.diff.ignore import IgnoreRule, IgnoreRuleError, parse_rules
from reconciler.engine.clock import Clock, rfc3339
from reconciler.engine.controller import ReconcileFailure, Resync
from reconciler.model.conditions import (
    FALSE,
    TRUE,
    UNKNOWN,
    Condition,
    find_condition,
    merge_conditions,
)
from reconciler.model.errors import BackendError, InputError, ReconcilerError
from reconciler.model.limits import DEFAULT_LIMITS, Limits, check_deadline
from reconciler.model.objects import Obj, meta, name_of, namespace_of, spec_of, status_of
from reconciler.sources.artifacts import ArtifactError, ArtifactStore
from reconciler.sources.git import parse_duration
from reconciler.sources.unpack import unpack_artifact

log = structlog.get_logger(__name__)

KUSTOMIZE_API = "kustomize.toolkit.fluxcd.io/v1"
SOURCE_API = "source.toolkit.fluxcd.io/v1"
NAME_LABEL = "kustomize.toolkit.fluxcd.io/name"
NAMESPACE_LABEL = "kustomize.toolkit.fluxcd.io/namespace"
FIELD_MANAGER = "reconciler"

# Flux's condition reasons.
SUCCEEDED = "ReconciliationSucceeded"
FAILED = "ReconciliationFailed"
ARTIFACT_FAILED = "ArtifactFailed"
BUILD_FAILED = "BuildFailed"
HEALTH_FAILED = "HealthCheckFailed"
DEPENDENCY_NOT_READY = "DependencyNotReady"
PROGRESSING = "Progressing"
PRUNE_FAILED = "PruneFailed"
UNSUPPORTED = ("patches", "images", "components", "commonMetadata", "namePrefix", "nameSuffix",
               "decryption", "kubeConfig")


class StepStop(ReconcilerError):
    """A step ended the run; the reason is recorded in the run."""


@dataclass
class KsRun:
    owner: Obj
    revision: str = ""
    desired: list[Obj] = field(default_factory=list)
    digest: str = ""
    applied: SetResult | None = None
    pruned: PruneResult | None = None
    health: HealthStatus | None = None
    failure: Condition | None = None
    requeue: float | None = None
    workdir: Path | None = None
    retry: bool = False
    """The failure may clear by itself (a source not ready yet, a failed apply): work in flight."""
    error: ReconcileFailure | None = None
    """A step raised: the run failed, whatever the steps recorded before."""
    partial: list[Obj] = field(default_factory=list)
    """Objects applied by an apply that did not return (cut short by an error or the deadline)."""


Step = Callable[[KsRun], None]


class KustomizationReconciler:
    name = "kustomize-controller"

    def __init__(self, backend: Backend, clock: Clock, store: ArtifactStore,
                 limits: Limits = DEFAULT_LIMITS) -> None:
        self.backend = backend
        self.clock = clock
        self.store = store
        self.limits = limits
        self.steps: Sequence[Step] = (self.check_dependencies, self.fetch, self.build,
                                      self.apply, self.prune, self.assess_health)

    def watches(self) -> Sequence[tuple[str, str]]:
        return [(KUSTOMIZE_API, "Kustomization")]

    def reconcile(self, obj: Obj) -> float | None:
        if spec_of(obj).get("suspend"):
            return None
        run = KsRun(obj)
        structlog.contextvars.bind_contextvars(kustomization=f"{namespace_of(obj)}/{name_of(obj)}")
        try:
            with tempfile.TemporaryDirectory(prefix="kustomization-") as scratch:
                run.workdir = Path(scratch)
                for step in self.steps:
                    check_deadline(f"reconciling Kustomization {namespace_of(obj)}/"
                                   f"{name_of(obj)}")
                    step(run)
        except StepStop:
            pass
        except Exception as exc:
            run.error = ReconcileFailure.of(exc)
            log.warning("kustomization reconcile failed", reason=run.error.reason,
                        message=run.error.message)
            raise
        finally:
            self._finish(run)
            structlog.contextvars.unbind_contextvars("kustomization")
        return run.requeue

    # --- steps ---------------------------------------------------------------------------

    def check_dependencies(self, run: KsRun) -> None:
        unsupported = [f for f in UNSUPPORTED if f in spec_of(run.owner)]
        if unsupported:
            self._stop(run, BUILD_FAILED, f"spec.{', spec.'.join(unsupported)}: not supported by "
                       "the built-in deployer; render the manifests before committing them")
        for dep in spec_of(run.owner).get("dependsOn") or []:
            ns = str(dep.get("namespace") or namespace_of(run.owner))
            other = self.backend.get(KUSTOMIZE_API, "Kustomization", ns, str(dep.get("name")))
            ready = find_condition(status_of(other or {}).get("conditions"), "Ready")
            if other is None or ready is None or ready.get("status") != TRUE:
                self._stop(run, DEPENDENCY_NOT_READY,
                           f"dependency '{ns}/{dep.get('name')}' is not ready", retry=True)

    def fetch(self, run: KsRun) -> None:
        ref = spec_of(run.owner).get("sourceRef") or {}
        kind, name = str(ref.get("kind", "")), str(ref.get("name", ""))
        ns = str(ref.get("namespace") or namespace_of(run.owner))
        if kind != "GitRepository":
            self._stop(run, ARTIFACT_FAILED, f"spec.sourceRef.kind {kind!r} is not supported "
                       "(only GitRepository)")
        source = self.backend.get(SOURCE_API, kind, ns, name)
        if source is None:
            self._stop(run, ARTIFACT_FAILED, f"Source '{kind}/{ns}/{name}' not found", retry=True)
        artifact = status_of(source or {}).get("artifact") or {}
        if not artifact.get("path"):
            self._stop(run, ARTIFACT_FAILED, f"Source '{kind}/{ns}/{name}' is not ready, "
                       "artifact not found", retry=True)
        assert run.workdir is not None
        try:
            archive = self.store.open(str(artifact["path"]))
            unpack_artifact(archive, run.workdir / "src", limits=self.limits)
        except (ArtifactError, tarfile.TarError, OSError) as exc:
            self._stop(run, ARTIFACT_FAILED, f"cannot read artifact of '{kind}/{ns}/{name}': "
                       f"{exc}", retry=True)
        run.revision = str(artifact.get("revision") or "")

    def build(self, run: KsRun) -> None:
        assert run.workdir is not None
        spec = spec_of(run.owner)
        try:
            objects = build(run.workdir / "src", str(spec.get("path") or "./"))
            variables = self._variables(run.owner)
            if variables is not None:
                objects = substitute(objects, variables)
            desired = []
            for obj in objects:
                check_deadline("stamping the built objects")
                desired.append(self._stamp(run.owner, obj))
            run.desired = desired
        except (InputError, BackendError) as exc:
            self._stop(run, BUILD_FAILED, str(exc))
        run.digest = "sha256:" + hashlib.sha256(
            json.dumps(run.desired, sort_keys=True).encode()).hexdigest()

    def apply(self, run: KsRun) -> None:
        spec, status = spec_of(run.owner), status_of(run.owner)
        try:
            ignore = self._ignore_rules(run.owner)
        except IgnoreRuleError as exc:
            self._stop(run, BUILD_FAILED, str(exc))
        options = ApplyOptions(
            field_manager=FIELD_MANAGER,
            force=bool(spec.get("force")),
            self_heal=OwnerPolicy.of(run.owner).self_heal,
            same_source=status.get("lastAppliedDigest") == run.digest,
            ignore=ignore,
            previous=Inventory.from_status(status),
        )
        writer = _CheckedWrites(self.backend, run.partial)
        run.applied = apply_set(cast(Backend, writer), run.desired, options)
        if run.applied.errors:
            self._stop(run, FAILED, "; ".join(run.applied.errors), retry=True)
        if not run.applied.complete:
            run.failure = Condition("Ready", UNKNOWN, PROGRESSING,
                                    f"waiting for the next sync wave: {run.applied.waiting}")
            run.requeue = 5.0
            raise StepStop()

    def prune(self, run: KsRun) -> None:
        assert run.applied is not None
        if not spec_of(run.owner).get("prune"):
            return
        labels = self._owner_labels(run.owner)
        run.pruned = prune(self.backend, Inventory.from_status(status_of(run.owner)),
                           Inventory.of_objects(run.desired), labels, applied_all=True,
                           allow_empty=OwnerPolicy.of(run.owner).allow_empty_prune)
        if run.pruned.refused:
            self._stop(run, PRUNE_FAILED, run.pruned.refused, retry=True)
        if run.pruned.failed:
            failed = "; ".join(f"{ref}: {why}" for ref, why in run.pruned.failed)
            self._stop(run, PRUNE_FAILED, f"prune failed: {failed}", retry=True)

    def assess_health(self, run: KsRun) -> None:
        spec = spec_of(run.owner)
        refs: list[ObjectRef] = []
        if spec.get("wait"):
            refs = [ObjectRef.of(o) for o in run.desired]
        for check in spec.get("healthChecks") or []:
            api = str(check.get("apiVersion") or "v1")
            group, _, version = api.rpartition("/")
            refs.append(ObjectRef(group, str(check["kind"]),
                                  str(check.get("namespace") or ""), str(check["name"]), version))
        statuses = []
        for ref in refs:
            check_deadline("assessing health")
            try:
                live = self.backend.get(ref.api_version, ref.kind, ref.namespace, ref.name)
            except BackendError:
                live = None
            health = assess(live)
            statuses.append(HealthStatus(health.status, f"{ref}: {health.status}"
                                         + (f" ({health.message})" if health.message else "")))
        run.health = worst(statuses)
        if run.health.status in (Health.HEALTHY, Health.SUSPENDED):
            return
        timeout = self._duration(run.owner, "timeout", self._duration(run.owner, "interval", 300))
        ready = find_condition(status_of(run.owner).get("conditions"), "Ready")
        if ready and ready.get("reason") == HEALTH_FAILED:
            # A failed health check stands until retryInterval has passed, as in Flux; only then
            # does a new wait (and a new timeout) begin.
            failed_at = _seconds(str(ready.get("lastTransitionTime") or ""))
            retry = self._duration(run.owner, "retryInterval",
                                   self._duration(run.owner, "interval", 300))
            if self.clock.now() - failed_at < retry:
                self._stop(run, HEALTH_FAILED, str(ready.get("message") or ""), retry=True)
        started = _seconds(str((ready or {}).get("lastTransitionTime") or "")) if (
            ready and ready.get("reason") == PROGRESSING) else self.clock.now()
        if self.clock.now() - started >= timeout:
            self._stop(run, HEALTH_FAILED, f"health check failed after {timeout:g}s: "
                       f"{run.health.message}", retry=True)
        run.failure = Condition("Ready", UNKNOWN, PROGRESSING,
                                f"waiting for health: {run.health.message}")
        run.requeue = min(5.0, timeout)
        raise StepStop()

    # --- the one place status is written --------------------------------------------------

    def _finish(self, run: KsRun) -> None:
        if run.error is not None:
            # Whatever the steps recorded, a run that raised is a failure of its own class.
            run.failure = run.error.condition("Ready")
            run.retry = True
        owner, now = run.owner, rfc3339(self.clock.now())
        previous = status_of(owner)
        status: dict[str, Any] = {k: v for k, v in previous.items()}
        status["observedGeneration"] = meta(owner).get("generation", 1)
        if run.revision:
            status["lastAttemptedRevision"] = run.revision
        inventory = Inventory.from_status(previous)
        if run.applied is not None:
            # What exists now is ours even when a later step stops: never forget an object.
            inventory = inventory.union(run.applied.applied)
        elif run.partial:
            # An apply cut short: what it applied before is ours too.
            inventory = inventory.union(Inventory.of_objects(run.partial))
        if run.pruned is not None:
            inventory = run.pruned.inventory if not run.pruned.refused else inventory
        conditions: list[Condition] = []
        if run.failure is None:
            status["inventory"] = inventory.to_status()
            status["lastAppliedRevision"] = run.revision
            status["lastAppliedDigest"] = run.digest
            message = f"Applied revision: {run.revision}"
            conditions.append(Condition("Ready", TRUE, SUCCEEDED, message))
            if run.health is not None:
                conditions.append(Condition("Healthy", TRUE, "Succeeded",
                                            "all health checks passed"))
            run.requeue = Resync(self._duration(owner, "interval", 300))
        else:
            if run.applied is not None or run.partial:
                status["inventory"] = inventory.to_status()
            conditions.append(run.failure)
            if run.failure.reason == HEALTH_FAILED:
                conditions.append(Condition("Healthy", FALSE, HEALTH_FAILED,
                                            run.failure.message))
            elif run.failure.reason == PROGRESSING and run.health is not None:
                conditions.append(Condition("Healthy", UNKNOWN, PROGRESSING,
                                            run.failure.message))
        drifted = run.applied.drifted if run.applied is not None else []
        if drifted:
            names = ", ".join(o.change.title for o in drifted)
            healed = all(o.applied for o in drifted)
            verb = "corrected" if healed else "detected (self-heal disabled)"
            conditions.append(Condition("Drifted", TRUE, "DriftCorrected" if healed
                                        else "DriftDetected", f"drift {verb}: {names}"))
        elif run.applied is not None:
            conditions.append(Condition("Drifted", FALSE, "NoDrift", "live objects match"))
        # Conditions this run did not assess (it stopped earlier) keep their last value.
        kept = [c for c in previous.get("conditions") or []
                if c.get("type") not in {new.type for new in conditions}]
        status["conditions"] = kept + merge_conditions(previous.get("conditions"), conditions,
                                                       now, status["observedGeneration"])
        if status != previous:
            self.backend.update_status({**owner, "status": status})
        self._events(run, drifted)
        if run.requeue is None:
            retry_in = self._duration(owner, "retryInterval",
                                      self._duration(owner, "interval", 300))
            # A failure retrying cannot fix until the input changes is not work in flight.
            run.requeue = retry_in if run.retry else Resync(retry_in)

    def _events(self, run: KsRun, drifted: list[Any]) -> None:
        owner = run.owner
        if drifted:
            healed = all(o.applied for o in drifted)
            self.backend.emit_event(
                owner, "Warning", "DriftCorrected" if healed else "DriftDetected",
                ("corrected drift on " if healed else "drift detected (self-heal disabled) on ")
                + ", ".join(o.change.title for o in drifted), source=self.name)
        if run.applied is not None:
            changed = [f"{o.change.title} {o.change.action}" for o in run.applied.outcomes
                       if o.applied and o.change.action is not ChangeAction.UNCHANGED]
            if changed:
                self.backend.emit_event(owner, "Normal", SUCCEEDED, "\n".join(changed),
                                        source=self.name)
        if run.pruned is not None and run.pruned.deleted:
            self.backend.emit_event(owner, "Normal", "Pruned", "\n".join(
                f"{ref} deleted" for ref in run.pruned.deleted), source=self.name)
        if run.failure is not None and run.failure.status == FALSE:
            self.backend.emit_event(owner, "Warning", run.failure.reason, run.failure.message,
                                    source=self.name)

    # --- helpers -------------------------------------------------------------------------

    def _stop(self, run: KsRun, reason: str, message: str, retry: bool = False) -> None:
        run.failure = Condition("Ready", FALSE, reason, message)
        run.retry = retry
        log.info("kustomization not ready", reason=reason, message=message)
        raise StepStop()

    def _duration(self, owner: Obj, key: str, default: float) -> float:
        raw = spec_of(owner).get(key)
        if not raw:
            return default
        try:
            return parse_duration(str(raw))
        except ValueError:
            return default

    def _owner_labels(self, owner: Obj) -> dict[str, str]:
        return {NAME_LABEL: name_of(owner), NAMESPACE_LABEL: namespace_of(owner)}

    def _ignore_rules(self, owner: Obj) -> list[IgnoreRule]:
        return parse_rules(spec_of(owner).get("ignoreDifferences") or [],
                           f"Kustomization/{namespace_of(owner)}/{name_of(owner)}: "
                           "spec.ignoreDifferences")

    def _variables(self, owner: Obj) -> dict[str, str] | None:
        post = spec_of(owner).get("postBuild")
        if not post:
            return None
        variables: dict[str, str] = {}
        for ref in post.get("substituteFrom") or []:
            kind, name = str(ref.get("kind")), str(ref.get("name"))
            found = self.backend.get("v1", kind, namespace_of(owner), name)
            if found is None:
                if ref.get("optional"):
                    continue
                raise KustomizeError(f"spec.postBuild.substituteFrom: {kind} "
                                     f"'{namespace_of(owner)}/{name}' not found (create it or "
                                     "mark it optional)")
            data = dict(found.get("data") or {})
            if kind == "Secret":
                data = {k: base64.b64decode(str(v)).decode() for k, v in data.items()}
            variables.update({str(k): str(v) for k, v in data.items()})
        variables.update({str(k): str(v) for k, v in (post.get("substitute") or {}).items()})
        return variables

    def _stamp(self, owner: Obj, obj: Obj) -> Obj:
        metadata = obj.setdefault("metadata", {})
        target = spec_of(owner).get("targetNamespace")
        try:
            namespaced = self.backend.kind_info(str(obj.get("apiVersion")),
                                                str(obj.get("kind"))).namespaced
        except BackendError:
            namespaced = True  # a kind defined by a CRD in the same set; namespaced by default
        if namespaced:
            if target:
                metadata["namespace"] = target
            elif not metadata.get("namespace"):
                raise KustomizeError(
                    f"{obj.get('kind')}/{metadata.get('name')}: metadata.namespace is not set; "
                    "set it in the manifest, in kustomization.yaml, or spec.targetNamespace")
        else:
            metadata.pop("namespace", None)
        labels = dict(metadata.get("labels") or {})
        labels.update(self._owner_labels(owner))
        metadata["labels"] = labels
        return obj


class _CheckedWrites:
    """The backend an apply writes through: the deadline is checked before each object, and
    what was applied is remembered, so an apply cut short still knows what it created."""

    def __init__(self, backend: Backend, applied: list[Obj]) -> None:
        self._backend = backend
        self._applied = applied

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def apply(self, obj: Obj, field_manager: str = FIELD_MANAGER, force: bool = False) -> Obj:
        check_deadline(f"applying {obj.get('kind')} {name_of(obj)}")
        live = self._backend.apply(obj, field_manager, force)
        self._applied.append(live)
        return live


def _seconds(timestamp: str) -> float:
    try:
        return datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return 0.0
