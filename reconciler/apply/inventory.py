"""The inventory: the set of objects an owner applied, kept in the owner's status.

Stored as Flux does, `status.inventory.entries[] = {id: "<namespace>_<name>_<group>_<kind>",
v: "<version>"}`, so prune can be exact: it deletes only what this owner applied before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.model.objects import GroupVersionKind, Obj, name_of, namespace_of


@dataclass(frozen=True, order=True)
class ObjectRef:
    group: str
    kind: str
    namespace: str
    name: str
    version: str = "v1"

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> ObjectRef:
        gvk = GroupVersionKind.of(obj)
        return cls(gvk.group, gvk.kind, namespace_of(obj), name_of(obj), gvk.version)

    @property
    def id(self) -> str:
        return f"{self.namespace}_{self.name}_{self.group}_{self.kind}"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def identity(self) -> tuple[str, str, str, str]:
        """The object's identity, independent of the API version it was applied with."""
        return (self.group, self.kind, self.namespace, self.name)

    def __str__(self) -> str:
        kind = f"{self.kind}.{self.group}" if self.group else self.kind
        return f"{kind}/{self.namespace}/{self.name}" if self.namespace else f"{kind}/{self.name}"

    def as_object(self) -> Obj:
        meta: dict[str, str] = {"name": self.name}
        if self.namespace:
            meta["namespace"] = self.namespace
        return {"apiVersion": self.api_version, "kind": self.kind, "metadata": meta}


@dataclass(frozen=True)
class Inventory:
    refs: tuple[ObjectRef, ...] = ()

    @classmethod
    def of(cls, refs: Iterable[ObjectRef]) -> Inventory:
        unique = {r.identity: r for r in refs}
        return cls(tuple(sorted(unique.values())))

    @classmethod
    def of_objects(cls, objects: Iterable[Mapping[str, Any]]) -> Inventory:
        return cls.of(ObjectRef.of(o) for o in objects)

    @classmethod
    def from_status(cls, status: Mapping[str, Any] | None) -> Inventory:
        """Read `status.inventory`; entries that are not the shape we write are skipped."""
        inventory = (status or {}).get("inventory") or {}
        refs = []
        for entry in inventory.get("entries") or [] if isinstance(inventory, Mapping) else []:
            parts = str(entry.get("id", "")).split("_") if isinstance(entry, Mapping) else []
            if len(parts) != 4 or not parts[1] or not parts[3]:
                continue
            refs.append(ObjectRef(parts[2], parts[3], parts[0], parts[1],
                                  str(entry.get("v") or "v1")))
        return cls.of(refs)

    def to_status(self) -> dict[str, Any]:
        return {"entries": [{"id": r.id, "v": r.version} for r in self.refs]}

    def __len__(self) -> int:
        return len(self.refs)

    def __bool__(self) -> bool:
        return bool(self.refs)

    def __contains__(self, item: object) -> bool:
        ident = item.identity if isinstance(item, ObjectRef) else None
        return ident is not None and any(r.identity == ident for r in self.refs)

    def __iter__(self) -> Any:
        return iter(self.refs)

    def minus(self, other: Inventory) -> Inventory:
        """Objects in this inventory that `other` does not hold (the stale ones)."""
        theirs = {r.identity for r in other.refs}
        return Inventory(tuple(r for r in self.refs if r.identity not in theirs))

    def union(self, other: Inventory) -> Inventory:
        return Inventory.of((*self.refs, *other.refs))
