"""The built-in deployer: Flux's `kustomize.toolkit.fluxcd.io/v1` `Kustomization`.

A reconcile is an ordered list of steps with one signature (`engine/reconcile.Step`): each
records what it learned in the `KsRun`, sets its own conditions (Healthy, Drifted, or Ready's
reason when it stops) and returns DONE, a requeue or STOP. Status, conditions and events are
written once, in `_finish`, from a `finally`, through the one summarizer (`reconcile.summarize`).

    check_dependencies → fetch (artifact from the GitRepository's store) → build (folder,
    kustomization.yaml, postBuild, targetNamespace, owner labels) → apply (waves, drift,
    conflicts) → prune (only after a complete apply) → assess health (wait / healthChecks)

Status follows Flux: `lastAttemptedRevision`, `lastAppliedRevision`, `inventory.entries`, and
Flux's conditions (`CONDITIONS`): Ready with Flux's reasons, Reconciling while in progress or
retrying, Stalled for a stalling error, `Healthy`; `Drifted` says more.

Only a run whose every step said DONE is a success. A step that raised (an error of the product, a
crash, the reconcile's deadline) is a failure of its class: Ready=False with its reason and
message, Reconciling=True `ProgressingWithRetry`, `lastAppliedRevision` and `lastAppliedDigest`
stay at the last good revision, the inventory keeps every object (including those applied before
the failure), nothing more is pruned, and the exception goes on to the runner, which retries with
backoff. The requeue of a success, or of a stop retrying cannot fix (`BuildFailed`), is a
`Resync`; waits and retries are work in flight.

Multi-tenancy as Flux has it: with `spec.serviceAccountName` (else the controller's
`--default-service-account`, `KubernetesSettings.default_service_account`), the applies and
prune deletes go as `system:serviceaccount:<namespace>:<name>` (`backends.base.impersonated`);
without either, as the controller itself. A refusal (403) is Ready=False
`ReconciliationFailed` with the API server's message.
"""

from __future__ import annotations

import base64
import hashlib
import json
import tarfile
import tempfile
from collections.abc import Sequence
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
from reconciler.backends.base import (
    Backend,
    Identity,
    impersonated,
    impersonating_backend,
    write_status,
)
from reconciler.diff.changeset import ChangeAction
from reconciler.diff.ignore import IgnoreRule, IgnoreRuleError, parse_rules
from reconciler.model.annotations import REQUESTED_AT_ANNOTATION
from reconciler.model.conditions import FALSE, TRUE, UNKNOWN, Condition, find_condition
from reconciler.model.errors import BackendError, InputError
from reconciler.model.limits import DEFAULT_LIMITS, Limits, check_deadline
from reconciler.model.objects import Obj, meta, name_of, namespace_of, spec_of, status_of
from reconciler.runtime.clock import Clock, rfc3339
from reconciler.runtime.controller import Resync
from reconciler.runtime.reconcile import (
    DONE,
    PROGRESSING_WITH_RETRY,
    READY,
    RECONCILING,
    STOP,
    Conditions,
    Ending,
    FluxConditions,
    Result,
    Step,
    keep_last_good,
    reconcile,
    render,
    requeue,
    summarize,
)
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
HEALTHY = "Healthy"
DRIFTED = "Drifted"
CONDITIONS = FluxConditions(negative=(), positive=(HEALTHY,), success_reason=SUCCEEDED)
"""Flux's Kustomization conditions: Ready, Reconciling, Stalled, Healthy (and our Drifted)."""
LAST_GOOD = ("lastAppliedRevision", "lastAppliedDigest")
"""Status fields only a successful reconcile changes."""
UNSUPPORTED = ("patches", "images", "components", "commonMetadata", "namePrefix", "nameSuffix",
               "decryption", "kubeConfig")


@dataclass
class KsRun:
    owner: Obj
    conditions: Conditions = field(default_factory=Conditions)
    revision: str = ""
    desired: list[Obj] = field(default_factory=list)
    digest: str = ""
    applied: SetResult | None = None
    pruned: PruneResult | None = None
    health: HealthStatus | None = None
    workdir: Path | None = None
    partial: list[Obj] = field(default_factory=list)
    """Objects applied by an apply that did not return (cut short by an error or the deadline)."""
    after: float | None = None
    """When to run again, decided by `_finish` from how the reconcile ended."""
    writer: Backend | None = None
    """The backend applies and prunes go through: the Kustomization's ServiceAccount, if any."""

    @classmethod
    def of(cls, owner: Obj) -> KsRun:
        # Conditions a step of this run does not assess (it stopped earlier) keep their value.
        previous = status_of(owner).get("conditions")
        return cls(owner, Conditions.of(previous, (HEALTHY, DRIFTED)))


def kustomization_identity(owner: Obj, default_service_account: str | None) -> Identity | None:
    """Who a Kustomization's applies and prunes go as, Flux's rule: its
    `spec.serviceAccountName`, else the controller's default ServiceAccount, either in the
    Kustomization's namespace; else None (the controller's own identity)."""
    own = spec_of(owner).get("serviceAccountName")
    name = own if isinstance(own, str) and own else default_service_account
    return Identity.service_account(namespace_of(owner), name) if name else None


class KustomizationReconciler:
    name = "kustomize-controller"

    def __init__(self, backend: Backend, clock: Clock, store: ArtifactStore,
                 limits: Limits = DEFAULT_LIMITS,
                 default_service_account: str | None = None) -> None:
        self.backend = backend
        self.clock = clock
        self.store = store
        self.limits = limits
        # Flux's --default-service-account: given, or the Kubernetes backend's setting.
        found = getattr(impersonating_backend(backend), "default_service_account", None)
        self.default_service_account = default_service_account or (
            found if isinstance(found, str) and found else None)
        self.steps: Sequence[Step[KsRun]] = (self.check_dependencies, self.fetch, self.build,
                                      self.apply, self.prune, self.assess_health)

    def watches(self) -> Sequence[tuple[str, str]]:
        return [(KUSTOMIZE_API, "Kustomization")]

    def reconcile(self, obj: Obj) -> float | None:
        if spec_of(obj).get("suspend"):
            return None
        run = KsRun.of(obj)
        where = f"reconciling Kustomization {namespace_of(obj)}/{name_of(obj)}"
        structlog.contextvars.bind_contextvars(kustomization=f"{namespace_of(obj)}/{name_of(obj)}")
        try:
            with tempfile.TemporaryDirectory(prefix="kustomization-") as scratch:
                run.workdir = Path(scratch)
                reconcile(run, self.steps, self._finish, lambda: check_deadline(where))
        finally:
            structlog.contextvars.unbind_contextvars("kustomization")
        return run.after

    # --- steps ---------------------------------------------------------------------------

    def check_dependencies(self, run: KsRun) -> Result:
        unsupported = [f for f in UNSUPPORTED if f in spec_of(run.owner)]
        if unsupported:
            return self._stop(run, BUILD_FAILED, f"spec.{', spec.'.join(unsupported)}: not "
                              "supported by the built-in deployer; render the manifests before "
                              "committing them")
        for dep in spec_of(run.owner).get("dependsOn") or []:
            ns = str(dep.get("namespace") or namespace_of(run.owner))
            other = self.backend.get(KUSTOMIZE_API, "Kustomization", ns, str(dep.get("name")))
            ready = find_condition(status_of(other or {}).get("conditions"), READY)
            if other is None or ready is None or ready.get("status") != TRUE:
                return self._stop(run, DEPENDENCY_NOT_READY,
                                  f"dependency '{ns}/{dep.get('name')}' is not ready", retry=True)
        return DONE

    def fetch(self, run: KsRun) -> Result:
        ref = spec_of(run.owner).get("sourceRef") or {}
        kind, name = str(ref.get("kind", "")), str(ref.get("name", ""))
        ns = str(ref.get("namespace") or namespace_of(run.owner))
        if kind != "GitRepository":
            return self._stop(run, ARTIFACT_FAILED, f"spec.sourceRef.kind {kind!r} is not "
                              "supported (only GitRepository)")
        source = self.backend.get(SOURCE_API, kind, ns, name)
        if source is None:
            return self._stop(run, ARTIFACT_FAILED, f"Source '{kind}/{ns}/{name}' not found",
                              retry=True)
        artifact = status_of(source).get("artifact") or {}
        if not artifact.get("path"):
            return self._stop(run, ARTIFACT_FAILED, f"Source '{kind}/{ns}/{name}' is not ready, "
                              "artifact not found", retry=True)
        assert run.workdir is not None
        try:
            archive = self.store.open(str(artifact["path"]))
            unpack_artifact(archive, run.workdir / "src", limits=self.limits)
        except (ArtifactError, tarfile.TarError, OSError) as exc:
            return self._stop(run, ARTIFACT_FAILED, f"cannot read artifact of "
                              f"'{kind}/{ns}/{name}': {exc}", retry=True)
        run.revision = str(artifact.get("revision") or "")
        return DONE

    def build(self, run: KsRun) -> Result:
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
            return self._stop(run, BUILD_FAILED, str(exc))
        run.digest = "sha256:" + hashlib.sha256(
            json.dumps(run.desired, sort_keys=True).encode()).hexdigest()
        return DONE

    def apply(self, run: KsRun) -> Result:
        spec, status = spec_of(run.owner), status_of(run.owner)
        try:
            ignore = self._ignore_rules(run.owner)
        except IgnoreRuleError as exc:
            return self._stop(run, BUILD_FAILED, str(exc))
        options = ApplyOptions(
            field_manager=FIELD_MANAGER,
            force=bool(spec.get("force")),
            self_heal=OwnerPolicy.of(run.owner).self_heal,
            same_source=status.get("lastAppliedDigest") == run.digest,
            ignore=ignore,
            previous=Inventory.from_status(status),
        )
        run.writer = self.writer_for(run.owner)
        writer = _CheckedWrites(run.writer, run.partial)
        run.applied = apply_set(cast(Backend, writer), run.desired, options)
        drifted = run.applied.drifted
        if drifted:
            names = ", ".join(o.change.title for o in drifted)
            healed = all(o.applied for o in drifted)
            verb = "corrected" if healed else "detected (self-heal disabled)"
            run.conditions.set(Condition(DRIFTED, TRUE, "DriftCorrected" if healed
                                         else "DriftDetected", f"drift {verb}: {names}"))
        else:
            run.conditions.set(Condition(DRIFTED, FALSE, "NoDrift", "live objects match"))
        if run.applied.errors:
            return self._stop(run, FAILED, "; ".join(run.applied.errors), retry=True)
        if not run.applied.complete:
            waiting = f"waiting for the next sync wave: {run.applied.waiting}"
            run.conditions.set(Condition(READY, UNKNOWN, PROGRESSING, waiting))
            run.conditions.set(Condition(RECONCILING, TRUE, PROGRESSING, waiting))
            return requeue(5.0)
        return DONE

    def prune(self, run: KsRun) -> Result:
        assert run.applied is not None
        if not spec_of(run.owner).get("prune"):
            return DONE
        labels = self._owner_labels(run.owner)
        run.pruned = prune(run.writer or self.writer_for(run.owner),
                           Inventory.from_status(status_of(run.owner)),
                           Inventory.of_objects(run.desired), labels, applied_all=True,
                           allow_empty=OwnerPolicy.of(run.owner).allow_empty_prune)
        if run.pruned.refused:
            return self._stop(run, PRUNE_FAILED, run.pruned.refused, retry=True)
        if run.pruned.failed:
            failed = "; ".join(f"{ref}: {why}" for ref, why in run.pruned.failed)
            return self._stop(run, PRUNE_FAILED, f"prune failed: {failed}", retry=True)
        return DONE

    def assess_health(self, run: KsRun) -> Result:
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
            run.conditions.set(Condition(HEALTHY, TRUE, "Succeeded", "all health checks passed"))
            return DONE
        timeout = self._duration(run.owner, "timeout", self._duration(run.owner, "interval", 300))
        ready = find_condition(status_of(run.owner).get("conditions"), READY)
        if ready and ready.get("reason") == HEALTH_FAILED:
            # A failed health check stands until retryInterval has passed, as in Flux; only then
            # does a new wait (and a new timeout) begin.
            failed_at = _seconds(str(ready.get("lastTransitionTime") or ""))
            retry = self._duration(run.owner, "retryInterval",
                                   self._duration(run.owner, "interval", 300))
            if self.clock.now() - failed_at < retry:
                return self._unhealthy(run, str(ready.get("message") or ""))
        started = _seconds(str((ready or {}).get("lastTransitionTime") or "")) if (
            ready and ready.get("reason") == PROGRESSING) else self.clock.now()
        if self.clock.now() - started >= timeout:
            return self._unhealthy(run, f"health check failed after {timeout:g}s: "
                                   f"{run.health.message}")
        waiting = f"waiting for health: {run.health.message}"
        run.conditions.set(Condition(HEALTHY, UNKNOWN, PROGRESSING, waiting))
        run.conditions.set(Condition(READY, UNKNOWN, PROGRESSING, waiting))
        run.conditions.set(Condition(RECONCILING, TRUE, PROGRESSING, waiting))
        return requeue(min(5.0, timeout))

    def _unhealthy(self, run: KsRun, message: str) -> Result:
        run.conditions.set(Condition(HEALTHY, FALSE, HEALTH_FAILED, message))
        return self._stop(run, HEALTH_FAILED, message, retry=True)

    # --- the one place status is written --------------------------------------------------

    def _finish(self, run: KsRun, ending: Ending) -> None:
        owner, now = run.owner, rfc3339(self.clock.now())
        previous = status_of(owner)
        generation = int(meta(owner).get("generation", 1))
        status: dict[str, Any] = dict(previous)
        if ending.succeeded or ending.stalled:
            status["observedGeneration"] = generation  # Flux: observed on success or a stall
        if run.revision:
            status["lastAttemptedRevision"] = run.revision
        inventory = Inventory.from_status(previous)
        if run.applied is not None:
            # What exists now is ours even when a later step stops: never forget an object.
            inventory = inventory.union(run.applied.applied)
        elif run.partial:
            # An apply cut short: what it applied before is ours too.
            inventory = inventory.union(Inventory.of_objects(run.partial))
        if run.pruned is not None and not run.pruned.refused:
            inventory = run.pruned.inventory
        if ending.succeeded or run.applied is not None or run.partial:
            status["inventory"] = inventory.to_status()
        status["lastAppliedRevision"] = run.revision
        status["lastAppliedDigest"] = run.digest
        status = keep_last_good(status, previous, ending, LAST_GOOD)
        requested = (meta(owner).get("annotations") or {}).get(REQUESTED_AT_ANNOTATION)
        if isinstance(requested, str) and requested:
            # Flux's handshake: `reconciler reconcile` waits for this to equal what it set.
            status["lastHandledReconcileAt"] = requested
        conditions = summarize(run.conditions, ending, CONDITIONS,
                               f"Applied revision: {run.revision}")
        status["conditions"] = render(previous.get("conditions"), conditions, CONDITIONS, ending,
                                      now, generation)
        if status != previous:
            write_status(self.backend, {**owner, "status": status})
        ready = conditions[0]
        if ending.failure is not None:
            log.warning("kustomization reconcile failed", reason=ready.reason,
                        message=ready.message)
        self._events(run, ready)
        retry_in = self._duration(owner, "retryInterval", self._duration(owner, "interval", 300))
        if ending.succeeded:
            run.after = Resync(self._duration(owner, "interval", 300))
        elif ending.result is not None and ending.result.after is not None:
            run.after = ending.result.after
        else:
            # A stop retrying cannot fix until the input changes is not work in flight; a raised
            # error is retried by the runner.
            run.after = Resync(retry_in)

    def _events(self, run: KsRun, ready: Condition) -> None:
        owner = run.owner
        drifted = run.applied.drifted if run.applied is not None else []
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
        if ready.status == FALSE:
            self.backend.emit_event(owner, "Warning", ready.reason, ready.message,
                                    source=self.name)

    # --- helpers -------------------------------------------------------------------------

    def writer_for(self, owner: Obj) -> Backend:
        """The backend this Kustomization's objects are applied and pruned through
        (`kustomization_identity`)."""
        return impersonated(self.backend, kustomization_identity(owner,
                                                                 self.default_service_account))

    def _stop(self, run: KsRun, reason: str, message: str, retry: bool = False) -> Result:
        """Stop the run with Ready's reason; `retry`: the failure may clear by itself (a source
        not ready yet, a failed apply), so it is work in flight, retried after retryInterval."""
        run.conditions.set(Condition(READY, FALSE, reason, message))
        log.info("kustomization not ready", reason=reason, message=message)
        if not retry:
            return STOP
        run.conditions.set(Condition(RECONCILING, TRUE, PROGRESSING_WITH_RETRY, message))
        return requeue(self._duration(run.owner, "retryInterval",
                                      self._duration(run.owner, "interval", 300)))

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
