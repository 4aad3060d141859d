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
"""

from __future__ import annotations

import builtins
import copy
import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from reconciler.apply.conflicts import ApplyConflict, FieldConflict
from reconciler.backends.base import FIELD_MANAGER
from reconciler.diff.fieldsets import (
    ITEM,
    FieldPath,
    FieldSet,
    covers,
    fields_of,
    find_item,
    from_tree,
    get_path,
    merge_key,
    to_tree,
)
from reconciler.diff.normalize import fold_string_data
from reconciler.engine.clock import Clock, rfc3339
from reconciler.model.apivalidation import (
    Problem,
    object_problems,
    rejection_message,
    size_problems,
)
from reconciler.model.errors import NotFound, Rejected
from reconciler.model.kinds import BUILTIN_KINDS, KindInfo, KindRegistry, kind_info_from_crd
from reconciler.model.objects import GroupVersionKind, Obj, deep_copy, describe
from reconciler.model.schema import validate
from reconciler.model.validation import admission_problems, webhook_for

Key = tuple[str, str, str, str]  # group, kind, namespace, name
_SERVER_META = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields")
_UID_NAMESPACE = uuid.UUID("8f0c9c8e-8d2e-4d36-9d64-6a1a3c6f2b10")


class InMemoryCluster:
    def __init__(self, clock: Clock, kinds: Iterable[KindInfo] = BUILTIN_KINDS) -> None:
        self.clock = clock
        self.registry = KindRegistry(kinds)
        self._schemas: dict[tuple[str, str], Mapping[str, Any]] = {}
        self._objects = _ObjectTable()
        self._events: list[Obj] = []
        self._event_index: dict[tuple[str, str, str], int] = {}
        self._revision = 0
        # The change feed: when each object, and each kind (per namespace), last changed.
        self._key_changes: dict[Key, int] = {}
        self._kind_changes: dict[tuple[str, str, str], int] = {}
        for ns in ("default", "kube-system", "kube-public"):
            self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

    # --- Backend -------------------------------------------------------------------------

    def kind_info(self, api_version: str, kind: str) -> KindInfo:
        info = self.registry.lookup(GroupVersionKind.parse(api_version, kind))
        if info is None:
            raise Rejected(
                f"no matches for kind \"{kind}\" in version \"{api_version}\": the cluster does "
                "not serve this kind (apply its CustomResourceDefinition first)",
                field="kind",
            )
        return info

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        info = self.kind_info(api_version, kind)
        found = self._objects.get(self._key(info, namespace, name))
        return self._out(found, api_version) if found is not None else None

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> list[Obj]:
        info = self.kind_info(api_version, kind)
        out = []
        for key in self._objects.keys_of_kind(info.group, info.kind):
            obj = self._objects[key]
            ns = key[2]
            if namespace is not None and info.namespaced and ns != namespace:
                continue
            if labels and not _matches(obj, labels):
                continue
            out.append(self._out(obj, api_version))
        return out

    def apply(self, obj: Obj, field_manager: str = FIELD_MANAGER, force: bool = False) -> Obj:
        api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
        info = self.kind_info(api_version, kind)
        desired = deep_copy(obj)
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
            if ("", "Namespace", "", namespace) not in self._objects:
                raise NotFound(f"namespaces \"{namespace}\" not found (creating {describe(obj)})")
        else:
            metadata.pop("namespace", None)
            namespace = ""
        # What kube-apiserver itself refuses (decoding, object meta, the kind's own rules), before
        # the CRD schema and the webhooks; stringData is checked as written, before it is folded.
        _refuse(desired, object_problems(desired, namespaced=info.namespaced))
        if kind == "Secret" and api_version == "v1" and "stringData" in desired:
            desired = fold_string_data(desired)
        schema = self._schemas.get((info.group, info.kind))
        if schema is not None:
            problems = validate(desired, schema)
            if problems:
                field, message = problems[0]
                raise Rejected(f"{info.kind}.{info.group} \"{name}\" is invalid: {field}: "
                               f"{message}", field=field)
        # Cartographer's validating webhooks, as a cluster running Cartographer has them.
        admission = admission_problems(desired)
        if admission:
            webhook = webhook_for(info.kind)
            raise Rejected(f"admission webhook \"{webhook}\" denied the request: "
                           f"{admission[0].message}", field=admission[0].field)
        key = self._key(info, namespace, name)
        live = self._objects.get(key)
        if live is None:
            live = self._create(desired, info, api_version, field_manager)
        else:
            self._server_side_apply(live, desired, info, api_version, field_manager, force)
        if info.kind == "CustomResourceDefinition":
            self._register_crd(live)
        return self._out(live, api_version)

    def update_status(self, obj: Obj) -> Obj:
        api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
        info = self.kind_info(api_version, kind)
        meta = obj.get("metadata") or {}
        key = self._key(info, str(meta.get("namespace") or ""), str(meta.get("name", "")))
        live = self._objects.get(key)
        if live is None:
            raise NotFound(f"{describe(obj)} not found")
        status = deep_copy(obj["status"]) if isinstance(obj.get("status"), dict) else (
            copy.deepcopy(obj.get("status")))
        if live.get("status") != status:
            # The status subresource keeps metadata and spec; only the size can become too large.
            _refuse(live, size_problems({**live, "status": status}))
            if status is None:
                live.pop("status", None)
            else:
                live["status"] = status
            self._bump(live)
        return self._out(live, api_version)

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        info = self.kind_info(api_version, kind)
        key = self._key(info, namespace, name)
        obj = self._objects.pop(key, None)
        if obj is None:
            raise NotFound(f"{kind}/{namespace}/{name} not found")
        self._revision += 1
        self._changed(key)
        self._collect_garbage(str(obj["metadata"]["uid"]))
        if info.kind == "Namespace":
            for other in [k for k in self._objects if k[2] == name]:
                self._objects.pop(other, None)
                self._revision += 1
                self._changed(other)

    def emit_event(
        self, involved: Obj, type_: str, reason: str, message: str, source: str = FIELD_MANAGER
    ) -> None:
        meta = involved.get("metadata") or {}
        now = rfc3339(self.clock.now())
        # The same event again only counts up, as the API server's event aggregation does.
        same = (str(meta.get("uid")), reason, message)
        index = self._event_index.get(same)
        if index is not None:
            self._events[index]["count"] += 1
            self._events[index]["lastTimestamp"] = now
            return
        self._event_index[same] = len(self._events)
        self._events.append({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"namespace": meta.get("namespace") or "default",
                         "name": f"{meta.get('name')}.{len(self._events) + 1:06x}"},
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
            "count": 1,
            "firstTimestamp": now,
            "lastTimestamp": now,
        })

    def events(self) -> Sequence[Obj]:
        return [deep_copy(e) for e in self._events]

    # --- simulator extras ----------------------------------------------------------------

    @property
    def revision(self) -> int:
        """Grows with every write; equal revisions mean nothing changed in between."""
        return self._revision

    def all_objects(self) -> builtins.list[Obj]:
        return [deep_copy(o) for _, o in sorted(self._objects.items())]

    def edit(self, api_version: str, kind: str, namespace: str, name: str,
             change: Callable[[Obj], None], field_manager: str = "kubectl-edit") -> Obj:
        """Change an object as a person would with `kubectl edit` (an Update, not an Apply).

        The editing manager takes ownership of every field it changed or added, without
        conflicts; fields it removed lose their owners.
        """
        info = self.kind_info(api_version, kind)
        live = self._objects.get(self._key(info, namespace, name))
        if live is None:
            raise NotFound(f"{kind}/{namespace}/{name} not found")
        before = deep_copy(live)
        after = deep_copy(live)
        change(after)
        after["metadata"] = {**after.get("metadata", {}),
                             **{k: before["metadata"][k] for k in _SERVER_META
                                if k in before["metadata"]}}
        if "status" in before:
            after["status"] = before["status"]
        _refuse(after, object_problems(after, namespaced=info.namespaced))
        old, new = fields_of(before), fields_of(after)
        # A list item belongs to whoever added it; changing a field inside it is not adding it.
        changed = {p for p in new if (get_path(after, p) != get_path(before, p)) if p[-1] != ITEM
                   or not get_path(before, p)[0]}
        gone = old - new
        entries = []
        mine: set[FieldPath] = set(changed)
        for entry in before["metadata"].get("managedFields") or []:
            fields = from_tree(entry.get("fieldsV1"))
            if entry.get("manager") == field_manager and entry.get("operation") == "Update":
                mine |= fields - gone
                continue
            rest = fields - changed - gone
            if rest:
                entries.append({**entry, "fieldsV1": to_tree(rest)} if rest != fields else entry)
        if mine:
            entries.append(self._managed_entry(field_manager, "Update", api_version,
                                               frozenset(mine)))
        after["metadata"]["managedFields"] = entries
        live.clear()
        live.update(after)
        self._commit(before, live)
        return self._out(live, api_version)

    def register_schema(self, group: str, kind: str, schema: Mapping[str, Any]) -> None:
        self._schemas[(group, kind)] = schema

    def snapshot(self) -> dict[str, Any]:
        return {
            "revision": self._revision,
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
        self._events = [copy.deepcopy(e) for e in snapshot.get("events") or []]
        self._event_index = {
            (str(e["involvedObject"].get("uid")), str(e["reason"]), str(e["message"])): i
            for i, e in enumerate(self._events)
        }
        self._revision = max(self._revision, int(snapshot.get("revision") or 0))

    # --- internals -----------------------------------------------------------------------

    @staticmethod
    def _key(info: KindInfo, namespace: str, name: str) -> Key:
        return (info.group, info.kind, namespace if info.namespaced else "", name)

    def _out(self, obj: Obj, api_version: str) -> Obj:
        out = deep_copy(obj)
        out["apiVersion"] = api_version
        return out

    def _bump(self, obj: Obj) -> None:
        self._revision += 1
        obj["metadata"]["resourceVersion"] = str(self._revision)
        info = self.registry.lookup(GroupVersionKind.of(obj))
        if info is not None:
            meta = obj["metadata"]
            self._changed(self._key(info, str(meta.get("namespace") or ""), str(meta["name"])))

    def _changed(self, key: Key) -> None:
        self._key_changes[key] = self._revision
        group, kind, namespace, _ = key
        self._kind_changes[(group, kind, namespace)] = self._revision
        self._kind_changes[(group, kind, "*")] = self._revision

    # --- change feed (reconciler.engine.tracking.ChangeFeed) -----------------------------

    def last_change(self, group: str, kind: str, namespace: str, name: str) -> int:
        info = self.registry.lookup_group_kind(group, kind)
        ns = namespace if info is None or info.namespaced else ""
        return self._key_changes.get((group, kind, ns, name), 0)

    def names(self, api_version: str, kind: str) -> builtins.list[tuple[str, str]]:
        """(namespace, name) of every object of a kind, without copying any of them."""
        info = self.kind_info(api_version, kind)
        return [(key[2], key[3]) for key in self._objects.keys_of_kind(info.group, info.kind)]

    def last_kind_change(self, group: str, kind: str, namespace: str | None) -> int:
        return self._kind_changes.get((group, kind, "*" if namespace is None else namespace), 0)

    def _create(self, desired: Obj, info: KindInfo, api_version: str, manager: str) -> Obj:
        meta = desired["metadata"]
        for field in _SERVER_META:
            meta.pop(field, None)
        key = self._key(info, str(meta.get("namespace") or ""), str(meta["name"]))
        meta["uid"] = str(uuid.uuid5(_UID_NAMESPACE, f"{key}/{self._revision}"))
        meta["generation"] = 1
        meta["creationTimestamp"] = rfc3339(self.clock.now())
        meta["managedFields"] = [self._managed_entry(manager, "Apply", api_version,
                                                     fields_of(desired))]
        _refuse(desired, size_problems(desired))
        self._objects[key] = desired
        self._bump(desired)
        return desired

    def _managed_entry(self, manager: str, operation: str, api_version: str,
                       fields: FieldSet) -> Obj:
        return {"manager": manager, "operation": operation, "apiVersion": api_version,
                "time": rfc3339(self.clock.now()), "fieldsType": "FieldsV1",
                "fieldsV1": to_tree(fields)}

    def _server_side_apply(self, live: Obj, config: Obj, info: KindInfo, api_version: str,
                           manager: str, force: bool) -> None:
        for field in _SERVER_META:
            config["metadata"].pop(field, None)
        entries = list(live["metadata"].get("managedFields") or [])
        mine_at = next((i for i, e in enumerate(entries)
                        if e.get("manager") == manager and e.get("operation") == "Apply"), None)
        mine = from_tree(entries[mine_at].get("fieldsV1")) if mine_at is not None else frozenset()
        others = {i: from_tree(e.get("fieldsV1")) for i, e in enumerate(entries) if i != mine_at}
        new = fields_of(config)
        taken: set[FieldPath] = set()
        taken_from: set[int] = set()
        conflicts: list[FieldConflict] = []
        for path in sorted(new):
            if path[-1] == ITEM:
                continue
            present, value = get_path(live, path)
            if not present or value == get_path(config, path)[1]:
                continue
            for i, fields in others.items():
                if path in fields:
                    conflicts.append(FieldConflict(_dotted(path), str(entries[i].get("manager"))))
                    taken.add(path)
                    taken_from.add(i)
        if conflicts and not force:
            raise ApplyConflict(describe(live), manager, conflicts)
        others = {i: fields - taken for i, fields in others.items()}
        still_owned: FieldSet = frozenset().union(*others.values()) if others else frozenset()
        dropped = [p for p in mine - new
                   if not covers(p[:-1] if p[-1] == ITEM else p, still_owned)]
        before = deep_copy(live)
        # Whole list items first; then leaves (a leaf under a removed item is already gone).
        for path in sorted(dropped, key=lambda p: (p[-1] != ITEM, -len(p))):
            _remove_path(live, path)
        _merge(live, {k: v for k, v in config.items() if k not in ("apiVersion", "kind")})
        mine_entry = self._managed_entry(manager, "Apply", api_version, new)
        if mine_at is not None and entries[mine_at].get("fieldsV1") == mine_entry["fieldsV1"]:
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
        problems = object_problems(live, namespaced=info.namespaced)
        if problems:
            live.clear()
            live.update(before)
            _refuse(live, problems)
        self._commit(before, live)

    def _commit(self, before: Obj, live: Obj) -> None:
        """Bump generation on a spec change and resourceVersion on any change."""
        if _body(live) != _body(before):
            live["metadata"]["generation"] = int(live["metadata"].get("generation", 1)) + 1
        if live != before:
            self._bump(live)

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

    def _collect_garbage(self, owner_uid: str) -> None:
        dependents = [
            key for key, obj in self._objects.items()
            if any(ref.get("uid") == owner_uid
                   for ref in (obj["metadata"].get("ownerReferences") or []))
        ]
        for key in dependents:
            obj = self._objects.pop(key)
            self._revision += 1
            self._changed(key)
            self._collect_garbage(str(obj["metadata"]["uid"]))


class _ObjectTable(dict[Key, Obj]):
    """Objects by key, with an index by kind so a list does not scan (and sort) every object."""

    def __init__(self) -> None:
        super().__init__()
        self._by_kind: dict[tuple[str, str], set[Key]] = {}

    def __setitem__(self, key: Key, value: Obj) -> None:
        super().__setitem__(key, value)
        self._by_kind.setdefault((key[0], key[1]), set()).add(key)

    def __delitem__(self, key: Key) -> None:
        super().__delitem__(key)
        self._by_kind.get((key[0], key[1]), set()).discard(key)

    def pop(self, key: Key, *default: Any) -> Any:
        if key in self:
            self._by_kind.get((key[0], key[1]), set()).discard(key)
        return super().pop(key, *default)

    def keys_of_kind(self, group: str, kind: str) -> builtins.list[Key]:
        return sorted(self._by_kind.get((group, kind), ()))


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


def _matches(obj: Obj, labels: Mapping[str, str]) -> bool:
    have = (obj.get("metadata") or {}).get("labels") or {}
    return all(have.get(k) == v for k, v in labels.items())


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


def _merge(live: dict[str, Any], config: Mapping[str, Any]) -> None:
    """Merge an applied configuration into the live object: maps field by field, associative
    lists item by item (by merge key), everything else replaced."""
    for key, value in config.items():
        have = live.get(key)
        if isinstance(value, Mapping) and value and isinstance(have, dict):
            _merge(have, value)
        elif isinstance(value, list) and isinstance(have, list) and (mk := merge_key(value)) \
                and all(isinstance(i, dict) and mk in i for i in have):
            for item in value:
                match = next((h for h in have if h.get(mk) == item[mk]), None)
                if match is None:
                    have.append(copy.deepcopy(item))
                else:
                    _merge(match, item)
        else:
            live[key] = copy.deepcopy(value)


def _refuse(obj: Mapping[str, Any], problems: Sequence[Problem]) -> None:
    """Raise the API server's error for the first stage of `problems` (decode, validate, store)."""
    if problems:
        raise Rejected(rejection_message(obj, list(problems)), field=problems[0].field or None)
