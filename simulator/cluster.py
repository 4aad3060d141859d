"""An in-memory Kubernetes API server behind the `Backend` protocol.

It keeps what a real API server keeps and enforces what it enforces, so the product cannot rely
on anything a cluster would not give it: uid, resourceVersion, generation (bumped on spec changes
only), creationTimestamp, namespaces that must exist, kinds that must be served (CRDs register
new ones), status written only through the status subresource, label selectors, ownerReference
garbage collection, and events.

Writes follow server-side apply: `managedFields` records, per manager, the fields it set
(`fieldsV1`). An apply that would change a field another manager owns fails with `ApplyConflict`
listing each field, unless forced (then ownership moves); a field a manager dropped from its
next apply is removed unless another manager still owns it. `edit` is the non-apply update a
person makes with `kubectl edit`: it takes ownership of what it changes without conflicts.
`create` and `update` are the API's POST and PUT (managedFields operation "Update", as
kube-apiserver writes them for create, update and patch; "Apply" only for server-side apply).

`metadata.generation` is kept only for the kinds kube-apiserver keeps it for: custom resources
and the built-in kinds whose strategy sets it (workloads, Pods, Ingresses, NetworkPolicies,
PodDisruptionBudgets, HPAs, CRDs); ConfigMaps, Secrets, Services, Namespaces ... have none.

Deletion is kube-apiserver's and the garbage collector's, done at once: an object with
`metadata.finalizers` is only marked (`deletionTimestamp`, `deletionGracePeriodSeconds: 0`) and
goes when its last finalizer is removed; propagation `Background` (the default) removes
dependents whose owners are all gone, `Foreground` keeps the owner (finalizer
`foregroundDeletion`) until its dependents with `blockOwnerDeletion` are gone, `Orphan` removes
the dependents' references to it. A deleted Namespace is `Terminating` until its content is gone.

Listeners (`add_listener`) are called after every write with ("ADDED" | "MODIFIED" |
"DELETED", the object, the object before): the served API's watches are built on them.
resourceVersions come from one sequence shared with Events, while `revision` counts object
writes only (a repeated Event does not keep the controllers' rounds from reaching a fixed point).
"""

from __future__ import annotations

import bisect
import builtins
import collections
import copy
import dataclasses
import hashlib
import json
import marshal
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reconciler.backends.base import FIELD_MANAGER, StatusWritten, same_apart_from_status
from reconciler.model.apivalidation import (
    JSON_BYTES_PER_MARSHAL_BYTE,
    Problem,
    is_label_value,
    is_qualified_name,
    marshal_size,
    merged_object_problems,
    object_problems,
    rejection_message,
    size_problems,
)
from reconciler.model.conflicts import ApplyConflict, FieldConflict
from reconciler.model.errors import Conflict, NotFound, Rejected
from reconciler.model.fieldsets import (
    ITEM,
    FieldPath,
    FieldSet,
    covers,
    fields_of,
    find_item,
    from_tree,
    get_path,
    merge_key,
    path_step,
    to_tree,
)
from reconciler.model.kinds import BUILTIN_KINDS, KindInfo, KindRegistry, kind_info_from_crd
from reconciler.model.labelsets import LabelPairs, LabelSet, list_dependency
from reconciler.model.limits import DEFAULT_LIMITS
from reconciler.model.objects import (
    GroupVersionKind,
    Obj,
    deep_copy,
    describe,
    fold_string_data,
    unshared_copy,
)
from reconciler.model.schema import validate
from reconciler.model.validation import admission_problems, webhook_for
from reconciler.runtime.clock import Clock, rfc3339

Key = tuple[str, str, str, str]  # group, kind, namespace, name
_SERVER_META = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields")
_UID_NAMESPACE = uuid.UUID("8f0c9c8e-8d2e-4d36-9d64-6a1a3c6f2b10")
_UID_NAMESPACE_BYTES = _UID_NAMESPACE.bytes
_DELETION_META = ("deletionTimestamp", "deletionGracePeriodSeconds")
LEASE = KindInfo("coordination.k8s.io", ("v1",), "Lease", "leases", True)
"""Served by every API server (leader election); the simulator adds it to any registry."""
BUILTIN_GROUP_KINDS = frozenset((k.group, k.kind) for k in (*BUILTIN_KINDS, LEASE))
GENERATION_KINDS = frozenset({
    ("", "Pod"), ("apps", "Deployment"), ("apps", "StatefulSet"), ("apps", "DaemonSet"),
    ("apps", "ReplicaSet"), ("batch", "Job"), ("batch", "CronJob"),
    ("networking.k8s.io", "Ingress"), ("networking.k8s.io", "IngressClass"),
    ("networking.k8s.io", "NetworkPolicy"), ("policy", "PodDisruptionBudget"),
    ("autoscaling", "HorizontalPodAutoscaler"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
})
"""Built-in kinds whose API strategy keeps metadata.generation; every custom kind keeps it."""
FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
PROPAGATION_POLICIES = ("Background", "Foreground", "Orphan")
Listener = Callable[[str, "Obj", "Obj | None"], None]
BLOB_BUDGET_BYTES = 64 * 2**20
"""At most this many bytes of serialized object versions are kept for copies (`copy_of`); past
it all are dropped and made again as they are read, so a large settled world does not hold a
second, serialized copy of every object it read once."""
CHANGE_LOG_ENTRIES = 100_000
"""Writes the change log keeps at least (`changes_since`); older questions get None."""
_NEW_VERSION_BYTES = 48
"""Marshal bytes of the `resourceVersion` key and value a new object gets after its size check."""
_STATUS_SLACK = 32
"""Marshal bytes a status write adds to an object besides its status: the "status" key (11) and
a resourceVersion grown by up to 20 digits since the object's size without status was taken."""
EVENT_TTL_SECONDS = 3600.0
"""How long an Event lives after its last write: kube-apiserver's `--event-ttl` default."""


class AlreadyExists(Conflict):
    """A create of an object that exists (kube-apiserver's 409 AlreadyExists)."""


class StaleVersion(Conflict):
    """An update or delete with a resourceVersion or uid precondition that no longer holds."""


class Forbidden(Rejected):
    """What the API server forbids whatever the caller's rights (a terminating namespace)."""


@dataclass
class Reads:
    """What one reconcile read, in `reconciler.engine.tracking`'s terms (the simulator does not
    import the engine): ("key", group, kind, namespace, name) for a get, ("kind", group, kind,
    namespace or "*", "") for a list."""

    dependencies: set[tuple[str, str, str, str, str]] = dataclasses.field(default_factory=set)
    statuses: dict[tuple[str, str, str, str], Mapping[str, object]] = dataclasses.field(
        default_factory=dict)


class ObjectView(Mapping[str, Any]):
    """A read-only view of a stored map: nothing to set, delete or clear, and a nested map or
    list comes back as a view too, so no path through it reaches the stored data to change
    it. Equal to a map with the same content."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return _viewed(self._data[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"ObjectView({self._data!r})"

    def copy(self) -> Obj:
        """A mutable deep copy (what `get` returns)."""
        return deep_copy(dict(self._data))


class ListView(Sequence[Any]):
    """A read-only view of a stored list; items are views as `ObjectView`'s are."""

    __slots__ = ("_data",)

    def __init__(self, data: builtins.list[Any]) -> None:
        self._data = data

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return ListView(self._data[index])
        return _viewed(self._data[index])

    def __len__(self) -> int:
        return len(self._data)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (builtins.list, tuple, ListView)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    def __hash__(self) -> int:
        raise TypeError("unhashable type: 'ListView'")

    def __repr__(self) -> str:
        return f"ListView({self._data!r})"


def _viewed(value: Any) -> Any:
    if isinstance(value, dict):
        return ObjectView(value)
    if isinstance(value, builtins.list):
        return ListView(value)
    return value  # str, numbers, bool, None: immutable


class InMemoryCluster:
    def __init__(self, clock: Clock, kinds: Iterable[KindInfo] = BUILTIN_KINDS) -> None:
        self.clock = clock
        self.registry = _Registry(kinds)
        self._schemas: dict[tuple[str, str], Mapping[str, Any]] = {}
        self._objects = _ObjectTable()
        # Events by what makes two of them the same (involved uid, reason, message, source), in
        # the order they were first recorded; with, oldest first, when each was last written
        # (entries made stale by a later write are skipped when they come up).
        self._events: dict[tuple[str, str, str, str], Obj] = {}
        self._event_written_at: dict[tuple[str, str, str, str], float] = {}
        self._event_expiry: collections.deque[tuple[float, tuple[str, str, str, str]]] = (
            collections.deque())
        self._event_serial = 0
        self._revision = 0
        self._sequence = 0  # resourceVersions: object writes and Event writes
        self._listeners: list[Listener] = []
        self._removal_listeners: list[Callable[[Obj], None]] = []
        self._recording = threading.local()  # the reads of the reconcile on this thread
        self._gone: dict[str, Obj] = {}  # the last state of recently removed objects, by uid
        if self.registry.lookup_group_kind(LEASE.group, LEASE.kind) is None:
            self.registry.register(LEASE)
        self._initial_kinds = {(k.group, k.kind) for k in self.registry}
        # The change feed: when each object, and each kind (per namespace), last changed.
        self._key_changes: dict[Key, int] = {}
        self._kind_changes: dict[tuple[str, str, str], int] = {}
        # The same, in order: (revision, key) of the latest writes, for `changes_since`;
        # `_log_floor`: the revision before which the log no longer answers.
        self._change_log: builtins.list[tuple[int, Key]] = []
        self._log_floor = 0
        # Per key, the labels it dropped in its changes still in the log (with the revision of
        # the latest such change): kept only as long as the log answers for them.
        self._label_history: dict[Key, tuple[int, LabelPairs]] = {}
        for ns in ("default", "kube-system", "kube-public"):
            self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

    # --- Backend -------------------------------------------------------------------------

    def kind_info(self, api_version: str, kind: str) -> KindInfo:
        return self._served(api_version, kind)[0]

    def _lookup_kind(self, api_version: str, kind: str) -> KindInfo:
        info = self.registry.lookup(GroupVersionKind.parse(api_version, kind))
        if info is None:
            raise Rejected(
                f"no matches for kind \"{kind}\" in version \"{api_version}\": the cluster does "
                "not serve this kind (apply its CustomResourceDefinition first)",
                field="kind",
            )
        return info

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        key = self._read_key(api_version, kind, namespace, name)
        found = self._objects.get(key)
        return self._out(found, api_version, key) if found is not None else None

    def _read_key(self, api_version: str, kind: str, namespace: str, name: str) -> Key:
        """The store key of one object, recorded as a read of the reconcile running on this
        thread (when its reads are recorded)."""
        key = self._key(self.kind_info(api_version, kind), namespace, name)
        reads: Reads | None = getattr(self._recording, "reads", None)
        if reads is not None:
            reads.dependencies.add(("key", *key))
        return key

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> list[Obj]:
        return [self._out(self._objects[key], api_version, key)
                for key in self._listed(api_version, kind, namespace, labels)]

    def _listed(self, api_version: str, kind: str, namespace: str | None,
                labels: Mapping[str, str] | None) -> Sequence[Key]:
        """The keys a list selects, in order (read at once), its read recorded; raises
        `Rejected` for an unserved kind or a label selector that does not parse."""
        info = self.kind_info(api_version, kind)
        for label, value in (labels or {}).items():
            bad = is_qualified_name(str(label)) or is_label_value(str(value))
            if bad:
                raise Rejected(f"unable to parse requirement: values[0][{label}]: Invalid value: "
                               f"{json.dumps(value)}: {bad[0]}", field="labelSelector")
        scope = namespace if info.namespaced else None
        reads: Reads | None = getattr(self._recording, "reads", None)
        if reads is not None:
            reads.dependencies.add(list_dependency(info.group, info.kind,
                                                   "*" if scope is None else scope, labels))
        return (self._objects.keys_labelled(info.group, info.kind, labels, scope) if labels
                else self._objects.keys_of_kind(info.group, info.kind, scope))

    def view(self, api_version: str, kind: str, namespace: str,
             name: str) -> ObjectView | None:
        """The stored object itself behind a read-only view: no copy. A view cannot change
        the store (it has no setters; what it returns for a map or a list is a view too), and
        it follows later writes, so read it at once; `ObjectView.copy` gives a mutable copy.
        Its `apiVersion` is the stored one. Reads recorded as `get`'s are."""
        found = self._objects.get(self._read_key(api_version, kind, namespace, name))
        return ObjectView(found) if found is not None else None

    def views(self, api_version: str, kind: str, namespace: str | None = None,
              labels: Mapping[str, str] | None = None) -> builtins.list[ObjectView]:
        """`list` without copies: read-only views of the stored objects, as `view`; selected,
        recorded and refused as `list` does."""
        return [ObjectView(self._objects[key])
                for key in self._listed(api_version, kind, namespace, labels)]

    def apply(self, obj: Obj, field_manager: str = FIELD_MANAGER, force: bool = False) -> Obj:
        info, desired, key = self._admit(obj, applying=True)
        api_version = str(obj.get("apiVersion", ""))
        live = self._objects.get(key)
        if live is None:
            live = self._create(desired, info, api_version, field_manager, "Apply")
        else:
            self._server_side_apply(live, desired, info, api_version, field_manager, force,
                                    key)
            self._finish_if_done(key)
        if info.kind == "CustomResourceDefinition":
            self._register_crd(live)
            self._establish_crd(live, api_version)
        return self._out(live, api_version, key)

    def create(self, obj: Obj, field_manager: str = FIELD_MANAGER) -> Obj:
        """POST: a new object (`AlreadyExists` if its name is taken), an Update by the manager."""
        info, desired, key = self._admit(obj)
        api_version = str(obj.get("apiVersion", ""))
        if key in self._objects:
            raise AlreadyExists(f"{info.qualified_resource} \"{key[3]}\" already exists")
        live = self._create(desired, info, api_version, field_manager, "Update")
        if info.kind == "CustomResourceDefinition":
            self._register_crd(live)
            self._establish_crd(live, api_version)
        return self._out(live, api_version, key)

    def update(self, obj: Obj, field_manager: str = FIELD_MANAGER) -> Obj:
        """PUT: replace the object's metadata and body (status is kept: it has its own
        subresource); a `metadata.resourceVersion` in `obj` must be the live one."""
        info, desired, key = self._admit(obj, creating=False)
        api_version = str(obj.get("apiVersion", ""))
        live = self._objects.get(key)
        if live is None:
            raise NotFound(f"{describe(obj)} not found")
        want = (obj.get("metadata") or {}).get("resourceVersion")
        if want and str(want) != str(live["metadata"].get("resourceVersion")):
            raise StaleVersion(f"{describe(obj)}: the object has been modified")

        def replace(current: Obj) -> None:
            current.clear()
            current.update(desired)
        return self.edit(api_version, info.kind, key[2], key[3], replace, field_manager)

    def _admit(self, obj: Obj, creating: bool = True,
               applying: bool = False) -> tuple[KindInfo, Obj, Key]:
        """What kube-apiserver checks before it stores `obj`: kind, name, namespace, object
        meta, the CRD schema, admission; the object as it would be stored, and its key."""
        api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
        info = self.kind_info(api_version, kind)
        desired = unshared_copy(obj)  # stored and changed in place: no part may be two places
        desired.pop("status", None)
        metadata = desired.setdefault("metadata", {})
        name = str(metadata.get("name") or "")
        if not name:
            raise Rejected(f"{describe(obj)}: metadata.name: Required value", field="metadata.name")
        namespace = str(metadata.get("namespace") or "")
        if info.namespaced:
            if not namespace:
                raise Rejected(f"{describe(obj)}: metadata.namespace: Required value for a "
                               "namespaced kind", field="metadata.namespace")
            ns = self._objects.get(("", "Namespace", "", namespace))
            if ns is None:
                raise NotFound(f"namespaces \"{namespace}\" not found (creating {describe(obj)})")
            key = self._key(info, namespace, name)
            if creating and ns["metadata"].get("deletionTimestamp") and key not in self._objects:
                raise Forbidden(f"{info.qualified_resource} \"{name}\" is forbidden: unable to "
                                f"create new content in namespace {namespace} because it is "
                                "being terminated")
        else:
            metadata.pop("namespace", None)
            namespace = ""
        # What kube-apiserver itself refuses (decoding, object meta, the kind's own rules), before
        # the CRD schema and the webhooks; stringData is checked as written, before it is folded.
        _refuse(desired, object_problems(desired, namespaced=info.namespaced))
        if kind == "Secret" and api_version == "v1" and "stringData" in desired:
            desired = fold_string_data(desired)
        key = self._key(info, namespace, name)
        if not (applying and key in self._objects):
            # An apply to an existing object is a partial configuration (only the fields its
            # manager owns): the schema and the webhooks judge the merged object instead.
            self._check_schema_and_admission(desired, info)
        return info, desired, key

    def _check_schema_and_admission(self, obj: Obj, info: KindInfo) -> None:
        """The CRD's schema, then Cartographer's validating webhooks, as a cluster running
        Cartographer has them; raises `Rejected`."""
        schema = self._schemas.get((info.group, info.kind))
        if schema is not None:
            problems = validate(obj, schema)
            if problems:
                field, message = problems[0]
                name = obj["metadata"]["name"]
                raise Rejected(f"{info.kind}.{info.group} \"{name}\" is invalid: {field}: "
                               f"{message}", field=field)
        admission = admission_problems(obj)
        if admission:
            webhook = webhook_for(info.kind)
            raise Rejected(f"admission webhook \"{webhook}\" denied the request: "
                           f"{admission[0].message}", field=admission[0].field)

    def update_status(self, obj: Obj, field_manager: str | None = None) -> Obj:
        """Write the status subresource; with `field_manager`, recorded in managedFields as an
        Update of subresource "status" (as kube-apiserver records it). Returns a copy of the
        object as written."""
        api_version = str(obj.get("apiVersion", ""))
        live, key = self._write_status(obj, field_manager)
        return self._out(live, api_version, key)

    def write_status(self, obj: Obj) -> StatusWritten:
        """`update_status(obj)` (no field manager) without a copy of the object written: its
        new resourceVersion, and whether the stored object is `obj` apart from its status,
        compared in place (`backends.base.write_status`)."""
        live, _ = self._write_status(obj, None)
        return StatusWritten(str(live["metadata"]["resourceVersion"]),
                             same_apart_from_status(obj, live))

    def _write_status(self, obj: Obj, field_manager: str | None) -> tuple[Obj, Key]:
        """The status write itself: the stored object (changed in place) and its key."""
        api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
        info = self.kind_info(api_version, kind)
        meta = obj.get("metadata") or {}
        key = self._key(info, str(meta.get("namespace") or ""), str(meta.get("name", "")))
        live = self._objects.get(key)
        if live is None:
            raise NotFound(f"{describe(obj)} not found")
        if live.get("status") != obj.get("status"):  # a copy is equal to what it copies
            # Replaced whole by every write, never changed in place: what it shares can stay
            # shared (an unshared copy would also unshare its strings: 20% more memory).
            status = deep_copy(obj["status"]) if isinstance(obj.get("status"), dict) else (
                copy.deepcopy(obj.get("status")))
            # The status subresource keeps metadata and spec; only the size can become too large.
            rest = self._objects.rest_size(key, live)
            added = marshal_size(status)
            if rest is None or added is None or JSON_BYTES_PER_MARSHAL_BYTE * (
                    rest + added + _STATUS_SLACK) > DEFAULT_LIMITS.object_bytes:
                _refuse(live, size_problems({**live, "status": status}))
            # The previous state is needed for managedFields and listeners; otherwise `_bump`
            # only asks whether there was one.
            before = self._objects.private_copy(key, live) if field_manager or \
                self._listeners else live
            if status is None:
                live.pop("status", None)
            else:
                live["status"] = status
            if field_manager:
                live["metadata"]["managedFields"] = self._updated_entries(
                    before, live, _status_fields(before.get("status")), _status_fields(status),
                    field_manager, api_version, "status")
            self._bump(live, before, key)
            if rest is not None and not field_manager:  # a manager's entry changed the rest
                self._objects.note_rest_size(key, live, rest)
        return live, key

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        self.delete_object(api_version, kind, namespace, name)

    def delete_object(self, api_version: str, kind: str, namespace: str, name: str, *,
                      propagation: str | None = None,
                      preconditions: Mapping[str, Any] | None = None) -> tuple[Obj, bool]:
        """Delete as kube-apiserver and its garbage collector would; the object's last state and
        whether it is gone (False: it waits for finalizers, or for foreground dependents)."""
        info = self.kind_info(api_version, kind)
        key = self._key(info, namespace, name)
        live = self._objects.get(key)
        if live is None:
            raise NotFound(f"{kind}/{namespace}/{name} not found")
        meta = live["metadata"]
        pre = preconditions or {}
        if pre.get("uid") and pre["uid"] != meta.get("uid"):
            raise StaleVersion(f"Precondition failed: UID in precondition: {pre['uid']}, UID in "
                               f"object meta: {meta.get('uid')}")
        if pre.get("resourceVersion") and str(pre["resourceVersion"]) != str(
                meta.get("resourceVersion")):
            raise StaleVersion(f"Precondition failed: ResourceVersion in precondition: "
                               f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                               f"{meta.get('resourceVersion')}")
        if propagation is not None and propagation not in PROPAGATION_POLICIES:
            raise Rejected(f"propagationPolicy: Unsupported value: \"{propagation}\": supported "
                           "values: \"Foreground\", \"Background\", \"Orphan\"",
                           field="propagationPolicy")
        finalizers = list(meta.get("finalizers") or [])
        policy = propagation or ("Orphan" if ORPHAN in finalizers else
                                 "Foreground" if FOREGROUND in finalizers else "Background")
        uid = str(meta.get("uid"))
        if policy == "Orphan" and ORPHAN in finalizers:
            self._set_finalizers(key, [f for f in finalizers if f != ORPHAN])
        self._delete_key(key, policy)
        current = self._objects.get(key)
        if current is not None and current["metadata"].get("uid") == uid:
            return self._out(current, api_version, key), False
        return self._out(self._gone.get(uid, live), api_version), True

    # --- read recording (reconciler.engine.tracking.ReadRecorder) ------------------------

    def begin(self) -> None:
        """Record what this thread reads until `end`: the simulated controllers read the
        cluster directly, and the runner schedules them by these reads as it schedules the
        product's by `TrackingBackend`'s."""
        self._recording.reads = Reads()

    def end(self) -> Reads:
        reads: Reads | None = getattr(self._recording, "reads", None)
        self._recording.reads = None
        return reads or Reads()

    def add_listener(self, listener: Listener) -> None:
        """Call `listener(type, obj, before)` after every write (under the caller's lock); the
        objects are the listener's to keep, not to change. Every write then copies the object
        (twice for an update): a listener of removals only takes `on_removed`."""
        self._listeners.append(listener)

    def on_removed(self, listener: Callable[[Obj], None]) -> None:
        """Call `listener(obj)` with each object's last state as it is removed (under the
        caller's lock; the object is the listener's to keep, not to change); writes cost
        nothing more."""
        self._removal_listeners.append(listener)

    @property
    def resource_version(self) -> int:
        """The latest resourceVersion given out (objects and Events alike)."""
        return self._sequence

    def emit_event(
        self, involved: Obj, type_: str, reason: str, message: str, source: str = FIELD_MANAGER
    ) -> None:
        meta = involved.get("metadata") or {}
        now = rfc3339(self.clock.now())
        # The same event again only counts up, as the API server's event aggregation does (and
        # as a series, as the events.k8s.io recorder writes it).
        same = (str(meta.get("uid")), reason, message, source)
        self._expire_events()
        event = self._events.get(same)
        if event is not None:
            before = deep_copy(event) if self._listeners else None
            event["count"] += 1
            event["lastTimestamp"] = now
            event["series"] = {"count": event["count"], "lastObservedTime": _micro(now)}
            self._event_written(same, event, before)
            return
        self._event_serial += 1
        name = f"{meta.get('name')}.{self._event_serial:06x}"
        namespace = meta.get("namespace") or "default"
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"namespace": namespace, "name": name,
                         "uid": _uid(f"event/{namespace}/{name}/{self._sequence}"),
                         "creationTimestamp": now},
            "involvedObject": {
                "apiVersion": involved.get("apiVersion"),
                "kind": involved.get("kind"),
                "namespace": meta.get("namespace"),
                "name": meta.get("name"),
                "uid": meta.get("uid"),
            },
            "type": type_,
            "reason": reason,
            "message": message,
            "source": {"component": source},
            "reportingComponent": source,
            "reportingInstance": source,
            "count": 1,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "eventTime": _micro(now),
        }
        self._events[same] = event
        self._event_written(same, event, None)

    def _event_written(self, same: tuple[str, str, str, str], event: Obj,
                       before: Obj | None) -> None:
        self._sequence += 1
        event["metadata"]["resourceVersion"] = str(self._sequence)
        now = self.clock.now()
        self._event_written_at[same] = now
        self._event_expiry.append((now, same))
        self._notify("ADDED" if before is None else "MODIFIED", event, before)

    def _expire_events(self) -> None:
        """Remove the Events not written for `EVENT_TTL_SECONDS`, as kube-apiserver's
        `--event-ttl` lease does (a repeat, which counts up, renews it); watchers see them
        DELETED. Costs what expires, not what is kept."""
        horizon = self.clock.now() - EVENT_TTL_SECONDS
        expiry = self._event_expiry
        while expiry and expiry[0][0] <= horizon:
            written, same = expiry.popleft()
            if self._event_written_at.get(same) != written:
                continue  # written again since: a later entry stands for it
            del self._event_written_at[same]
            event = self._events.pop(same)
            self._sequence += 1
            final = deep_copy(event) if self._listeners else event
            final["metadata"]["resourceVersion"] = str(self._sequence)
            self._notify("DELETED", final, event)

    def events(self) -> Sequence[Obj]:
        self._expire_events()
        return [deep_copy(e) for e in self._events.values()]

    # --- simulator extras ----------------------------------------------------------------

    @property
    def revision(self) -> int:
        """Grows with every write; equal revisions mean nothing changed in between."""
        return self._revision

    def all_objects(self) -> builtins.list[Obj]:
        return [self._objects.copy_of(k, o) for k, o in sorted(self._objects.items())]

    def edit(self, api_version: str, kind: str, namespace: str, name: str,
             change: Callable[[Obj], None], field_manager: str = "kubectl-edit") -> Obj:
        """Change an object as a person would with `kubectl edit` (an Update, not an Apply).

        The editing manager takes ownership of every field it changed or added, without
        conflicts; fields it removed lose their owners.
        """
        info = self.kind_info(api_version, kind)
        key = self._key(info, namespace, name)
        live = self._objects.get(key)
        if live is None:
            raise NotFound(f"{kind}/{namespace}/{name} not found")
        before = self._objects.private_copy(key, live)
        after = self._objects.private_copy(key, live)
        change(after)
        after = unshared_copy(after)  # what `change` set may share parts
        after["metadata"] = {**after.get("metadata", {}),
                             **{k: before["metadata"][k] for k in _SERVER_META
                                if k in before["metadata"]}}
        for field in _DELETION_META:
            if field in before["metadata"]:
                after["metadata"][field] = before["metadata"][field]
            else:
                after["metadata"].pop(field, None)
        if "status" in before:
            after["status"] = before["status"]
        else:
            after.pop("status", None)
        _refuse(after, object_problems(after, namespaced=info.namespaced))
        self._no_new_finalizers(before, after)
        entries = self._updated_entries(before, after, fields_of(before), fields_of(after),
                                        field_manager, api_version)
        after["metadata"]["managedFields"] = entries
        live.clear()
        live.update(after)
        self._commit(before, live)
        self._finish_if_done(key)
        if info.kind == "CustomResourceDefinition":
            self._register_crd(live)
            self._establish_crd(live, api_version)
        return self._out(live, api_version, key)

    def register_schema(self, group: str, kind: str, schema: Mapping[str, Any]) -> None:
        self._schemas[(group, kind)] = schema

    def snapshot(self) -> dict[str, Any]:
        return {
            "revision": self._revision,
            "sequence": self._sequence,
            "objects": self.all_objects(),
            "events": self.events(),
        }

    def restore(self, snapshot: Mapping[str, Any]) -> None:
        """Load a snapshot: CRDs first so their kinds are served before their objects."""
        objects = list(snapshot.get("objects") or [])
        objects.sort(key=lambda o: o.get("kind") != "CustomResourceDefinition")
        for obj in objects:
            if obj.get("kind") == "CustomResourceDefinition":
                self._register_crd(obj)
            info = self.kind_info(str(obj["apiVersion"]), str(obj["kind"]))
            meta = obj["metadata"]
            self._objects[self._key(info, str(meta.get("namespace") or ""), meta["name"])] = (
                copy.deepcopy(obj)
            )
        events = [copy.deepcopy(e) for e in snapshot.get("events") or []]
        self._events = {
            (str(e["involvedObject"].get("uid")), str(e["reason"]), str(e["message"]),
             str((e.get("source") or {}).get("component", FIELD_MANAGER))): e for e in events
        }
        # Each Event lives until an hour after its last write, as it would have on the server.
        written = sorted((_seconds(str(e.get("lastTimestamp") or "")), same)
                         for same, e in self._events.items())
        self._event_written_at = {same: at for at, same in written}
        self._event_expiry = collections.deque(written)
        self._event_serial = max([self._event_serial, len(events),
                                  *(_serial(str(e["metadata"].get("name", ""))) for e in events)])
        self._revision = max(self._revision, int(snapshot.get("revision") or 0))
        self._log_floor = self._revision  # what was loaded is no change the log can name
        versions = [_int((o.get("metadata") or {}).get("resourceVersion"))
                    for o in [*objects, *events]]
        self._sequence = max(self._sequence, self._revision, int(snapshot.get("sequence") or 0),
                             *versions)

    # --- internals -----------------------------------------------------------------------

    @staticmethod
    def _key(info: KindInfo, namespace: str, name: str) -> Key:
        return (info.group, info.kind, namespace if info.namespaced else "", name)

    def _out(self, obj: Obj, api_version: str, key: Key | None = None) -> Obj:
        """A copy of `obj` for the caller, as `api_version`; from the stored version's
        serialization when `obj` is the object stored at `key` (see `_ObjectTable.copy_of`)."""
        out = self._objects.copy_of(key, obj) if key is not None else deep_copy(obj)
        out["apiVersion"] = api_version
        return out

    def _bump(self, obj: Obj, before: Obj | None, stored_at: Key | None = None) -> None:
        """A write of `obj` (`before`: its previous state, None when it is new). `stored_at`:
        its key, given only by a write that changed neither its labels nor its owners (a
        status write) or whose table insert indexed them (a create), which then skips
        finding the key and re-indexing them."""
        self._revision += 1
        self._sequence += 1
        obj["metadata"]["resourceVersion"] = str(self._sequence)
        key: Key | None = stored_at
        if key is None:
            try:
                info: KindInfo | None = self._served(str(obj.get("apiVersion", "")),
                                                     str(obj.get("kind", "")))[0]
            except Rejected:
                info = None
            if info is not None:
                meta = obj["metadata"]
                key = self._key(info, str(meta.get("namespace") or ""), str(meta["name"]))
                self._objects.reindex(key)
        if key is not None:
            self._changed(key)
        self._notify("ADDED" if before is None else "MODIFIED", obj, before, key)

    def _notify(self, type_: str, obj: Obj, before: Obj | None, key: Key | None = None) -> None:
        """`before` is always a copy no one keeps; `obj` is copied once (from its stored
        version's serialization when it is stored at `key`). Listeners share both and must not
        change them."""
        if self._listeners:
            copied = self._objects.copy_of(key, obj) if key is not None else deep_copy(obj)
            for listener in self._listeners:
                listener(type_, copied, before)

    def _changed(self, key: Key) -> None:
        self._key_changes[key] = self._revision
        log = self._change_log
        log.append((self._revision, key))
        if len(log) > 2 * CHANGE_LOG_ENTRIES:
            self._log_floor = log[-CHANGE_LOG_ENTRIES - 1][0]
            del log[:-CHANGE_LOG_ENTRIES]
            self._label_history = {k: entry for k, entry in self._label_history.items()
                                   if entry[0] > self._log_floor}
        group, kind, namespace, _ = key
        self._kind_changes[(group, kind, namespace)] = self._revision
        self._kind_changes[(group, kind, "*")] = self._revision
        dropped = self._objects.take_dropped_labels(key)
        if dropped:
            # Labels the object carried before this change and no longer does: a list by one
            # of them must still see the change (`labelled_changes_since`).
            _, before = self._label_history.get(key, (0, frozenset()))
            self._label_history[key] = (self._revision, before | dropped)

    # --- incremental state saves (simulator.statestore) ----------------------------------

    def stored_keys(self) -> builtins.list[Key]:
        """Every stored object's key."""
        return builtins.list(self._objects)

    def changed_since(self, revision: int) -> builtins.list[Key]:
        """Keys of the objects written or removed after `revision`."""
        return [key for key, changed in self._key_changes.items() if changed > revision]

    def stored(self, key: Key) -> Obj | None:
        """The stored object itself, not a copy: only to serialise, never to change."""
        return self._objects.get(key)

    def stored_events(self) -> Sequence[Obj]:
        """The stored Events themselves, not copies: only to serialise, never to change."""
        self._expire_events()
        return builtins.list(self._events.values())

    # --- change feed (reconciler.engine.tracking.ChangeFeed) -----------------------------

    def last_change(self, group: str, kind: str, namespace: str, name: str) -> int:
        info = self.registry.lookup_group_kind(group, kind)
        ns = namespace if info is None or info.namespaced else ""
        return self._key_changes.get((group, kind, ns, name), 0)

    def names(self, api_version: str, kind: str) -> builtins.list[tuple[str, str]]:
        """(namespace, name) of every object of a kind, without copying any of them."""
        info = self.kind_info(api_version, kind)
        reads: Reads | None = getattr(self._recording, "reads", None)
        if reads is not None:
            reads.dependencies.add(("kind", info.group, info.kind, "*", ""))
        return [(key[2], key[3]) for key in self._objects.keys_of_kind(info.group, info.kind)]

    def changes_since(self, revision: int) -> builtins.list[Key] | None:
        """The keys written or removed after `revision`, in order, without repeats; None when
        that is further back than the log reaches (then the caller looks at everything).
        Costs what changed since, not what is stored."""
        if revision < self._log_floor:
            return None
        log = self._change_log
        at = bisect.bisect_right(log, revision, key=lambda entry: entry[0])
        return builtins.list(dict.fromkeys(key for _, key in log[at:]))

    def labelled_changes_since(
            self, revision: int) -> builtins.list[tuple[Key, LabelSet | None]] | None:
        """`changes_since`, each key with the labels its object carries now or dropped in a
        change still in the log: a superset of the labels it carried before or after each of
        its changes since `revision`."""
        keys = self.changes_since(revision)
        if keys is None:
            return None
        history, labels = self._label_history, self._objects.labels_of
        out: builtins.list[tuple[Key, LabelSet | None]] = []
        for key in keys:
            dropped = history.get(key)
            now = labels(key).items()  # a view, not a copy: read at once
            out.append((key, dropped[1] | now if dropped is not None else now))
        return out

    def last_kind_change(self, group: str, kind: str, namespace: str | None) -> int:
        return self._kind_changes.get((group, kind, "*" if namespace is None else namespace), 0)

    def _create(self, desired: Obj, info: KindInfo, api_version: str, manager: str,
                operation: str) -> Obj:
        meta = desired["metadata"]
        for field in (*_SERVER_META, *_DELETION_META):
            meta.pop(field, None)
        key = self._key(info, str(meta.get("namespace") or ""), str(meta["name"]))
        meta["uid"] = _uid(f"{key}/{self._sequence}")
        if _has_generation(info):
            meta["generation"] = 1
        meta["creationTimestamp"] = rfc3339(self.clock.now())
        meta["managedFields"] = [self._managed_entry(manager, operation, api_version,
                                                     fields_of(desired))]
        size = marshal_size(desired)  # as `size_problems` finds it first: then no status yet
        if size is None or JSON_BYTES_PER_MARSHAL_BYTE * size > DEFAULT_LIMITS.object_bytes:
            _refuse(desired, size_problems(desired))
        self._objects[key] = desired  # indexes its uid, labels and owners
        self._bump(desired, None, stored_at=key)
        if size is not None:
            self._objects.note_rest_size(key, desired, size + _NEW_VERSION_BYTES)
        return desired

    def _managed_entry(self, manager: str, operation: str, api_version: str,
                       fields: FieldSet, subresource: str = "",
                       tree: dict[str, Any] | None = None) -> Obj:
        """`tree`: `to_tree(fields)` when the caller has it already."""
        entry = {"manager": manager, "operation": operation, "apiVersion": api_version,
                 "time": rfc3339(self.clock.now()), "fieldsType": "FieldsV1",
                 "fieldsV1": to_tree(fields) if tree is None else tree}
        if subresource:
            entry["subresource"] = subresource
        return entry

    def _updated_entries(self, before: Obj, after: Obj, old: FieldSet, new: FieldSet,
                         manager: str, api_version: str,
                         subresource: str = "") -> builtins.list[Obj]:
        """managedFields after an Update by `manager`: it owns what it changed or added, no
        conflicts; others lose what it changed; fields it removed lose their owners."""
        # A list item belongs to whoever added it; changing a field inside it is not adding it.
        changed = {p for p in new if (get_path(after, p) != get_path(before, p)) if p[-1] != ITEM
                   or not get_path(before, p)[0]}
        gone = old - new
        entries = []
        mine: set[FieldPath] = set(changed)
        for entry in before["metadata"].get("managedFields") or []:
            fields = from_tree(entry.get("fieldsV1"))
            if entry.get("manager") == manager and entry.get("operation") == "Update" and \
                    entry.get("subresource", "") == subresource:
                mine |= fields - gone
                continue
            rest = fields - changed - gone
            if rest:
                entries.append({**entry, "fieldsV1": to_tree(rest)} if rest != fields else entry)
        if mine:
            entries.append(self._managed_entry(manager, "Update", api_version, frozenset(mine),
                                               subresource))
        return entries

    def _server_side_apply(self, live: Obj, config: Obj, info: KindInfo, api_version: str,
                           manager: str, force: bool, key: Key) -> None:
        for field in _SERVER_META:
            config["metadata"].pop(field, None)
        entries = list(live["metadata"].get("managedFields") or [])
        mine_at = next((i for i, e in enumerate(entries)
                        if e.get("manager") == manager and e.get("operation") == "Apply"), None)
        new = fields_of(config)
        new_tree = to_tree(new)
        # The manager's previous set is parsed only when its tree differs from the new one: an
        # equal tree holds no field the new set lacks, so nothing is dropped.
        mine: FieldSet = frozenset()
        if mine_at is not None and entries[mine_at].get("fieldsV1") != new_tree:
            mine = from_tree(entries[mine_at].get("fieldsV1"))
        # Only a field the apply changes can conflict: found in one walk of the applied fields
        # with the live object and the configuration together (an equal subtree is skipped
        # whole); the other managers' sets are parsed only when something needs them.
        changing = sorted(_changing_fields(new_tree, config, live)) if len(entries) > (
            mine_at is not None) else []
        others: dict[int, FieldSet] = {}
        if changing or mine:
            others = {i: from_tree(e.get("fieldsV1")) for i, e in enumerate(entries)
                      if i != mine_at}
        taken: set[FieldPath] = set()
        taken_from: set[int] = set()
        conflicts: builtins.list[FieldConflict] = []
        for path in changing:
            for i, fields in others.items():
                if path in fields:
                    conflicts.append(FieldConflict(_dotted(path), str(entries[i].get("manager"))))
                    taken.add(path)
                    taken_from.add(i)
        if conflicts and not force:
            raise ApplyConflict(describe(live), manager, conflicts)
        if taken:
            others = {i: fields - taken for i, fields in others.items()}
        dropped: builtins.list[FieldPath] = []
        still_owned: FieldSet = frozenset()
        if mine - new:
            still_owned = frozenset().union(*others.values()) if others else frozenset()
            dropped = [p for p in mine - new
                       if not covers(p[:-1] if p[-1] == ITEM else p, still_owned)]
        before = self._objects.private_copy(key, live)
        # Whole list items first; then leaves (a leaf under a removed item is already gone).
        for path in sorted(dropped, key=lambda p: (p[-1] != ITEM, -len(p))):
            _remove_path(live, path)
        # A map emptied by what was dropped goes too, deepest first, as the API server's apply
        # removes `spec.template` whole when its owner drops every field under it (unless the
        # config or another manager still has something there).
        emptied = {p[:i] for p in dropped for i in range(1, len(p)) if p[i - 1].startswith("f:")}
        for path in sorted(emptied, key=len, reverse=True):
            present, value = get_path(live, path)
            if present and value == {} and not covers(path, new) \
                    and not covers(path, still_owned):
                _remove_path(live, path)
        _merge(live, {k: v for k, v in config.items() if k not in ("apiVersion", "kind")})
        mine_entry = self._managed_entry(manager, "Apply", api_version, new, tree=new_tree)
        if mine_at is not None and entries[mine_at].get("fieldsV1") == new_tree:
            mine_entry = entries[mine_at]  # unchanged ownership keeps its timestamp
        managed = [] if mine_at is not None else [mine_entry]
        for i, entry in enumerate(entries):
            if i == mine_at:
                managed.append(mine_entry)
            elif i in taken_from:
                if others[i]:
                    managed.append({**entry, "fieldsV1": to_tree(others[i])})
            else:
                managed.append(entry)
        live["metadata"]["managedFields"] = managed
        # Validation and storage see the merged object: two managers' valid halves can still
        # make an invalid whole (a key in both data and binaryData, annotations over 256 KiB).
        problems = merged_object_problems(live, config, namespaced=info.namespaced)
        if problems:
            live.clear()
            live.update(before)
            _refuse(live, problems)
        try:
            self._check_schema_and_admission(_without(live, "status"), info)
        except Rejected:
            live.clear()
            live.update(before)
            raise
        self._commit(before, live)

    def _commit(self, before: Obj, live: Obj) -> None:
        """Bump generation on a spec change and resourceVersion on any change."""
        if _body(live) != _body(before) and "generation" in live["metadata"]:
            live["metadata"]["generation"] = int(live["metadata"].get("generation", 1)) + 1
        if live != before:
            self._bump(live, before)

    @staticmethod
    def _no_new_finalizers(before: Obj, after: Obj) -> None:
        if not before["metadata"].get("deletionTimestamp"):
            return
        old = set(before["metadata"].get("finalizers") or [])
        new = [f for f in after["metadata"].get("finalizers") or [] if f not in old]
        if new:
            raise Rejected(f"{describe(after)} is invalid: metadata.finalizers: Forbidden: no new "
                           "finalizers can be added if the object is being deleted, found new "
                           f"finalizers {json.dumps(new)}", field="metadata.finalizers")

    def _register_crd(self, crd: Obj) -> None:
        info = kind_info_from_crd(crd)
        if not info.kind or not info.plural:
            raise Rejected(f"{describe(crd)}: spec.names.kind and spec.names.plural are required",
                           field="spec.names")
        self.registry.register(info)
        for version in (crd.get("spec") or {}).get("versions") or []:
            schema = (version.get("schema") or {}).get("openAPIV3Schema")
            if isinstance(schema, Mapping) and version.get("storage", True):
                self.register_schema(info.group, info.kind, _without_status(schema))

    def _establish_crd(self, live: Obj, api_version: str) -> None:
        """What kube-apiserver's naming and establishing controllers write on a CRD once its
        kind is served: `acceptedNames`, the conditions NamesAccepted and Established (which
        `kubectl wait` and helm's `--wait` look for) and `storedVersions`. A status write of
        its own (MODIFIED), by the manager "kube-apiserver" on the status subresource."""
        spec = live.get("spec") or {}
        names = {k: v for k, v in (spec.get("names") or {}).items() if v}
        kind = str(names.get("kind", ""))
        names.setdefault("listKind", f"{kind}List")
        names.setdefault("singular", kind.lower())
        status = deep_copy(live.get("status") or {})
        status["acceptedNames"] = unshared_copy(names)  # not the spec's own lists
        now = rfc3339(self.clock.now())
        conditions = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
        for type_, reason, message in (
                ("NamesAccepted", "NoConflicts", "no conflicts found"),
                ("Established", "InitialNamesAccepted", "the initial names have been accepted")):
            old = next((c for c in conditions if c.get("type") == type_), None)
            if old is not None and old.get("status") == "True":
                continue
            new = {"type": type_, "status": "True", "lastTransitionTime": now,
                   "reason": reason, "message": message}
            conditions = [new if c is old else c for c in conditions] if old else [
                *conditions, new]
        status["conditions"] = conditions
        stored = [str(v) for v in status.get("storedVersions") or []]
        for version in spec.get("versions") or []:
            if isinstance(version, dict) and version.get("storage") and (
                    str(version.get("name")) not in stored):
                stored.append(str(version.get("name")))
        status["storedVersions"] = stored
        if live.get("status") == status:
            return
        before = deep_copy(live)
        live["status"] = status
        live["metadata"]["managedFields"] = self._updated_entries(
            before, live, _status_fields(before.get("status")), _status_fields(status),
            "kube-apiserver", api_version, "status")
        self._bump(live, before)

    # --- deletion and garbage collection ---------------------------------------------------

    def _delete_key(self, key: Key, policy: str) -> None:
        """Delete one object (it exists): marked if finalizers hold it, else removed."""
        live = self._objects[key]
        if policy == "Orphan":
            self._orphan(str(live["metadata"].get("uid")))
        if policy == "Foreground":
            self._mark_deleting(key, add=FOREGROUND)
            uid = str(live["metadata"].get("uid"))
            for dependent in self._dependents(uid):
                if dependent in self._objects:
                    self._delete_key(dependent, "Foreground")
            self._check_foreground(key)
            return
        if key[1] == "Namespace" and key[0] == "":
            self._mark_deleting(key)
            ns = self._objects[key]
            if (ns.get("status") or {}).get("phase") != "Terminating":
                before = deep_copy(ns)
                ns["status"] = {**(ns.get("status") or {}), "phase": "Terminating"}
                self._bump(ns, before)
            for other in [k for k in self._objects if k[2] == key[3]]:
                if other in self._objects and not self._objects[other]["metadata"].get(
                        "deletionTimestamp"):
                    self._delete_key(other, "Background")
            self._finish_if_done(key)
            return
        if live["metadata"].get("finalizers"):
            self._mark_deleting(key)
        else:
            self._remove(key)

    def _mark_deleting(self, key: Key, add: str = "") -> None:
        live = self._objects[key]
        meta = live["metadata"]
        if meta.get("deletionTimestamp") and (not add or add in (meta.get("finalizers") or [])):
            return
        before = deep_copy(live)
        if not meta.get("deletionTimestamp"):
            meta["deletionTimestamp"] = rfc3339(self.clock.now())
            meta["deletionGracePeriodSeconds"] = 0
            if "generation" in meta:
                meta["generation"] = int(meta["generation"]) + 1
        if add and add not in (meta.get("finalizers") or []):
            meta["finalizers"] = [*(meta.get("finalizers") or []), add]
        self._bump(live, before)

    def _set_finalizers(self, key: Key, finalizers: builtins.list[str]) -> None:
        live = self._objects[key]
        before = deep_copy(live)
        if finalizers:
            live["metadata"]["finalizers"] = finalizers
        else:
            live["metadata"].pop("finalizers", None)
        if live != before:
            self._bump(live, before)

    def _finish_if_done(self, key: Key) -> None:
        """Remove an object marked for deletion once nothing holds it any more."""
        live = self._objects.get(key)
        if live is None or not live["metadata"].get("deletionTimestamp"):
            return
        if live["metadata"].get("finalizers"):
            return
        if key[:2] == ("", "Namespace") and any(k[2] == key[3] for k in self._objects):
            return
        self._remove(key)

    def _remove(self, key: Key) -> None:
        obj = self._objects.pop(key)
        self._revision += 1
        self._sequence += 1
        final = deep_copy(obj)
        final["metadata"]["resourceVersion"] = str(self._sequence)
        uid = str(obj["metadata"].get("uid"))
        self._gone[uid] = final
        if len(self._gone) > 64:
            self._gone.pop(next(iter(self._gone)))
        self._changed(key)
        self._notify("DELETED", final, obj)
        for removed in self._removal_listeners:
            removed(final)
        # The garbage collector: dependents all of whose owners are gone go too.
        for dependent in self._dependents(uid):
            other = self._objects.get(dependent)
            if other is None or other["metadata"].get("deletionTimestamp"):
                continue
            owners = [str(r.get("uid")) for r in other["metadata"].get("ownerReferences") or []]
            if not any(self._objects.uid(o) is not None for o in owners):
                self._delete_key(dependent, "Background")
        # Owners waiting in foreground deletion for this one.
        for ref in obj["metadata"].get("ownerReferences") or []:
            owner = self._objects.uid(str(ref.get("uid")))
            if owner is not None:
                self._check_foreground(owner)
        if key[2]:
            self._finish_if_done(("", "Namespace", "", key[2]))
        if key[:2] == ("apiextensions.k8s.io", "CustomResourceDefinition"):
            spec = obj.get("spec") or {}
            kind = str((spec.get("names") or {}).get("kind", ""))
            group = str(spec.get("group", ""))
            for instance in builtins.list(self._objects.keys_of_kind(group, kind)):
                if instance in self._objects:
                    self._delete_key(instance, "Background")
            if (group, kind) not in self._initial_kinds:
                self.registry.unregister(group, kind)  # the kind is no longer served
                self._schemas.pop((group, kind), None)

    def _dependents(self, owner_uid: str) -> builtins.list[Key]:
        return self._objects.dependents(owner_uid)

    def _orphan(self, owner_uid: str) -> None:
        for key in self._dependents(owner_uid):
            live = self._objects[key]
            before = deep_copy(live)
            refs = [r for r in live["metadata"].get("ownerReferences") or []
                    if r.get("uid") != owner_uid]
            if refs:
                live["metadata"]["ownerReferences"] = refs
            else:
                live["metadata"].pop("ownerReferences", None)
            self._bump(live, before)

    def _check_foreground(self, key: Key) -> None:
        """An owner in foreground deletion goes once no dependent blocks it."""
        live = self._objects.get(key)
        if live is None or FOREGROUND not in (live["metadata"].get("finalizers") or []):
            return
        uid = str(live["metadata"].get("uid"))
        blocked = any(ref.get("uid") == uid and ref.get("blockOwnerDeletion")
                      for dependent in self._dependents(uid)
                      for ref in self._objects[dependent]["metadata"].get("ownerReferences") or [])
        if blocked:
            return
        self._set_finalizers(key, [f for f in live["metadata"].get("finalizers") or []
                                   if f != FOREGROUND])
        self._finish_if_done(key)

    # --- versions (the owner's no-op fast path) ------------------------------------------

    # What each (apiVersion, kind) read by version resolved to, and each ref's store key with
    # it: trusted only while the registry still serves that very `KindInfo` (a CRD change
    # registers a new one, its removal none). The refs are emptied when they outgrow the store.
    _versions_kinds: dict[tuple[str, str], tuple[KindInfo, tuple[str, str]]] | None = None
    _versions_refs: dict[Key, tuple[Key, KindInfo, tuple[str, str]]] | None = None

    def _served(self, api_version: str, kind: str) -> tuple[KindInfo, tuple[str, str]]:
        """The served `KindInfo` and its (group, kind), cached while the registry still serves
        that very `KindInfo`; raises `Rejected` for a kind not served."""
        kinds = self._versions_kinds
        if kinds is None:
            kinds = self._versions_kinds = {}
        cached = kinds.get((api_version, kind))
        if cached is not None and self.registry._by_gk.get(cached[1]) is cached[0]:
            return cached
        info = self._lookup_kind(api_version, kind)
        if len(kinds) >= 4096:  # names a caller made up cannot grow it without bound
            kinds.clear()
        cached = kinds[(api_version, kind)] = (info, (info.group, info.kind))
        return cached

    def _reads_now(self) -> Reads | None:
        """The reads being recorded on this thread, as `getattr(self._recording, "reads",
        None)` but without raising and catching AttributeError on every call of a thread that
        never began recording (the fast path's common case)."""
        try:
            reads: Reads | None = self._recording.reads
        except AttributeError:
            reads = self._recording.reads = None
        return reads

    def resource_versions(self, refs: Sequence[tuple[str, str, str, str]]
                          ) -> tuple[str | None, ...]:
        """Each (apiVersion, kind, namespace, name)'s stored `metadata.resourceVersion` (None
        when absent), without copying anything; each read recorded as `get` records it, and
        an unserved kind raised as `get` raises it."""
        reads = self._reads_now()
        recorded = reads.dependencies if reads is not None else None
        objects, served = self._objects, self.registry._by_gk
        keys = self._versions_refs
        if keys is None or len(keys) > 2 * len(objects) + 1024:
            keys = self._versions_refs = {}
        out: builtins.list[str | None] = []
        for ref in refs:
            cached = keys.get(ref)
            if cached is None or served.get(cached[2]) is not cached[1]:
                info, group_kind = self._served(ref[0], ref[1])
                cached = keys[ref] = ((info.group, info.kind,
                                       ref[2] if info.namespaced else "", ref[3]),
                                      info, group_kind)
            if recorded is not None:
                recorded.add(("key", *cached[0]))
            found = objects.get(cached[0])
            out.append(None if found is None else found["metadata"].get("resourceVersion"))
        return tuple(out)

    def kind_version(self, api_version: str, kind: str) -> int:
        """The revision at which an object of this kind (any namespace) was last created,
        changed or deleted: equal only while none was. Recorded as a `list` of the kind."""
        _, (group, kind_name) = self._served(api_version, kind)
        reads = self._reads_now()
        if reads is not None:
            reads.dependencies.add(("kind", group, kind_name, "*", ""))
        return self._kind_changes.get((group, kind_name, "*"), 0)

class _Registry(KindRegistry):
    def unregister(self, group: str, kind: str) -> None:
        self._by_gk.pop((group, kind), None)


_NO_LABELS: Mapping[str, str] = {}


class _ObjectTable(dict[Key, Obj]):
    """Objects by key, with indexes kept current on every write, so that a read costs what it
    returns, not what is stored: per kind, its keys kept sorted (a namespace's keys are one
    slice of them); per (kind, label, value), the keys carrying that label; by uid; by the uid
    of each ownerReference (the garbage collector's dependents).

    Labels and owners are re-indexed by `reindex` (the cluster calls it on every write: objects
    are changed in place)."""

    def __init__(self) -> None:
        super().__init__()
        self._by_kind: dict[tuple[str, str], builtins.list[Key]] = {}
        self._by_uid: dict[str, Key] = {}
        self._by_label: dict[tuple[str, str, str, str], set[Key]] = {}
        self._labels: dict[Key, dict[str, str]] = {}
        self._dropped: dict[Key, set[tuple[str, str]]] = {}
        self._owners: dict[Key, tuple[str, ...]] = {}
        self._by_owner: dict[str, set[Key]] = {}
        # Per key, the stored object's serialization with the resourceVersion it was made at:
        # every write of a stored object bumps its resourceVersion (or replaces the object,
        # which drops the entry), so a matching version means the bytes are still its content.
        self._blobs: dict[Key, tuple[Any, bytes]] = {}
        self._blob_bytes = 0  # their total size, kept within `blob_budget`
        self.blob_budget = BLOB_BUDGET_BYTES
        # Per key, the stored object's `marshal_size` without its status, with the
        # resourceVersion it holds for (valid while that is the stored one, as for the blobs):
        # a status write bounds the whole object's size by its parts and measures its new
        # status only, not the whole object on every write.
        self._rest_sizes: dict[Key, tuple[Any, int]] = {}

    def _drop_blob(self, key: Key) -> None:
        dropped = self._blobs.pop(key, None)
        if dropped is not None:
            self._blob_bytes -= len(dropped[1])

    def _forget(self, key: Key) -> None:
        """Drop what is kept about the object at `key` (it is replaced or removed)."""
        self._drop_blob(key)
        self._rest_sizes.pop(key, None)

    def rest_size(self, key: Key, obj: Obj) -> int | None:
        """`marshal_size` of `obj` (stored at `key`) without its status: remembered for its
        resourceVersion, else measured now; None for data that is not JSON-like."""
        known = self._rest_sizes.get(key)
        if known is not None and known[0] == obj["metadata"].get("resourceVersion"):
            return known[1]
        return marshal_size({k: v for k, v in obj.items() if k != "status"})

    def note_rest_size(self, key: Key, obj: Obj, size: int) -> None:
        """Remember `size` as `rest_size` of `obj` (stored at `key`) at its resourceVersion."""
        self._rest_sizes[key] = (obj["metadata"].get("resourceVersion"), size)

    def __setitem__(self, key: Key, value: Obj) -> None:
        if key not in self:
            bisect.insort(self._by_kind.setdefault((key[0], key[1]), []), key)
        self._forget(key)
        super().__setitem__(key, value)
        uid = (value.get("metadata") or {}).get("uid")
        if uid:
            self._by_uid[str(uid)] = key
        self.reindex(key)

    def __delitem__(self, key: Key) -> None:
        self.pop(key)

    def pop(self, key: Key, *default: Any) -> Any:
        if key in self:
            keys = self._by_kind.get((key[0], key[1]), [])
            at = bisect.bisect_left(keys, key)
            if at < len(keys) and keys[at] == key:
                del keys[at]
            uid = (self[key].get("metadata") or {}).get("uid")
            if uid and self._by_uid.get(str(uid)) == key:
                del self._by_uid[str(uid)]
            self._index_labels(key, {})
            self._index_owners(key, ())
            self._forget(key)
        return super().pop(key, *default)

    def copy_of(self, key: Key, obj: Obj) -> Obj:
        """A deep copy of `obj`. When `obj` is the object stored at `key`, a copy of its
        version's serialization, made at the first copy of that version: the objects a
        simulation reads are mostly read many times between two writes (a get then costs one
        `marshal.loads`, not a `dumps` and a `loads`)."""
        if dict.get(self, key) is not obj:
            return deep_copy(obj)
        version = obj["metadata"].get("resourceVersion")
        cached = self._blobs.get(key)
        if cached is None or cached[0] != version:
            try:
                cached = (version, marshal.dumps(obj))
            except ValueError:  # not JSON-like data: `deep_copy` copies it the long way
                return deep_copy(obj)
            self._drop_blob(key)
            if self._blob_bytes + len(cached[1]) > self.blob_budget:
                self._blobs.clear()
                self._blob_bytes = 0
            self._blobs[key] = cached
            self._blob_bytes += len(cached[1])
        copied: Obj = marshal.loads(cached[1])
        return copied

    def private_copy(self, key: Key, obj: Obj) -> Obj:
        """A deep copy of `obj` (stored at `key`): from its version's serialization when one is
        kept (`copy_of` made it for a read), else `deep_copy`, keeping nothing: for a copy of
        the state before a write (the version it is of is replaced at once)."""
        cached = self._blobs.get(key)
        if cached is not None and dict.get(self, key) is obj and \
                cached[0] == obj["metadata"].get("resourceVersion"):
            copied: Obj = marshal.loads(cached[1])
            return copied
        return deep_copy(obj)

    def reindex(self, key: Key) -> None:
        """Bring the label and owner indexes up to date with the stored object."""
        obj = self.get(key)
        meta = (obj.get("metadata") or {}) if obj is not None else {}
        labels = meta.get("labels") or {}
        self._index_labels(key, labels if isinstance(labels, dict) else {})
        refs = meta.get("ownerReferences") or []
        self._index_owners(key, tuple(sorted({str(r.get("uid")) for r in refs
                                              if isinstance(r, dict) and r.get("uid")}))
                           if isinstance(refs, list) else ())

    def _index_owners(self, key: Key, uids: tuple[str, ...]) -> None:
        old = self._owners.get(key, ())
        if old == uids:
            return
        for uid in old:
            held = self._by_owner.get(uid)
            if held is not None:
                held.discard(key)
                if not held:
                    del self._by_owner[uid]
        for uid in uids:
            self._by_owner.setdefault(uid, set()).add(key)
        if uids:
            self._owners[key] = uids
        else:
            self._owners.pop(key, None)

    def dependents(self, owner_uid: str) -> builtins.list[Key]:
        """The keys of the objects with an ownerReference to `owner_uid`, in order."""
        return sorted(self._by_owner.get(owner_uid, ()))

    def _index_labels(self, key: Key, given: Mapping[str, Any]) -> None:
        old = self._labels.get(key, {})
        labels = {str(k): str(v) for k, v in given.items()}
        if old == labels:
            return
        group, kind = key[0], key[1]
        for label, value in old.items():
            if labels.get(label) != value:
                self._dropped.setdefault(key, set()).add((label, value))
                entry = (group, kind, label, value)
                holders = self._by_label.get(entry)
                if holders is not None:
                    holders.discard(key)
                    if not holders:
                        del self._by_label[entry]
        for label, value in labels.items():
            if old.get(label) != value:
                self._by_label.setdefault((group, kind, label, value), set()).add(key)
        if labels:
            self._labels[key] = labels
        else:
            self._labels.pop(key, None)

    def labels_of(self, key: Key) -> Mapping[str, str]:
        """The stored object's labels as indexed (not to be changed)."""
        return self._labels.get(key, _NO_LABELS)

    def take_dropped_labels(self, key: Key) -> LabelPairs:
        """The (label, value) pairs the object stopped carrying since the last call."""
        dropped = self._dropped.pop(key, None)
        return frozenset(dropped) if dropped else frozenset()

    def uid(self, uid: str) -> Key | None:
        """The key of the object with this uid, if it exists."""
        return self._by_uid.get(uid)

    def keys_of_kind(self, group: str, kind: str,
                     namespace: str | None = None) -> Sequence[Key]:
        """The keys of a kind (in one namespace, if given), in order; a view to iterate at
        once, not to keep (it changes with the next write)."""
        keys = self._by_kind.get((group, kind), [])
        if namespace is None:
            return keys
        lo = bisect.bisect_left(keys, (group, kind, namespace, ""))
        hi = bisect.bisect_left(keys, (group, kind, namespace + "\x00", ""), lo)
        return keys[lo:hi]

    def keys_labelled(self, group: str, kind: str, labels: Mapping[str, str],
                      namespace: str | None = None) -> builtins.list[Key]:
        """The keys of a kind carrying every one of `labels`, in order."""
        sets = [self._by_label.get((group, kind, str(k), str(v)), set())
                for k, v in labels.items()]
        sets.sort(key=len)
        found = set(sets[0]).intersection(*sets[1:]) if sets else set()
        return sorted(k for k in found if namespace is None or k[2] == namespace)


def _without_status(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """Status goes through its own subresource; metadata is checked by the server itself."""
    props = dict(schema.get("properties") or {})
    props.pop("status", None)
    props["metadata"] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    # Every object may carry apiVersion and kind, whether the CRD's schema lists them or not.
    props.setdefault("apiVersion", {"type": "string"})
    props.setdefault("kind", {"type": "string"})
    out = dict(schema)
    out["properties"] = props
    return out


def _uid(name: str) -> str:
    """`str(uuid.uuid5(_UID_NAMESPACE, name))` without building a `UUID` object: one per create
    and per new Event, where `uuid.uuid5` was more than half of an Event's cost."""
    digest = bytearray(hashlib.sha1(_UID_NAMESPACE_BYTES + name.encode(),
                                    usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # the RFC 4122 variant
    hexed = digest.hex()
    return f"{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:]}"


def _status_fields(status: Any) -> FieldSet:
    if not isinstance(status, Mapping):
        return frozenset()
    return frozenset(("f:status", *p[1:]) for p in fields_of({"status_": status}))


def _has_generation(info: KindInfo) -> bool:
    return (info.group, info.kind) in GENERATION_KINDS or (
        (info.group, info.kind) not in BUILTIN_GROUP_KINDS)


def _micro(timestamp: str) -> str:
    """An RFC 3339 time as a MicroTime (`eventTime`, `series.lastObservedTime`)."""
    return timestamp[:-1] + ".000000Z" if timestamp.endswith("Z") and "." not in timestamp \
        else timestamp


def _seconds(timestamp: str) -> float:
    """An RFC 3339 time as seconds since the epoch (0 when it is not one: expires first)."""
    try:
        return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _serial(event_name: str) -> int:
    """The serial number at the end of an Event's name (`<object>.<hex serial>`), or 0."""
    try:
        return int(event_name.rpartition(".")[2], 16)
    except ValueError:
        return 0


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _without(obj: Obj, field: str) -> Obj:
    return {k: v for k, v in obj.items() if k != field}


def _body(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def _dotted(path: FieldPath) -> str:
    out = ""
    for step in path:
        if step.startswith("f:"):
            out += "." + step[2:]
        elif step.startswith("k:"):
            out += "[" + step[2:] + "]"
    return out


def _remove_path(obj: Obj, path: FieldPath) -> None:
    """Remove one owned field (or, for an item path, the list item) from `obj`."""
    target = path[:-1] if path[-1] == ITEM else path
    if len(target) >= 2 and target[-2].startswith("k:") and target[-1][2:] in json.loads(
            target[-2][2:]):
        return  # an item's merge key goes only with the item itself
    present, parent = get_path(obj, target[:-1])
    if not present:
        return
    last = target[-1]
    if last.startswith("f:") and isinstance(parent, dict):
        parent.pop(last[2:], None)
    elif last.startswith("k:") and path[-1] == ITEM:
        index = find_item(parent, last)
        if index is not None:
            del parent[index]


def _changing_fields(tree: Mapping[str, Any], config: Any, live: Any) -> builtins.list[FieldPath]:
    """The fields of an apply that it changes: each leaf path of `tree` (`to_tree` of the
    configuration's `fields_of`; item paths left out) present in `live` whose value there is
    not equal to the configuration's (None where the configuration lacks it), as `get_path` on
    each path would find them; walked once down both objects, a subtree equal in both skipped
    whole (every field under it is equal), one absent from `live` too (nothing under it is
    present)."""
    out: builtins.list[FieldPath] = []

    def walk(node: Mapping[str, Any], in_config: bool, cfg: Any, have: Any,
             prefix: FieldPath) -> None:
        for step, sub in node.items():
            if step == ITEM:
                continue
            present, live_value = path_step(have, step)
            if not present:
                continue
            found, cfg_value = path_step(cfg, step) if in_config else (False, None)
            if found and cfg_value == live_value:
                continue
            if sub:
                walk(sub, found, cfg_value, live_value, (*prefix, step))
            elif live_value != cfg_value:
                out.append((*prefix, step))

    walk(tree, True, config, live, ())
    return out


def _merge(live: dict[str, Any], config: Mapping[str, Any]) -> None:
    """Merge an applied configuration into the live object: maps field by field, associative
    lists item by item (by merge key), everything else replaced."""
    for key, value in config.items():
        if type(value) in _SCALARS:  # most values: stored as they are (see `_fresh`)
            live[key] = value
            continue
        have = live.get(key)
        if isinstance(value, Mapping) and value and isinstance(have, dict):
            _merge(have, value)
        elif isinstance(value, list) and isinstance(have, list) and (mk := merge_key(value)) \
                and all(isinstance(i, dict) and mk in i for i in have):
            for item in value:
                match = next((h for h in have if h.get(mk) == item[mk]), None)
                if match is None:
                    have.append(_fresh(item))
                else:
                    _merge(match, item)
        else:
            live[key] = _fresh(value)


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _fresh(value: Any) -> Any:
    """A copy of a configuration value to store: a map or list copied sharing nothing
    (`unshared_copy`'s marshal format 2), a scalar as `copy.deepcopy` gives it (a JSON scalar
    is immutable: itself)."""
    if type(value) in _SCALARS:
        return value
    if isinstance(value, (dict, list)):
        try:
            return marshal.loads(marshal.dumps(value, 2))
        except ValueError:
            pass
    return copy.deepcopy(value)


def _refuse(obj: Mapping[str, Any], problems: Sequence[Problem]) -> None:
    """Raise the API server's error for the first stage of `problems` (decode, validate, store)."""
    if problems:
        raise Rejected(rejection_message(obj, list(problems)), field=problems[0].field or None)
