"""Walking a blueprint's resources in order: choose template, render, stamp, apply, read outputs.

Each resource is realized on its own; an error is recorded for that resource and the walk goes on
(later resources that need its outputs fail to render), so the status shows every resource. The
first error decides the owner's `ResourcesSubmitted` condition, as in Cartographer.

`realize` takes the backend to write through for this owner (`backends.base.impersonated`: the
owner's ServiceAccount), so every apply and delete of a stamped object is authorized as the
tenant; a refusal (403) is the resource's `TemplateRejectedByAPIServer` with the API server's
message, and nothing is created.

Unchanged resources (issue 14): most reconciles of an owner find most of its mutable resources
as they left them. The realizer keeps, per (owner uid, resource name), a small record
(`_Applied`) of the last render it found in sync with the live object: a digest of what decided
the render (the template's body and the value of each of its `$(...)$` tags, or for Jinja2 the
rendered object), the labels and ownerReference stamped, and the live object's proof of no drift
(uid and resourceVersion, and where the kind keeps one, generation and the declared metadata). When
all of these hold again, render (for a `$(...)$` template) and `apply_object` are skipped, and
the live object read for the proof is the stamped one; anything else renders and applies in full
and records afresh. See `_Applied` for why the proof is sound.

Unchanged stamped objects are not read (issue 14): the record also keeps what was derived from
the live object at its recorded resourceVersion (`_Derived`: its outputs, its Healthy condition,
the template and deployment input they were derived with). When the render is the recorded one
and `resource_versions` (no copy; recorded as a read, so a change of the object still offers
its owner again) shows the object still at that version, nothing is read or recomputed: the
result carries the outputs and health derived then, and for `stamped` only the object's
identity (`Realized.reused`). Any other version, template, or deployment input reads the live
object and derives afresh.
"""

from __future__ import annotations

import hashlib
import itertools
import marshal
import threading
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final, TypeVar

from reconciler.apply.applier import UNREAD, Action, ApplyResult, Unread, apply_object
from reconciler.backends.base import Backend, Ref, resource_versions
from reconciler.chains.blueprint import (
    CARTO_API,
    DEPLOYMENT_TEMPLATE,
    Blueprint,
    BlueprintResource,
    Template,
)
from reconciler.chains.deployment import deployment_outputs
from reconciler.chains.errors import (
    MissingValueAtPathError,
    ResolveTemplateOptionsError,
    ResourceError,
    TemplateOptionsMatchError,
    TemplateRejectedError,
    TemplateRetrievalError,
    TemplateStampError,
)
from reconciler.chains.health import health_condition
from reconciler.chains.interpolate import InterpolationError, tag_values
from reconciler.chains.lifecycle import (
    LIFECYCLE_LABEL,
    ImmutableStamper,
    RetentionPolicy,
    is_immutable,
    lifecycle_of,
)
from reconciler.chains.params import resolve_params
from reconciler.chains.render import RenderError, render
from reconciler.chains.selection import best_matches
from reconciler.diff.compare import in_sync
from reconciler.model.conditions import Condition
from reconciler.model.errors import BackendError, ReconcilerError, without_tracebacks
from reconciler.model.jsonpath import JSONPathError, evaluate_single
from reconciler.model.limits import check_deadline
from reconciler.model.objects import Obj, meta, name_of, namespace_of, spec_of
from reconciler.model.selectors import Selector, SelectorError


@dataclass
class Realized:
    resource: BlueprintResource
    template: Template | None = None
    stamped: Obj | None = None
    outputs: dict[str, Any] | None = None
    error: ResourceError | None = None
    action: Action | None = None
    pass_through: bool = False
    # Older immutable objects the retention policy pruned during this reconcile.
    removed: list[Obj] = field(default_factory=list)
    # The object outputs are read from: the stamped one, or for immutable lifecycles the newest
    # healthy one.
    outputs_from: Obj | None = None
    # The apply of a mutable resource that was applied (not skipped): what `changed` reads.
    applied: ApplyResult | None = field(default=None, repr=False)
    # The stamped object's Healthy condition, where the realizer derived it (a mutable resource
    # whose outputs were read): the one `status.resource_status` would compute.
    health: Condition | None = None
    # Which derivation of outputs and health this is (`_Derived.serial`): equal in two
    # reconciles only when both come from the same object version, template and inputs.
    derivation: int | None = None
    # The stamped object was found at the version its outputs and health were derived from and
    # was not read: `stamped` is then only its identity (apiVersion, kind, and metadata name,
    # namespace, uid and resourceVersion), and `outputs` and `health` are those derived then.
    reused: bool = False

    @property
    def changed(self) -> tuple[str, ...]:
        """The dotted paths the apply changed (computed when asked: no reconcile asks)."""
        return self.applied.changed if self.applied is not None else ()


@dataclass
class Outputs:
    """Outputs of the resources realized so far, by resource name."""

    by_resource: dict[str, dict[str, Any]] = field(default_factory=dict)

    def get(self, resource: str) -> dict[str, Any] | None:
        return self.by_resource.get(resource)


@dataclass(frozen=True)
class _Writes:
    """What one owner's stamped objects are written through (its identity's backend)."""

    backend: Backend
    immutables: ImmutableStamper


@dataclass(frozen=True)
class OwnerContext:
    """What the realizer needs to know about the owner and how to label what it stamps."""

    owner: Obj
    owner_key: str  # "workload" or "deliverable"
    blueprint_key: str  # "supply chain" or "delivery"
    labels: Callable[[BlueprintResource, Template], dict[str, str]]
    extra_context: Mapping[str, Any] = field(default_factory=dict)

    @cached_property
    def owner_in_context(self) -> Obj:
        """The owner as templates see it: all but managedFields (made once per reconcile, for
        every resource). No deep copy: interpolation copies every value it takes from the
        context, and the sandboxed Jinja2 environment cannot mutate it."""
        return {**self.owner, "metadata": {k: v for k, v in meta(self.owner).items()
                                           if k != "managedFields"}}


TemplateLookup = Callable[[str, str], Obj | None]

MAX_RECORDED_OWNERS: Final = 131_072
"""Owners whose resources' `_Applied` records are kept; past it the least recently realized
owner's are dropped (tenants create owners: the records must stay bounded)."""
MAX_RECORDS_PER_OWNER: Final = 256
"""Records of one owner (one per resource name it realized lately): past it they are dropped."""
MAX_SHARED_VALUES: Final = 4096
"""Distinct template keys and health conditions the records share one copy of; past it the
table starts again (what is shared is only memory: equal values either way)."""


def _digest(*parts: Any) -> bytes | None:
    """A 128-bit BLAKE2b of the parts' marshal serialization (version 2: bytes follow
    content, so equal plain data gives equal digests, and dicts in another order only a miss);
    None for what is not plain data."""
    try:
        data = marshal.dumps(parts, 2)
    except ValueError:
        return None
    return hashlib.blake2b(data, digest_size=16).digest()


def _declared_metadata(metadata: Mapping[str, Any]) -> bytes | None:
    """A digest of the metadata an apply compares (`diff.compare.DECLARED_METADATA` but the
    name and namespace, which are the object's key)."""
    return _digest(metadata.get("labels"), metadata.get("annotations"),
                   metadata.get("ownerReferences"), metadata.get("finalizers"))


_V = TypeVar("_V", bound=Hashable)

TemplateKey = tuple[str, str, object, object]
"""(kind, name, uid, resourceVersion) of a template as read."""

_serials = itertools.count(1)


@dataclass(frozen=True, slots=True)
class _Derived:
    """What was derived from one mutable resource's live object at its record's version:
    valid while the object is at that version and the template (its output paths and
    healthRule) and the deployment input (a deployment template's outputs read it) are these."""

    template: TemplateKey
    deployment: Mapping[str, Any] | None
    outputs: dict[str, Any]
    health: Condition
    namespace: str | None  # the live object's (None: cluster-scoped, no namespace)
    serial: int


def _template_key(template: Template) -> TemplateKey | None:
    m = template.obj.get("metadata")
    if not isinstance(m, dict) or m.get("resourceVersion") is None:
        return None  # nothing tells two contents apart: derive every time
    return (template.kind, template.name, m.get("uid"), m["resourceVersion"])


@dataclass(frozen=True, slots=True)
class _Applied:
    """What one owner's mutable resource was last found in sync with: the proof that the next
    realize of the same render against the live object would find it in sync again.

    `apply_object` compares only what the desired object declares outside its status
    (`diff.compare.comparable`): its body (every top-level field but metadata and status) and
    its declared metadata. The same desired object (same `render` digest: the template's body,
    the value of each tag and the stamped labels and owner; or the same `desired` digest)
    against a live object with the same uid and resourceVersion is the same comparison. A live
    object with a newer resourceVersion but the same uid and generation, where the kind keeps
    a generation, has the same body: kube-apiserver (and the simulated cluster) bumps it on
    every change outside metadata and status of a custom resource and on every spec change of
    the built-in kinds that keep one; a status write changes resourceVersion only. Its declared
    metadata is then compared by digest. An object being deleted is never in sync here."""

    render: bytes | None  # None: the render itself cannot be skipped (Jinja2, recursive tags)
    desired: bytes
    ref: Ref
    owner_uid: str
    uid: str
    version: str
    generation: int | None
    metadata: bytes
    derived: _Derived | None = None

    @classmethod
    def of(cls, render_digest: bytes | None, desired_digest: bytes | None, desired: Obj,
           owner_uid: str, live: Obj) -> _Applied | None:
        m = live.get("metadata")
        if not isinstance(m, dict) or desired_digest is None:
            return None
        uid, version, generation = m.get("uid"), m.get("resourceVersion"), m.get("generation")
        declared = _declared_metadata(m)
        if not uid or not version or declared is None or m.get("deletionTimestamp"):
            return None
        return cls(render_digest, desired_digest,
                   (str(desired["apiVersion"]), str(desired["kind"]), namespace_of(desired),
                    name_of(desired)),
                   owner_uid, str(uid), str(version),
                   generation if isinstance(generation, int) else None, declared)

    def holds(self, live: Obj | None) -> bool:
        """Whether `live` (read just now) is still in sync with the recorded render."""
        if live is None:
            return False
        m = live.get("metadata")
        if not isinstance(m, dict) or m.get("uid") != self.uid or m.get("deletionTimestamp"):
            return False
        if m.get("resourceVersion") == self.version:
            return True
        return (self.generation is not None and m.get("generation") == self.generation
                and _declared_metadata(m) == self.metadata)

    def seen(self, live: Obj) -> _Applied:
        """This record, proven by `holds` to still hold for `live`, as of `live`'s version
        (with nothing derived from it yet)."""
        version = meta(live).get("resourceVersion")
        if (version == self.version or version is None) and self.derived is None:
            return self
        return self.deriving(None, self.version if version is None else str(version))

    def deriving(self, derived: _Derived | None, version: str | None = None) -> _Applied:
        """This record (at `version`, default its own) with `derived` (`dataclasses.replace`
        without its cost: this runs for nearly every resource realized)."""
        return _Applied(self.render, self.desired, self.ref, self.owner_uid, self.uid,
                        self.version if version is None else version, self.generation,
                        self.metadata, derived)

    def stamped(self) -> Obj:
        """The identity of the object this record's derived values were read from."""
        derived = self.derived
        assert derived is not None
        metadata: dict[str, Any] = {"name": self.ref[3]}
        if derived.namespace is not None:
            metadata["namespace"] = derived.namespace
        metadata["uid"] = self.uid
        metadata["resourceVersion"] = self.version
        return {"apiVersion": self.ref[0], "kind": self.ref[1], "metadata": metadata}


class Realizer:
    def __init__(self, backend: Backend, templates: TemplateLookup,
                 max_owners: int = MAX_RECORDED_OWNERS) -> None:
        self.backend = backend
        self.templates = templates
        self.immutables = ImmutableStamper(backend, lambda _obj: None)
        # (owner namespace, owner name) -> resource name -> `_Applied`, least recently
        # realized owner first; changed under `_lock` (the daemon's workers share a realizer)
        self._applied: dict[tuple[str, str], dict[str, _Applied]] = {}
        self._lock = threading.Lock()
        self.max_owners = max_owners
        # value -> the one equal value the records keep (`_share`)
        self._shared: dict[Hashable, Any] = {}
        # How many mutable resources were realized without render / without apply (tests)
        self.skipped_renders = 0
        self.skipped_applies = 0
        # ... and how many of those were not even read (`Realized.reused`)
        self.skipped_reads = 0

    def forget(self, namespace: str, name: str) -> None:
        """The owner is gone: drop what was recorded for its resources."""
        with self._lock:
            self._applied.pop((namespace, name), None)

    def recorded(self, namespace: str, name: str) -> int:
        """How many of an owner's resources have a record (tests, memory checks)."""
        return len(self._applied.get((namespace, name)) or {})

    def _take_record(self, owner: tuple[str, str], resource: str) -> _Applied | None:
        """The owner's record for a resource, removed: it is put back only when this realize
        succeeds (a failed render or apply leaves none)."""
        with self._lock:
            records = self._applied.get(owner)
            return records.pop(resource, None) if records else None

    def _put_record(self, owner: tuple[str, str], resource: str, record: _Applied) -> None:
        with self._lock:
            records = self._applied.get(owner)
            if records is not None and next(reversed(self._applied)) == owner and (
                    len(records) < MAX_RECORDS_PER_OWNER):
                records[resource] = record  # the most recently realized owner already
                return
            records = self._applied.pop(owner, None)
            if records is None or len(records) >= MAX_RECORDS_PER_OWNER:
                records = {}
            records[resource] = record
            self._applied[owner] = records  # now the most recently realized
            while len(self._applied) > self.max_owners:
                del self._applied[next(iter(self._applied))]

    def realize(self, ctx: OwnerContext, blueprint: Blueprint,
                writer: Backend | None = None) -> list[Realized]:
        """Realize every resource; `writer` (default: this realizer's backend) is the backend
        the stamped objects are applied and deleted through, the owner's identity."""
        writes = _Writes(writer or self.backend, self.immutables if writer in (
            None, self.backend) else ImmutableStamper(writer or self.backend, lambda _obj: None))
        outputs = Outputs()
        results = []
        for resource in blueprint.resources:
            # Between resources: a reconcile past its deadline stops here, as a failure.
            check_deadline(f"realizing resource [{resource.name}]")
            result = self._realize_one(ctx, blueprint, resource, outputs, writes)
            if result.outputs is not None:
                outputs.by_resource[resource.name] = result.outputs
            results.append(result)
        return results

    # --- one resource --------------------------------------------------------------------

    def _realize_one(
        self, ctx: OwnerContext, blueprint: Blueprint, resource: BlueprintResource,
        outputs: Outputs, writes: _Writes | None = None,
    ) -> Realized:
        writes = writes or _Writes(self.backend, self.immutables)
        result = Realized(resource)
        where = f"resource [{resource.name}] in {ctx.blueprint_key} [{blueprint.name}]"
        try:
            template_name, pass_through = self._choose_template(ctx, blueprint, resource)
            if pass_through is not None:
                result.pass_through = True
                result.outputs = self._pass_through(resource, pass_through, outputs, where)
                return result
            self._require_inputs(resource, outputs, where)
            raw = self.templates(resource.template_kind, template_name)
            if raw is None:
                raise TemplateRetrievalError(
                    f"unable to get template [{template_name}] for {where}: "
                    f"{resource.template_kind}.carto.run \"{template_name}\" not found")
            template = Template(resource.template_kind, template_name, raw)
            result.template = template
            lifecycle = lifecycle_of(template.spec)
            owner_labels = ctx.labels(resource, template)
            labels = {**owner_labels, LIFECYCLE_LABEL: lifecycle}
            if is_immutable(lifecycle):
                desired = self._stamp(ctx, blueprint, resource, template, outputs, where, labels)
                self._realize_immutable(result, template, desired, owner_labels, where,
                                        writes.immutables)
            else:
                kept = self._realize_recorded(result, ctx, blueprint, resource, template,
                                              outputs, where, labels, writes.backend)
                if result.reused:
                    return result
                assert result.stamped is not None
                try:
                    result.outputs = self._read_outputs(resource, template, result.stamped,
                                                        outputs)
                finally:
                    if kept is not None:
                        self._keep(kept[0], resource, kept[1], result, template, outputs)
                return result
            source = result.outputs_from or result.stamped
            assert source is not None
            result.outputs = self._read_outputs(resource, template, source, outputs)
        except ResourceError as exc:
            result.error = without_tracebacks(exc)  # an expected error: no cycle to collect
        return result

    def _realize_recorded(
        self, result: Realized, ctx: OwnerContext, blueprint: Blueprint,
        resource: BlueprintResource, template: Template, outputs: Outputs, where: str,
        labels: Mapping[str, str], writer: Backend,
    ) -> tuple[tuple[str, str], _Applied] | None:
        """A mutable resource: skip the render and the apply where the owner's record for it
        proves both would change nothing (`_Applied`), else render, apply and record. Where
        the record's object is still at the version its outputs and health were derived from
        (`_Derived`), it is not even read (`result.reused`). Otherwise returns the owner's key
        and the record to keep once the outputs are read (`_keep`), or None for no record."""
        owner_meta = meta(ctx.owner)
        owner_uid = owner_meta.get("uid")
        owner = (str(owner_meta.get("namespace") or ""), str(owner_meta.get("name") or ""))
        record = self._take_record(owner, resource.name) if owner_uid else None
        if record is not None and record.owner_uid != owner_uid:
            record = None
        context = self.context(ctx, blueprint, resource, template, outputs)
        render_digest = self._render_digest(template, context, ctx.owner, labels) \
            if owner_uid else None
        live: Obj | None = None
        read = False
        if record is not None and render_digest is not None and record.render == render_digest:
            if record.derived is not None and self._unchanged(
                    record, record.derived, template, resource, outputs, writer):
                self.skipped_renders += 1
                self.skipped_applies += 1
                self.skipped_reads += 1
                derived = record.derived
                result.stamped, result.action = record.stamped(), Action.UNCHANGED
                result.outputs, result.health = derived.outputs, derived.health
                result.derivation, result.reused = derived.serial, True
                self._put_record(owner, resource.name, record)
                return None
            live, read = self._read_live(writer, record.ref)
            if record.holds(live):
                assert live is not None
                self.skipped_renders += 1
                self.skipped_applies += 1
                result.stamped, result.action = live, Action.UNCHANGED
                return owner, record.seen(live)
        desired = self._stamp(ctx, blueprint, resource, template, outputs, where, labels,
                              context=context)
        desired_digest = _digest(desired) if owner_uid else None
        if record is not None and desired_digest is not None and (
                record.desired == desired_digest):
            if not read:
                live, read = self._read_live(writer, record.ref)
            if record.holds(live):
                assert live is not None
                self.skipped_applies += 1
                result.stamped, result.action = live, Action.UNCHANGED
                return owner, _Applied.of(render_digest, desired_digest, desired,
                                          str(owner_uid), live) or record.seen(live)
        self._realize_mutable(result, desired, where, writer, live if read else UNREAD)
        if owner_uid and result.stamped is not None and (
                result.action is Action.UNCHANGED or in_sync(desired, result.stamped)):
            fresh = _Applied.of(render_digest, desired_digest, desired, str(owner_uid),
                                result.stamped)
            if fresh is not None:
                return owner, fresh
        return None

    def _unchanged(self, record: _Applied, derived: _Derived, template: Template,
                   resource: BlueprintResource, outputs: Outputs, writer: Backend) -> bool:
        """Whether what `derived` holds is what reading the live object now would give: the
        same template and deployment input, and the object (read as `resource_versions` reads
        it, through the writer whose reads are tracked) still at the recorded version. A
        failed read is a no: the full path reads again and reports it."""
        if derived.template != _template_key(template) or (
                derived.deployment != _deployment_input(resource, template, outputs)):
            return False
        try:
            return resource_versions(writer, (record.ref,))[0] == record.version
        except BackendError:
            return False

    def _share(self, value: _V) -> _V:
        """One kept copy of equal immutable values (a fleet's records hold the same few
        template keys and health conditions)."""
        shared = self._shared
        if len(shared) >= MAX_SHARED_VALUES:
            shared.clear()
        try:
            found: _V = shared.setdefault(value, value)
        except TypeError:  # an unhashable part (a template's odd metadata): kept as it is
            return value
        return found

    def _keep(self, owner: tuple[str, str], resource: BlueprintResource, record: _Applied,
              result: Realized, template: Template, outputs: Outputs) -> None:
        """Put the record back; with what was derived from the live object it was proven
        against (`result.stamped`, at the record's version) when its outputs could be read."""
        stamped = result.stamped
        key = _template_key(template)
        if (result.outputs is not None and stamped is not None and key is not None
                and meta(stamped).get("resourceVersion") == record.version):
            health = self._share(health_condition(template.health_rule, stamped,
                                                  bool(result.outputs)))
            found = meta(stamped).get("namespace")
            # The ref's own string where they agree (nearly always): one less kept per record.
            namespace = (None if not found else record.ref[2] if found == record.ref[2]
                         else str(found))
            derived = _Derived(self._share(key), _deployment_input(resource, template, outputs),
                               result.outputs, health, namespace, next(_serials))
            record = record.deriving(derived)
            result.health, result.derivation = health, derived.serial
        self._put_record(owner, resource.name, record)

    @staticmethod
    def _read_live(writer: Backend, ref: Ref) -> tuple[Obj | None, bool]:
        """The live object at a recorded ref, read as `apply_object` reads it (through the
        writer, whose reads are the controller's tracked ones), and whether it was read: a
        failed read is left to the full path, which reports it."""
        try:
            return writer.get(*ref), True
        except BackendError:
            return None, False

    @staticmethod
    def _render_digest(template: Template, context: Mapping[str, Any], owner: Obj,
                       labels: Mapping[str, str]) -> bytes | None:
        """A digest of everything a `$(...)$` render and `stamp_metadata` read: the template's
        body, each tag's value, and the owner and labels stamped. None where the render has to
        run to know its result: a Jinja2 (or ytt) template, a tag that does not evaluate, a
        value that holds a tag itself (stamped again from more of the context)."""
        spec = template.spec
        if "ytt" in spec or "jinja2" in spec or "template" not in spec:
            return None
        tagged = tag_values(spec["template"], context)
        if tagged is None:
            return None
        body, values = tagged
        try:
            serialized = marshal.dumps(values, 2)
        except ValueError:
            return None
        if b"$(" in serialized:
            return None
        owner_meta = meta(owner)
        try:
            stamp = marshal.dumps((dict(labels), owner_meta.get("namespace"),
                                   owner.get("apiVersion", CARTO_API), owner.get("kind"),
                                   owner_meta.get("name"), owner_meta.get("uid")), 2)
        except ValueError:
            return None
        # Each marshalled part says where it ends: the concatenation is unambiguous.
        digest = hashlib.blake2b(body, digest_size=16)
        digest.update(serialized)
        digest.update(stamp)
        return digest.digest()

    def _realize_mutable(self, result: Realized, desired: Obj, where: str,
                         writer: Backend | None = None,
                         live: Obj | Unread | None = UNREAD) -> None:
        try:
            applied = apply_object(writer or self.backend, desired, live=live)
        except BackendError as exc:
            raise TemplateRejectedError(
                f"unable to apply object [{namespace_of(desired)}/{name_of(desired)}] for "
                f"{where}: {exc}") from exc
        result.stamped, result.action, result.applied = applied.live, applied.action, applied

    def _realize_immutable(
        self, result: Realized, template: Template, desired: Obj, owner_labels: Mapping[str, str],
        where: str, immutables: ImmutableStamper | None = None,
    ) -> None:
        """A new object per distinct content; outputs come from the newest healthy object."""
        stamper = immutables or self.immutables
        try:
            ensured = stamper.ensure(desired, owner_labels, template.health_rule,
                                     RetentionPolicy.of(template.spec.get("retentionPolicy")))
        except BackendError as exc:
            shown = name_of(desired) or meta(desired).get("generateName") or ""
            raise TemplateRejectedError(
                f"unable to apply object [{namespace_of(desired)}/{shown}] for {where}: "
                f"{exc}") from exc
        result.stamped = ensured.current
        result.action = Action.CREATED if ensured.created else Action.UNCHANGED
        result.removed = ensured.removed
        healthy = ensured.latest_healthy
        if template.output_paths and healthy is None:
            info = self.backend.kind_info(str(desired["apiVersion"]), str(desired["kind"]))
            raise MissingValueAtPathError(
                f"waiting for a healthy object among the immutable [{info.qualified_resource}] "
                f"objects stamped for {where} (newest: [{name_of(ensured.current)}] in "
                f"namespace [{namespace_of(ensured.current)}])")
        result.outputs_from = healthy or ensured.current

    def _choose_template(
        self, ctx: OwnerContext, blueprint: Blueprint, resource: BlueprintResource
    ) -> tuple[str, str | None]:
        if not resource.options:
            return resource.template_name, None
        selectors = [Selector.of_option(opt.get("selector") or {}) for opt in resource.options]
        try:
            best = best_matches(selectors, ctx.owner)
        except SelectorError as exc:
            option = resource.options[exc.index]
            raise ResolveTemplateOptionsError(
                f"error matching against template option [{option.get('name')}] for resource "
                f"[{resource.name}] in {ctx.blueprint_key} [{blueprint.name}]: {exc}") from exc
        if len(best) != 1:
            names = [str(resource.options[i].get("name") or resource.options[i].get("passThrough"))
                     for i in best]
            if not names:
                raise TemplateOptionsMatchError(
                    f"no matching templates for resource [{resource.name}] in "
                    f"{ctx.blueprint_key} [{blueprint.name}]")
            raise TemplateOptionsMatchError(
                f"expected exactly 1 option to match, found [{len(names)}] matching options "
                f"[{', '.join(names)}] for resource [{resource.name}] in {ctx.blueprint_key} "
                f"[{blueprint.name}]")
        option = resource.options[best[0]]
        if option.get("passThrough"):
            return "", str(option["passThrough"])
        return str(option.get("name")), None

    def _require_inputs(self, resource: BlueprintResource, outputs: Outputs, where: str) -> None:
        """Stamp nothing until every resource this one consumes has produced its outputs.

        Stamping early would create an object from a partial context (a template need not
        interpolate its inputs to depend on them), which Cartographer's early-stamp regression
        tests forbid; the resource waits instead, like one waiting to read an output.
        """
        for producer in resource.inputs:
            if outputs.get(producer) is None:
                raise MissingValueAtPathError(
                    f"waiting for the outputs of resource [{producer}] before stamping {where}")

    def _pass_through(
        self, resource: BlueprintResource, input_name: str, outputs: Outputs, where: str
    ) -> dict[str, Any]:
        for ref in (*resource.sources, *resource.images, *resource.configs):
            if ref.name == input_name:
                found = outputs.get(ref.resource)
                if found is None:
                    raise MissingValueAtPathError(
                        f"waiting for output of [{ref.resource}] to pass through {where}")
                return dict(found)
        if resource.deployment is not None and resource.deployment.name == input_name:
            found = outputs.get(resource.deployment.resource)
            if found is not None:
                return dict(found)
        raise TemplateStampError(f"passThrough input [{input_name}] not found for {where}")

    def context(
        self, ctx: OwnerContext, blueprint: Blueprint, resource: BlueprintResource,
        template: Template, outputs: Outputs,
    ) -> dict[str, Any]:
        owner = ctx.owner_in_context
        params = resolve_params(template.default_params, blueprint.params, resource.params,
                                spec_of(ctx.owner).get("params") or [])
        # Cartographer offers the owner under its kind's name and, for templates shared by
        # supply chains and deliveries, as `owner` (kuttl: templates-refer-to-owner).
        context: dict[str, Any] = {ctx.owner_key: owner, "owner": owner, "params": params,
                                   **ctx.extra_context}
        sources: dict[str, Any] = {}
        for ref in resource.sources:
            out = outputs.get(ref.resource)
            if out is not None:
                sources[ref.name] = {"url": out.get("url"), "revision": out.get("revision"),
                                     "name": ref.name}
        images: dict[str, Any] = {}
        for ref in resource.images:
            out = outputs.get(ref.resource)
            if out is not None:
                images[ref.name] = {"image": out.get("image"), "name": ref.name}
        configs: dict[str, Any] = {}
        for ref in resource.configs:
            out = outputs.get(ref.resource)
            if out is not None:
                configs[ref.name] = {"config": out.get("config"), "name": ref.name}
        context.update(sources=sources, images=images, configs=configs)
        if len(sources) == 1:
            only = next(iter(sources.values()))
            context["source"] = {"url": only["url"], "revision": only["revision"]}
        if len(images) == 1:
            context["image"] = next(iter(images.values()))["image"]
        if len(configs) == 1:
            context["config"] = next(iter(configs.values()))["config"]
        if resource.deployment is not None:
            out = outputs.get(resource.deployment.resource)
            if out is not None:
                context["deployment"] = {"url": out.get("url"), "revision": out.get("revision")}
        return context

    def _stamp(
        self, ctx: OwnerContext, blueprint: Blueprint, resource: BlueprintResource,
        template: Template, outputs: Outputs, where: str, labels: Mapping[str, str],
        context: dict[str, Any] | None = None,
    ) -> Obj:
        if context is None:
            context = self.context(ctx, blueprint, resource, template, outputs)
        prefix = (f"unable to stamp object for {where}: template "
                  f"[{template.kind}/{template.name}]")
        try:
            stamped = render(template, context)
        except (InterpolationError, RenderError, JSONPathError) as exc:
            raise TemplateStampError(f"{prefix}: {exc}") from exc
        if not (isinstance(stamped, dict) and stamped.get("apiVersion") and stamped.get("kind")):
            raise TemplateStampError(f"{prefix}: the rendered template is not a Kubernetes object "
                                     "(apiVersion and kind are required)")
        # A template without tags renders as itself: stamp a copy of its top level.
        stamped = stamp_metadata(dict(stamped), ctx.owner, labels)
        if not self._namespaced(stamped):
            # The API server clears the namespace of a cluster-scoped object: desired as it
            # will be stored, or every later apply would find it changed (and say so).
            del stamped["metadata"]["namespace"]
        return stamped

    def _namespaced(self, obj: Obj) -> bool:
        """Whether the object's kind is namespaced; an unserved kind counts as namespaced (the
        apply reports it)."""
        try:
            return self.backend.kind_info(str(obj["apiVersion"]), str(obj["kind"])).namespaced
        except ReconcilerError:
            return True

    def _read_outputs(
        self, resource: BlueprintResource, template: Template, live: Obj, inputs: Outputs
    ) -> dict[str, Any]:
        if template.kind == DEPLOYMENT_TEMPLATE:
            deployment = (inputs.get(resource.deployment.resource)
                          if resource.deployment is not None else None)
            return deployment_outputs(resource.name, template.spec, live, deployment)
        outputs: dict[str, Any] = {}
        for name, path in template.output_paths:
            try:
                outputs[name] = evaluate_single(path, live)
            except JSONPathError as exc:
                info = self.backend.kind_info(str(live["apiVersion"]), str(live["kind"]))
                ns = namespace_of(live)
                in_ns = f" in namespace [{ns}]" if ns else ""
                raise MissingValueAtPathError(
                    f"waiting to read value [{path}] from resource "
                    f"[{info.qualified_resource}/{name_of(live)}]{in_ns}") from exc
        return outputs


def _deployment_input(resource: BlueprintResource, template: Template,
                      outputs: Outputs) -> Mapping[str, Any] | None:
    """The outputs a deployment template's own outputs are read with (`_read_outputs`)."""
    if template.kind != DEPLOYMENT_TEMPLATE or resource.deployment is None:
        return None
    return outputs.get(resource.deployment.resource)


def stamp_metadata(stamped: Obj, owner: Obj, labels: Mapping[str, str]) -> Obj:
    """Force the owner's namespace, add the carto.run labels and the controller ownerReference.

    `stamped` gets a new `metadata` mapping: interpolation shares every container without a tag
    with the template, and the template is the copy the owner controller keeps for every owner
    it reconciles, which must not pick up one owner's namespace, labels and owner."""
    found = stamped.get("metadata")
    metadata = dict(found) if isinstance(found, Mapping) else {}
    stamped["metadata"] = metadata
    owner_meta = meta(owner)
    metadata["namespace"] = owner_meta.get("namespace")
    merged = dict(metadata.get("labels") or {})
    merged.update(labels)
    metadata["labels"] = merged
    metadata["ownerReferences"] = [{
        "apiVersion": owner.get("apiVersion", CARTO_API),
        "kind": owner.get("kind"),
        "name": owner_meta.get("name"),
        "uid": owner_meta.get("uid"),
        "controller": True,
        "blockOwnerDeletion": True,
    }]
    return stamped


