"""Reconciling a blueprint owner (Workload, Deliverable) as an ordered list of small steps.

    select_blueprint → check_blueprint → realize → remove_orphans

Steps share one signature (`engine/reconcile.Step`) and set only their own conditions
(<blueprint>Ready; ResourcesSubmitted and ResourcesHealthy); Ready is derived from them by the one
summarizer with Cartographer's rule, and status is written in one place at the end (`_finish`,
run from a `finally`). `_finish` knows how the reconcile ended: a step that raised (an error of
the product, a crash, the deadline) is never a success; the last good `status.resources` (outputs
included) are kept, nothing is pruned, ResourcesSubmitted and Ready are False with the failure's
reason and message, and the exception goes on to the runner.

Multi-tenancy as Cartographer has it: everything `realize` and `remove_orphans` write for an
owner (applies of stamped objects, immutable retention, orphan deletes) goes as the owner's
ServiceAccount (`service_account_for`: the owner's `spec.serviceAccountName`, else the
blueprint's `spec.serviceAccountRef`, else `default` in the owner's namespace), through
`backends.base.impersonated`; the owner's own status and events stay the controller's. An API
server that refuses one (403) gives `ResourcesSubmitted=False TemplateRejectedByAPIServer` with its
message, which names the ServiceAccount, the verb and the resource.

The no-op fast path (issue 14): an owner whose reconcile ended settled (no error, Ready, every
resource mutable) gets a `Settled` record: its uid, the blueprint kind's version
(`backends.base.kind_versions`), and the resourceVersion of each object it read or wrote
(itself after its status write, the templates it looked up, the stamped objects and those
outputs were read from), then its ServiceAccount, its Namespace and the CRDs of the kinds it
stamps where they can be read. Offered again with the same resourceVersion, within
`fast_path_max_age` of the record, with every one of those versions unchanged
(`backends.base.resource_versions`: no copies, recorded as reads like `get`'s, so the runner
offers it again on the same changes), it is not rendered, diffed or applied. The age bound is
what catches what no version here shows: RBAC (Roles, RoleBindings) granted or taken away.

Unchanged resources in a reconcile that runs (issue 14): a resource the realizer found at the
version its outputs and health were derived from (`Realized.reused`) gets the same
`status.resources[]` entry as last time, so where that entry is provably the one on the owner
(`Shown`: the owner is at the resourceVersion its last successful status write left, from the
same blueprint version, and the entry was built from the same derivation), it is kept as it
is, with no entry built and no event to emit (its outputs and health did not change).

"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from reconciler.apply.applier import Action
from reconciler.apply.prune import prune_disabled
from reconciler.backends.base import (
    Backend,
    Identity,
    Ref,
    impersonated,
    kind_versions,
    resource_versions,
    write_status,
)
from reconciler.chains.blueprint import (
    CARTO_API,
    Blueprint,
    BlueprintResource,
    Template,
    TemplateUse,
)
from reconciler.chains.lifecycle import LIFECYCLE_LABEL, MUTABLE
from reconciler.chains.realizer import MAX_RECORDED_OWNERS, OwnerContext, Realized, Realizer
from reconciler.chains.selection import best_matches
from reconciler.chains.status import (
    RESOURCES_HEALTHY,
    RESOURCES_SUBMITTED,
    ready_of,
    resource_status,
    submitted_conditions,
)
from reconciler.engine.blueprints import blueprint_ready, templates_ready_of
from reconciler.model.annotations import REQUESTED_AT_ANNOTATION, SUSPEND_ANNOTATION
from reconciler.model.conditions import FALSE, TRUE, Condition, find_condition
from reconciler.model.errors import ReconcilerError, Transient
from reconciler.model.objects import (
    Obj,
    labels_of,
    meta,
    name_of,
    namespace_of,
    spec_of,
    status_of,
)
from reconciler.model.selectors import Selector, SelectorError
from reconciler.runtime.clock import Clock, rfc3339
from reconciler.runtime.reconcile import (
    DONE,
    STOP,
    CartographerConditions,
    Conditions,
    Ending,
    Result,
    Step,
    keep_last_good,
    reconcile,
    render,
    summarize,
)
from reconciler.settings import OwnerSettings

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class OwnerKind:
    """What differs between the Workload and the Deliverable reconcilers."""

    kind: str  # Workload
    context_key: str  # workload
    blueprint_kind: str  # ClusterSupplyChain
    blueprint_words: str  # supply chain
    blueprint_condition: str  # SupplyChainReady
    blueprint_ref_field: str  # supplyChainRef
    labels_missing_reason: str  # WorkloadLabelsMissing
    not_found_reason: str  # SupplyChainNotFound
    multiple_reason: str  # MultipleSupplyChainMatches
    label_prefix: str  # workload
    blueprint_label: str  # carto.run/supply-chain-name


WORKLOAD = OwnerKind(
    kind="Workload", context_key="workload", blueprint_kind="ClusterSupplyChain",
    blueprint_words="supply chain", blueprint_condition="SupplyChainReady",
    blueprint_ref_field="supplyChainRef", labels_missing_reason="WorkloadLabelsMissing",
    not_found_reason="SupplyChainNotFound", multiple_reason="MultipleSupplyChainMatches",
    label_prefix="workload", blueprint_label="carto.run/supply-chain-name",
)

DELIVERABLE = OwnerKind(
    kind="Deliverable", context_key="deliverable", blueprint_kind="ClusterDelivery",
    blueprint_words="delivery", blueprint_condition="DeliveryReady",
    blueprint_ref_field="deliveryRef", labels_missing_reason="DeliverableLabelsMissing",
    not_found_reason="DeliveryNotFound", multiple_reason="MultipleDeliveryMatches",
    label_prefix="deliverable", blueprint_label="carto.run/delivery-name",
)


DEFAULT_SERVICE_ACCOUNT = "default"
CRD_API = "apiextensions.k8s.io/v1"
CRD_KIND = "CustomResourceDefinition"


def suspended(owner: Obj) -> bool:
    annotations = meta(owner).get("annotations")
    return isinstance(annotations, dict) and str(
        annotations.get(SUSPEND_ANNOTATION, "")).strip().lower() == "true"


def service_account_for(owner: Obj, blueprint: Obj | None) -> tuple[str, str]:
    """(namespace, name) of the ServiceAccount an owner's stamped objects are written as,
    Cartographer's rule: the owner's `spec.serviceAccountName` (in the owner's namespace) wins;
    else the blueprint's `spec.serviceAccountRef` (its `namespace`, or the owner's when it names
    none); else the `default` ServiceAccount of the owner's namespace."""
    namespace = namespace_of(owner)
    own = spec_of(owner).get("serviceAccountName")
    if isinstance(own, str) and own:
        return namespace, own
    ref = spec_of(blueprint or {}).get("serviceAccountRef")
    if isinstance(ref, dict) and isinstance(ref.get("name"), str) and ref["name"]:
        ref_namespace = ref.get("namespace")
        return (ref_namespace if isinstance(ref_namespace, str) and ref_namespace
                else namespace), ref["name"]
    return namespace, DEFAULT_SERVICE_ACCOUNT


def owner_conditions(kind: OwnerKind) -> CartographerConditions:
    """The owner's conditions as Cartographer writes them: <blueprint>Ready, ResourcesSubmitted,
    ResourcesHealthy, Ready; a raised error is reported on ResourcesSubmitted and Ready."""
    return CartographerConditions(
        order=(kind.blueprint_condition, RESOURCES_SUBMITTED, RESOURCES_HEALTHY),
        ready_of=ready_of, failure_types=(RESOURCES_SUBMITTED,))


@dataclass
class Run:
    """The state one reconcile builds up, step by step."""

    owner: Obj
    conditions: Conditions = field(default_factory=Conditions)
    blueprint: Blueprint | None = None
    realized: list[Realized] = field(default_factory=list)
    resources: list[Obj] = field(default_factory=list)
    """`status.resources` as this reconcile realized them."""
    writer: Backend | None = None
    """The backend this owner's stamped objects are written through (its ServiceAccount)."""
    account: tuple[str, str] | None = None
    """(namespace, name) of that ServiceAccount (`service_account_for`)."""
    settled: bool = False
    """The reconcile ended without error, Ready, every resource mutable (the fast path may
    skip the next one if nothing it read changed)."""
    owner_version: str | None = None
    """The owner's resourceVersion once this reconcile wrote (or left) its status."""
    inputs_before: dict[Ref, str | None] = field(default_factory=dict)
    """Versions of the fast path's extra inputs read before rendering (`_inputs_before`)."""
    blueprints_version: Hashable | None = None
    """The blueprint kind's `kind_versions`, read before the blueprints are listed."""
    shown: dict[str, tuple[int, str]] = field(default_factory=dict)
    """Per resource name, the derivation its `status.resources[]` entry was built from and
    the resource of its stamped object (`Shown.entries`)."""
    resources_written: bool = False
    """The reconcile succeeded: the status `_finish` left holds `resources` as built."""


@dataclass(frozen=True, slots=True)
class BlueprintView:
    """One listed blueprint as selection uses it, parsed once per resourceVersion."""

    uid: object
    version: str
    blueprint: Blueprint
    selector: Selector


@dataclass(frozen=True, slots=True)
class BlueprintSnapshot:
    """The blueprints of the owner's blueprint kind as one list read them, with the kind's
    version read before that list: while the version is unchanged, so is the list."""

    version: Hashable
    views: tuple[BlueprintView, ...]


@dataclass(frozen=True, slots=True)
class Shown:
    """What the owner's `status.resources` holds after a successful reconcile: its
    resourceVersion then, the blueprint's (uid, resourceVersion), and per resource name the
    `Realized.derivation` and stamped resource its entry was built from. An entry is a function
    of those (and of the previous entry only through lastTransitionTimes it keeps), so a later
    reconcile with the owner at that version and a resource of the same derivation would build
    that same entry again."""

    owner_version: str
    blueprint: tuple[object, object]
    entries: tuple[tuple[str, int, str], ...]
    """(resource name, derivation, stamped resource) of each entry built from a derivation
    (a tuple: it is kept per owner, and looked up once per reconcile)."""


@dataclass(frozen=True, slots=True)
class Settled:
    """What the fast path compares (see the module docstring): recorded at the end of a
    settled reconcile, from the versions that reconcile itself saw."""

    uid: object
    owner_version: str | None
    """The owner's resourceVersion after that reconcile's status write."""
    blueprints: Hashable
    """`kind_versions` of the blueprint kind, read before the reconcile listed it."""
    refs: tuple[Ref, ...]
    """Every other object read (the owner's own changes are its own resourceVersion's)."""
    versions: tuple[str | None, ...]
    """The resourceVersion of each of `refs` (None: it did not exist)."""
    at: float
    """When it was recorded (the controller's clock)."""


class OwnerController:
    def __init__(self, backend: Backend, clock: Clock, kind: OwnerKind = WORKLOAD,
                 fast_path: bool | None = None, settings: OwnerSettings | None = None) -> None:
        """`fast_path` (when given) overrides `settings.fast_path`."""
        settings = settings or OwnerSettings()
        self.backend = backend
        self.fast_path = settings.fast_path if fast_path is None else fast_path
        self.fast_path_max_age = settings.fast_path_max_age_seconds
        # owner key -> what its last settled reconcile read (`Settled`)
        self._settled: dict[tuple[str, str], Settled] = {}
        # owner key -> what its status.resources held after its last successful reconcile
        # (`Shown`), least recently written first, at most `MAX_RECORDED_OWNERS`
        self._shown: dict[tuple[str, str], Shown] = {}
        self._shown_lock = threading.Lock()
        self.kept_entries = 0  # status.resources[] entries kept as they were (tests)
        # the templates the current reconcile looked up, with the resourceVersion it saw, per
        # thread (the daemon's workers reconcile different owners through one controller)
        self._reads = threading.local()
        # per template: (resourceVersion, the copy read then), shared by reconciles, not changed
        self._template_copies: dict[Ref, tuple[str | None, Obj]] = {}
        # the blueprints as last listed (`_blueprint_views`); replaced whole, so it holds only
        # blueprints that existed at the last list
        self._blueprints: BlueprintSnapshot | None = None
        # (apiVersion, kind) -> when it was refused: not asked again for `fast_path_max_age`
        # (RBAC still settling at start may refuse once what it grants a moment later)
        self._unreadable: dict[tuple[str, ...], float] = {}
        self.clock = clock
        self.kind = kind
        self.name = f"{kind.kind.lower()}-controller"
        self.realizer = Realizer(backend, self._template)
        self.rules = owner_conditions(kind)
        self.steps: Sequence[Step[Run]] = (self.select_blueprint, self.check_blueprint,
                                           self.realize, self.remove_orphans)

    def watches(self) -> Sequence[tuple[str, str]]:
        return [(CARTO_API, self.kind.kind)]

    def forget(self, namespace: str, name: str) -> None:
        """The owner is gone: drop its fast-path record and the realizer's records of its
        resources."""
        self._settled.pop((namespace, name), None)
        with self._shown_lock:
            self._shown.pop((namespace, name), None)
        self.realizer.forget(namespace, name)

    def reconcile(self, obj: Obj) -> float | None:
        m = meta(obj)
        key = (str(m.get("namespace") or ""), str(m.get("name", "")))
        if self.fast_path:
            # Before the suspend check: a record is made only by a reconcile of an owner that
            # was not suspended, and suspending it changes its resourceVersion.
            last = self._settled.get(key)
            if last is not None:
                if (m.get("resourceVersion") == last.owner_version and m.get("uid") == last.uid
                        and self._unchanged(last)):
                    return None
                self._settled.pop(key, None)
        else:
            last = None
        if suspended(obj):
            # Cartographer's owners have no spec.suspend; as Flux does for its own, a suspended
            # owner is left as it is, status and stamped objects alike, until resumed.
            log.debug("reconciliation suspended", owner=f"{namespace_of(obj)}/{name_of(obj)}")
            return None
        blueprints: Hashable | None = None
        run = Run(obj)
        if self.fast_path:
            blueprints = run.blueprints_version = self._blueprints_version()
            crds = [r for r in (last.refs if last is not None else ()) if r[1] == CRD_KIND]
            run.inputs_before = self._inputs_before(
                [("v1", "ServiceAccount", *service_account_for(obj, None)),
                 ("v1", "Namespace", "", namespace_of(obj)), *crds])
        self._reads.templates = {}
        self._reads.found = {}
        self._reads.versions = None
        structlog.contextvars.bind_contextvars(
            owner=f"{namespace_of(obj)}/{name_of(obj)}", kind=self.kind.kind)
        try:
            reconcile(run, self.steps, self._finish_noted)
        finally:
            # a lookup after this reconcile reads afresh
            self._reads.found = self._reads.versions = None
            structlog.contextvars.unbind_contextvars("owner", "kind")
            self._note_shown(key, run)
        if self.fast_path and run.settled and blueprints is not None:
            self._record(key, run, blueprints)
        return None

    # --- entries kept as they are (`Shown`) ------------------------------------------------

    def _finish_noted(self, run: Run, ending: Ending) -> None:
        self._finish(run, ending)
        # Reached only when the status write (if any) went through.
        run.resources_written = ending.succeeded

    def _note_shown(self, key: tuple[str, str], run: Run) -> None:
        blueprint = _blueprint_key(run.blueprint)
        version = run.owner_version
        with self._shown_lock:
            self._shown.pop(key, None)
            if not (run.resources_written and run.shown and blueprint is not None
                    and version is not None):
                return
            self._shown[key] = Shown(str(version), blueprint, tuple(
                (name, derivation, resource)
                for name, (derivation, resource) in run.shown.items()))
            while len(self._shown) > MAX_RECORDED_OWNERS:
                del self._shown[next(iter(self._shown))]

    def shown(self, namespace: str, name: str) -> int:
        """How many of an owner's `status.resources[]` entries are recorded in its `Shown`
        (tests, memory checks)."""
        found = self._shown.get((namespace, name))
        return len(found.entries) if found is not None else 0

    def _shown_now(self, key: tuple[str, str], run: Run) -> Shown | None:
        """The owner's `Shown`, if its status is still the one it describes."""
        shown = self._shown.get(key)
        if shown is None or shown.owner_version != meta(run.owner).get("resourceVersion") or (
                shown.blueprint != _blueprint_key(run.blueprint)):
            return None
        return shown

    # --- the no-op fast path -------------------------------------------------------------

    def _unchanged(self, last: Settled) -> bool:
        """Whether nothing else the last settled reconcile read has changed since (see the
        module docstring). A failure to read is a no: the full reconcile meets and reports it."""
        if not self.clock.now() - last.at < self.fast_path_max_age:
            return False
        try:
            return (kind_versions(self.backend, CARTO_API, self.kind.blueprint_kind)
                    == last.blueprints
                    and resource_versions(self.backend, last.refs) == last.versions)
        except Exception:
            return False

    def _blueprints_version(self) -> Hashable | None:
        """The blueprint kind's version before the reconcile lists it (a change in between
        makes the record older than what was read: the next offer renders again, never the
        reverse); None when it cannot be read (and then no record)."""
        try:
            return kind_versions(self.backend, CARTO_API, self.kind.blueprint_kind)
        except Exception:
            return None

    def _inputs_before(self, refs: Sequence[Ref]) -> dict[Ref, str | None]:
        """The versions, before the reconcile renders, of inputs `_more_inputs` will name: from
        the owner alone its Namespace and its ServiceAccount (unless the blueprint names
        another: then it is read once the blueprint is chosen, in `realize`), and the CRDs
        its last record named. A change during the reconcile then leaves the record older than
        the live object, and the next offer reconciles in full."""
        found: dict[Ref, str | None] = {}
        for ref in refs:
            if self._refused_lately(ref):
                continue
            try:
                found[ref] = resource_versions(self.backend, (ref,))[0]
            except Transient:
                continue  # `_record` reads it again
            except Exception as exc:
                self._refused(ref, exc)
        return found

    def _refused(self, ref: Ref, exc: Exception) -> None:
        """An input `_more_inputs` names was refused (the controller may not read its kind:
        an installation whose RBAC grants no read of ServiceAccounts or Namespaces; the chart's
        does): not tracked, and not asked again until `fast_path_max_age` has passed."""
        log.info("not tracked by the owner's fast path: cannot read it", kind=ref[1],
                 error=str(exc))
        self._unreadable[ref[:2]] = self.clock.now()

    def _refused_lately(self, ref: Ref) -> bool:
        at = self._unreadable.get(ref[:2])
        return at is not None and self.clock.now() - at < self.fast_path_max_age

    def _record(self, key: tuple[str, str], run: Run, blueprints: Hashable) -> None:
        """Record what a settled reconcile read, with the versions it saw, if they are still
        the live ones (else something changed meanwhile, and that change offers the owner
        again)."""
        seen: dict[Ref, str | None] = {}
        templates: dict[Ref, str | None] = self._reads.templates
        for ref, version in templates.items():
            seen.setdefault(ref, version)
        kinds: dict[tuple[str, str], None] = {}
        for realized in run.realized:
            for obj in (realized.stamped, realized.outputs_from):
                if obj is not None:
                    api_version, kind = str(obj.get("apiVersion")), str(obj.get("kind"))
                    seen.setdefault((api_version, kind, namespace_of(obj), name_of(obj)),
                                    meta(obj).get("resourceVersion"))
                    kinds[(api_version, kind)] = None
        refs = tuple(seen)
        try:
            versions = resource_versions(self.backend, refs)
        except Exception:
            return
        if versions != tuple(seen.values()):
            return
        # Where one was read before the reconcile rendered (`_inputs_before`: the Namespace,
        # the ServiceAccount, the CRDs of the last record), that version is the one recorded
        # (a change since makes the record older than the live object: the next offer
        # reconciles in full). The others are read now, after the reconcile: only a CRD of a
        # kind first stamped by this reconcile is, and a change to it between the reconcile's
        # writes and this read is recorded as seen, and caught by the next change of anything
        # else or by the age bound.
        extra_refs: list[Ref] = []
        extra_versions: list[str | None] = []
        for ref in self._more_inputs(run, kinds):
            if ref in run.inputs_before:
                extra_refs.append(ref)
                extra_versions.append(run.inputs_before[ref])
                continue
            if self._refused_lately(ref):
                continue
            try:
                version = resource_versions(self.backend, (ref,))[0]
            except Transient:
                return  # no record: the next reconcile tries again
            except Exception as exc:
                self._refused(ref, exc)
                continue
            extra_refs.append(ref)
            extra_versions.append(version)
        self._settled[key] = Settled(meta(run.owner).get("uid"), run.owner_version, blueprints,
                                     (*refs, *extra_refs), (*versions, *extra_versions),
                                     self.clock.now())

    def _more_inputs(self, run: Run, kinds: dict[tuple[str, str], None]) -> list[Ref]:
        """What decides a reconcile's outcome without being read by it: the ServiceAccount the
        owner's writes go as, its Namespace, and the CustomResourceDefinition of each kind it
        stamps (an API group's kinds have one; the core group's have none)."""
        namespace, name = run.account or service_account_for(
            run.owner, run.blueprint.obj if run.blueprint else None)
        refs: list[Ref] = [("v1", "ServiceAccount", namespace, name),
                           ("v1", "Namespace", "", namespace_of(run.owner))]
        for api_version, kind in kinds:
            group = api_version.rpartition("/")[0]
            if not group:
                continue
            try:
                plural = self.backend.kind_info(api_version, kind).plural
            except Exception:
                continue
            refs.append((CRD_API, CRD_KIND, "", f"{plural}.{group}"))
        return refs

    # --- steps ---------------------------------------------------------------------------

    def select_blueprint(self, run: Run) -> Result:
        k = self.kind
        labels = labels_of(run.owner)
        if not labels:
            return self._not_selected(run, k.labels_missing_reason,
                                      f"{k.kind.lower()} has no labels to match to "
                                      f"{k.blueprint_words}")
        views = self._blueprint_views(run)
        try:
            best = best_matches([v.selector for v in views], run.owner)
        except SelectorError as exc:
            return self._not_selected(run, k.not_found_reason, str(exc))
        if not best:
            shown = "map[" + " ".join(f"{key}:{v}" for key, v in sorted(labels.items())) + "]"
            return self._not_selected(
                run, k.not_found_reason,
                f"no {k.blueprint_words} found where full selector is satisfied by labels: "
                f"{shown}")
        if len(best) > 1:
            log.info("owner matches more than one blueprint",
                     blueprints=[views[i].blueprint.name for i in best])
            return self._not_selected(
                run, k.multiple_reason,
                f"{k.kind.lower()} may only match a single {k.blueprint_words}'s selector")
        run.blueprint = views[best[0]].blueprint
        return DONE

    def _blueprint_views(self, run: Run) -> tuple[BlueprintView, ...]:
        """Every blueprint of the kind, parsed, as `list` would give them: the last list's
        while the kind's version (read first, as a list of the kind is recorded) is the one
        read before that list; else listed again, each blueprint parsed anew unless its uid
        and resourceVersion are those of one parsed before."""
        version = run.blueprints_version
        if version is None:
            version = self._blueprints_version()
        last = self._blueprints
        if version is not None and last is not None and last.version == version:
            return last.views
        kept = {(v.blueprint.name, v.uid, v.version): v for v in last.views} if last else {}
        views: list[BlueprintView] = []
        versioned = version is not None
        for obj in self.backend.list(CARTO_API, self.kind.blueprint_kind):
            m = meta(obj)
            rv = m.get("resourceVersion")
            view = kept.get((name_of(obj), m.get("uid"), str(rv))) if rv is not None else None
            if view is None:
                view = BlueprintView(m.get("uid"), str(rv), Blueprint.of(obj),
                                     Selector.of_blueprint(spec_of(obj)))
            versioned = versioned and rv is not None
            views.append(view)
        # Kept only when every object can be told apart by its version (a backend with none
        # gets its blueprints listed and parsed on every reconcile, as before).
        self._blueprints = BlueprintSnapshot(version, tuple(views)) if versioned else None
        return tuple(views)

    def _not_selected(self, run: Run, reason: str, message: str) -> Result:
        run.conditions.set(Condition(self.kind.blueprint_condition, FALSE, reason, message))
        return STOP

    def check_blueprint(self, run: Run) -> Result:
        """Mirror the blueprint's readiness (the same test its own controller writes)."""
        assert run.blueprint is not None
        uses = run.blueprint.templates
        self._read_template_versions(uses)
        ready = blueprint_ready(templates_ready_of(uses, self._template_exists))
        if ready.status != TRUE:
            return self._not_selected(run, ready.reason, ready.message)
        run.conditions.set(Condition(self.kind.blueprint_condition, TRUE, "Ready"))
        return DONE

    def realize(self, run: Run) -> Result:
        """Realize every resource, then say per resource and overall what was submitted and how
        healthy it is (ResourcesSubmitted, ResourcesHealthy) and record the resource events."""
        assert run.blueprint is not None
        blueprint = run.blueprint
        run.account = service_account_for(run.owner, blueprint.obj)
        if self.fast_path:
            # The ServiceAccount the blueprint names, before rendering (see `_inputs_before`).
            account = ("v1", "ServiceAccount", *run.account)
            if account not in run.inputs_before:
                run.inputs_before.update(self._inputs_before([account]))
        run.writer = impersonated(self.backend, Identity.service_account(*run.account))
        ctx = OwnerContext(
            owner=run.owner,
            owner_key=self.kind.context_key,
            blueprint_key=self.kind.blueprint_words,
            labels=lambda res, tpl: self._labels(run.owner, blueprint, res, tpl),
        )
        run.realized = self.realizer.realize(ctx, blueprint, run.writer)
        now = rfc3339(self.clock.now())
        before = {r.get("name"): r for r in status_of(run.owner).get("resources") or []}
        healths: list[Condition] = []
        found = self._shown_now((namespace_of(run.owner), name_of(run.owner)), run)
        shown = {n: (d, r) for n, d, r in found.entries} if found is not None else None
        for realized in run.realized:
            info = None
            if realized.stamped is not None:
                info = self.backend.kind_info(str(realized.stamped["apiVersion"]),
                                              str(realized.stamped["kind"]))
            name = realized.resource.name
            old = before.get(name)
            if realized.derivation is not None and info is not None:
                mark = run.shown[name] = (realized.derivation, info.qualified_resource)
                if (realized.reused and shown is not None and old is not None
                        and realized.health is not None and shown.get(name) == mark):
                    # The entry this derivation built, as the last status write left it.
                    self.kept_entries += 1
                    run.resources.append(old)
                    healths.append(realized.health)
                    continue
            rs = resource_status(realized, old, info, now)
            run.resources.append(rs.entry)
            if rs.healthy is not None:
                healths.append(rs.healthy)
            self._events(run.owner, realized, old, rs.entry)
        first_error = next((r for r in run.realized if r.error is not None), None)
        for cond in submitted_conditions(first_error, healths):
            run.conditions.set(cond)
        return DONE

    def remove_orphans(self, run: Run) -> Result:
        if run.resources:
            self._remove_orphans(run.owner, status_of(run.owner).get("resources") or [],
                                 run.resources, run.writer or self.backend)
        return DONE

    # --- the one place status is written --------------------------------------------------

    def _finish(self, run: Run, ending: Ending) -> None:
        now = rfc3339(self.clock.now())
        owner = run.owner
        previous = status_of(owner)
        failure = ending.failure
        # A raised error keeps every field of the last good status; otherwise the status is
        # written afresh.
        status: dict[str, Any] = (
            {k: v for k, v in previous.items() if k != "conditions"} if failure else {})
        status["observedGeneration"] = meta(owner).get("generation", 1)
        ref_field = self.kind.blueprint_ref_field
        if run.blueprint is not None:
            status[ref_field] = {"kind": self.kind.blueprint_kind, "name": run.blueprint.name}
        elif previous.get(ref_field):
            status[ref_field] = previous[ref_field]
        if run.resources:
            status["resources"] = run.resources
        status = keep_last_good(status, previous, ending, ("resources",))
        requested = (meta(owner).get("annotations") or {}).get(REQUESTED_AT_ANNOTATION)
        if isinstance(requested, str) and requested:
            # Flux's handshake: `reconciler reconcile` waits for this to equal what it set.
            status["lastHandledReconcileAt"] = requested
        elif previous.get("lastHandledReconcileAt"):
            status["lastHandledReconcileAt"] = previous["lastHandledReconcileAt"]
        conditions = summarize(run.conditions, ending, self.rules)
        run.settled = (failure is None and conditions[-1].status == TRUE
                       and run.blueprint is not None and bool(run.realized)
                       and all(r.error is None and r.template is not None
                               and r.template.lifecycle == "mutable" and r.stamped is not None
                               for r in run.realized))
        status["conditions"] = render(previous.get("conditions"), conditions, self.rules,
                                      ending, now)
        run.owner_version = meta(owner).get("resourceVersion")
        if status == previous:
            return
        written = write_status(self.backend, {**owner, "status": status})
        run.owner_version = written.resource_version
        if run.settled and not written.same_apart_from_status:
            # Changed while this reconcile ran (the status write carries no precondition, so
            # its version includes that change): what this reconcile rendered is not what the
            # recorded version holds. No record; that change's own event offers the owner
            # again, and then it is reconciled in full.
            run.settled = False
        ready = conditions[-1]
        if failure is not None:
            self.backend.emit_event(owner, "Warning", failure.reason, failure.message)
        log.info("owner status written", ready=ready.status, reason=ready.reason,
                 message=ready.message if failure is not None else None)

    def _events(self, owner: Obj, realized: Realized, old: Obj | None, entry: Obj) -> None:
        if realized.stamped is not None and realized.action in (Action.CREATED,
                                                                Action.CONFIGURED):
            info = self.backend.kind_info(str(realized.stamped["apiVersion"]),
                                          str(realized.stamped["kind"]))
            verb = "Created" if realized.action is Action.CREATED else "Patched"
            self.backend.emit_event(
                owner, "Normal", "StampedObjectApplied",
                f"{verb} object [{info.qualified_resource}/{name_of(realized.stamped)}]")
        for removed in realized.removed:
            self._removed_event(owner, removed)
        old_outputs = {o.get("name"): o.get("digest") for o in (old or {}).get("outputs") or []}
        for out in entry.get("outputs") or []:
            if old_outputs.get(out["name"]) != out["digest"] and realized.stamped is not None:
                self.backend.emit_event(
                    owner, "Normal", "ResourceOutputChanged",
                    f"[{realized.resource.name}] found a new output in field [{out['name']}]: "
                    f"{out['preview'].strip()[:120]}")
        old_healthy = find_condition((old or {}).get("conditions"), "Healthy")
        new_healthy = find_condition(entry.get("conditions"), "Healthy")
        if new_healthy is not None and (old_healthy or {}).get("status") != new_healthy.get(
                "status"):
            self.backend.emit_event(
                owner, "Normal", "ResourceHealthyStatusChanged",
                f"[{realized.resource.name}] found healthy status in [{new_healthy.get('reason')}]"
                f" changed to [{new_healthy.get('status')}]")

    def _removed_event(self, owner: Obj, obj: Obj) -> None:
        info = self.backend.kind_info(str(obj["apiVersion"]), str(obj["kind"]))
        self.backend.emit_event(owner, "Normal", "StampedObjectRemoved",
                                f"Deleted object [{info.qualified_resource}/{name_of(obj)}]")

    def _remove_orphans(self, owner: Obj, before: Sequence[Obj], after: Sequence[Obj],
                        writer: Backend) -> None:
        """Delete what this owner stamped for a resource that no longer produces that object.

        Only objects this owner controls (its ownerReference) are touched, never immutable
        ones (their retention policy, not the current status, decides how long they live) and
        never ones annotated `reconciler.dev/prune: disabled`.
        """
        current = {_ref_key(r["stampedRef"]) for r in after if r.get("stampedRef")}
        uid = meta(owner).get("uid")
        for entry in before:
            ref = entry.get("stampedRef")
            if not ref or _ref_key(ref) in current:
                continue
            api_version, kind, namespace, name = _ref_key(ref)
            try:
                live = self.backend.get(api_version, kind, namespace, name)
            except ReconcilerError:
                continue
            if live is None or not _controlled_by(live, uid):
                continue
            if labels_of(live).get(LIFECYCLE_LABEL, MUTABLE) != MUTABLE:
                continue
            if prune_disabled(live):
                log.info("orphaned stamped object kept: pruning disabled by annotation",
                         object=name)
                continue
            try:
                writer.delete(api_version, kind, namespace, name)
            except ReconcilerError as exc:
                log.warning("could not delete orphaned stamped object", object=name,
                            error=str(exc))
                continue
            self._removed_event(owner, live)

    # --- helpers -------------------------------------------------------------------------

    def _read_template_versions(self, uses: Sequence[TemplateUse]) -> None:
        """The resourceVersions of the templates the blueprint names, read together (and
        recorded as `_template` records them) for this reconcile's `_template` lookups; where
        one of them cannot be read, each is read on its own there."""
        refs = tuple(dict.fromkeys((CARTO_API, kind, "", name) for _, kind, name in uses))
        try:
            versions = resource_versions(self.backend, refs)
        except ReconcilerError:
            return
        self._reads.versions = dict(zip(refs, versions, strict=True))

    def _template_exists(self, kind: str, name: str) -> bool:
        return self._template(kind, name) is not None

    def _template(self, kind: str, name: str) -> Obj | None:
        """The template, read as `get` reads it (recorded for read tracking); the copy read
        last is kept per template and handed out again while the template's resourceVersion
        is unchanged, so an owner reconcile does not copy every template it renders (the
        realizer only reads templates: the shared copy is never changed)."""
        memo: dict[tuple[str, str], Obj | None] | None = getattr(self._reads, "found", None)
        if memo is not None and (kind, name) in memo:
            # Looked up already by this reconcile (its blueprint's check, then its realizer):
            # the same version again, read and recorded once.
            return memo[(kind, name)]
        ref = (CARTO_API, kind, "", name)
        versions: dict[Ref, str | None] | None = getattr(self._reads, "versions", None)
        try:
            version = (versions[ref] if versions is not None and ref in versions
                       else resource_versions(self.backend, (ref,))[0])
            kept = self._template_copies.get(ref)
            if version is not None and kept is not None and kept[0] == version:
                found: Obj | None = kept[1]
            else:
                found = self.backend.get(CARTO_API, kind, "", name)
                if found is not None:
                    self._template_copies[ref] = (meta(found).get("resourceVersion"), found)
                else:
                    self._template_copies.pop(ref, None)
        except ReconcilerError:
            found = None
        reads: dict[Ref, str | None] | None = getattr(self._reads, "templates", None)
        if reads is not None:
            # The first version seen stays: a later one may be newer than what was used.
            reads.setdefault((CARTO_API, kind, "", name),
                             meta(found).get("resourceVersion") if found is not None else None)
        if memo is not None:
            memo[(kind, name)] = found
        return found

    def _labels(self, owner: Obj, blueprint: Blueprint, resource: BlueprintResource,
                template: Template) -> dict[str, str]:
        p = self.kind.label_prefix
        return {
            f"carto.run/{p}-name": name_of(owner),
            f"carto.run/{p}-namespace": namespace_of(owner),
            self.kind.blueprint_label: blueprint.name,
            "carto.run/resource-name": resource.name,
            "carto.run/template-kind": template.kind,
            "carto.run/cluster-template-name": template.name,
        }


def _blueprint_key(blueprint: Blueprint | None) -> tuple[object, object] | None:
    """(uid, resourceVersion) of the blueprint as read; None where it has no version."""
    if blueprint is None:
        return None
    m = meta(blueprint.obj)
    version = m.get("resourceVersion")
    return None if version is None else (m.get("uid"), version)


def _ref_key(ref: Obj) -> tuple[str, str, str, str]:
    return (str(ref.get("apiVersion")), str(ref.get("kind")), str(ref.get("namespace") or ""),
            str(ref.get("name")))


def _controlled_by(obj: Obj, uid: Any) -> bool:
    return any(r.get("uid") == uid and r.get("controller")
               for r in meta(obj).get("ownerReferences") or [])
