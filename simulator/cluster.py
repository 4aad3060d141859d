"""An in-memory Kubernetes API server behind the `Backend` protocol.

It keeps what a real API server keeps and enforces what it enforces, so the product cannot rely
on anything a cluster would not give it: uid, resourceVersion, generation (bumped on spec changes
only), creationTimestamp, namespaces that must exist, kinds that must be served (CRDs register
new ones), status written only through the status subresource, label selectors, ownerReference
garbage collection, and events.
"""

from __future__ import annotations

import builtins
import copy
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from reconciler.backends.base import FIELD_MANAGER
from reconciler.engine.clock import Clock, rfc3339
from reconciler.model.errors import NotFound, Rejected
from reconciler.model.kinds import BUILTIN_KINDS, KindInfo, KindRegistry, kind_info_from_crd
from reconciler.model.objects import GroupVersionKind, Obj, describe
from reconciler.model.schema import validate

Key = tuple[str, str, str, str]  # group, kind, namespace, name
_SERVER_META = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields")
_UID_NAMESPACE = uuid.UUID("8f0c9c8e-8d2e-4d36-9d64-6a1a3c6f2b10")


class InMemoryCluster:
    def __init__(self, clock: Clock, kinds: Iterable[KindInfo] = BUILTIN_KINDS) -> None:
        self.clock = clock
        self.registry = KindRegistry(kinds)
        self._schemas: dict[tuple[str, str], Mapping[str, Any]] = {}
        self._objects: dict[Key, Obj] = {}
        self._events: list[Obj] = []
        self._revision = 0
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
        for (group, k, ns, _), obj in sorted(self._objects.items()):
            if group != info.group or k != info.kind:
                continue
            if namespace is not None and info.namespaced and ns != namespace:
                continue
            if labels and not _matches(obj, labels):
                continue
            out.append(self._out(obj, api_version))
        return out

    def apply(self, obj: Obj, field_manager: str = FIELD_MANAGER, force: bool = False) -> Obj:
        api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
        info = self.kind_info(api_version, kind)
        desired = copy.deepcopy(obj)
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
        schema = self._schemas.get((info.group, info.kind))
        if schema is not None:
            problems = validate(desired, schema)
            if problems:
                field, message = problems[0]
                raise Rejected(f"{info.kind}.{info.group} \"{name}\" is invalid: {field}: "
                               f"{message}", field=field)
        key = self._key(info, namespace, name)
        live = self._objects.get(key)
        if live is None:
            live = self._create(desired, info, api_version, field_manager)
        else:
            self._update(live, desired)
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
        status = copy.deepcopy(obj.get("status"))
        if live.get("status") != status:
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
        self._collect_garbage(str(obj["metadata"]["uid"]))
        if info.kind == "Namespace":
            for other in [k for k in self._objects if k[2] == name]:
                self._objects.pop(other, None)

    def emit_event(
        self, involved: Obj, type_: str, reason: str, message: str, source: str = FIELD_MANAGER
    ) -> None:
        meta = involved.get("metadata") or {}
        now = rfc3339(self.clock.now())
        for event in reversed(self._events):
            ref = event["involvedObject"]
            if (ref.get("uid") == meta.get("uid") and event["reason"] == reason
                    and event["message"] == message):
                event["count"] += 1
                event["lastTimestamp"] = now
                return
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
        return [copy.deepcopy(e) for e in self._events]

    # --- simulator extras ----------------------------------------------------------------

    @property
    def revision(self) -> int:
        """Grows with every write; equal revisions mean nothing changed in between."""
        return self._revision

    def all_objects(self) -> builtins.list[Obj]:
        return [copy.deepcopy(o) for _, o in sorted(self._objects.items())]

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
        self._revision = max(self._revision, int(snapshot.get("revision") or 0))

    # --- internals -----------------------------------------------------------------------

    @staticmethod
    def _key(info: KindInfo, namespace: str, name: str) -> Key:
        return (info.group, info.kind, namespace if info.namespaced else "", name)

    def _out(self, obj: Obj, api_version: str) -> Obj:
        out = copy.deepcopy(obj)
        out["apiVersion"] = api_version
        return out

    def _bump(self, obj: Obj) -> None:
        self._revision += 1
        obj["metadata"]["resourceVersion"] = str(self._revision)

    def _create(self, desired: Obj, info: KindInfo, api_version: str, manager: str) -> Obj:
        meta = desired["metadata"]
        for field in _SERVER_META:
            meta.pop(field, None)
        key = self._key(info, str(meta.get("namespace") or ""), str(meta["name"]))
        meta["uid"] = str(uuid.uuid5(_UID_NAMESPACE, f"{key}/{self._revision}"))
        meta["generation"] = 1
        meta["creationTimestamp"] = rfc3339(self.clock.now())
        meta["managedFields"] = [{"manager": manager, "operation": "Apply",
                                  "apiVersion": api_version,
                                  "time": rfc3339(self.clock.now())}]
        self._objects[key] = desired
        self._bump(desired)
        return desired

    def _update(self, live: Obj, desired: Obj) -> None:
        before = copy.deepcopy(live)
        meta, live_meta = desired["metadata"], live["metadata"]
        for field in ("labels", "annotations"):
            if field in meta:
                merged = dict(live_meta.get(field) or {})
                merged.update(meta[field] or {})
                live_meta[field] = merged
        if "ownerReferences" in meta:
            live_meta["ownerReferences"] = meta["ownerReferences"]
        spec_changed = False
        for field, value in desired.items():
            if field in ("metadata", "status", "apiVersion", "kind"):
                continue
            if live.get(field) != value:
                live[field] = copy.deepcopy(value)
                spec_changed = True
        if spec_changed:
            live_meta["generation"] = int(live_meta.get("generation", 1)) + 1
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
            self._collect_garbage(str(obj["metadata"]["uid"]))


def _without_status(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """Status goes through its own subresource; metadata is checked by the server itself."""
    props = dict(schema.get("properties") or {})
    props.pop("status", None)
    props["metadata"] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    out = dict(schema)
    out["properties"] = props
    return out


def _matches(obj: Obj, labels: Mapping[str, str]) -> bool:
    have = (obj.get("metadata") or {}).get("labels") or {}
    return all(have.get(k) == v for k, v in labels.items())
