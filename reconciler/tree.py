"""`reconciler tree`: what each owner made, as a tree, with each object's health.

Owners are the objects a reconcile starts from (Workloads, Deliverables, Runnables,
Kustomizations). An object is a child of an owner when it names it in a controller
ownerReference (what supply chains and runnables stamp) or sits in its `status.inventory`
(what a Kustomization applied); children are walked the same way, so a Runnable stamped by a
supply chain shows its runs below it. Health is the object's `Ready` condition when it has one,
else Argo CD's assessment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.apply.health import assess
from reconciler.apply.inventory import Inventory
from reconciler.model.conditions import find_condition
from reconciler.model.objects import GroupVersionKind, Obj, ObjectKey, meta, status_of

ROOT_KINDS = {("carto.run", "Workload"), ("carto.run", "Deliverable"),
              ("carto.run", "Runnable"), ("kustomize.toolkit.fluxcd.io", "Kustomization")}


@dataclass
class Node:
    obj: Obj
    children: list[Node] = field(default_factory=list)

    @property
    def title(self) -> str:
        key = ObjectKey.of(self.obj)
        ns = f"{key.namespace}/" if key.namespace else ""
        return f"{key.kind}/{ns}{key.name}"

    @property
    def state(self) -> str:
        ready = find_condition(status_of(self.obj).get("conditions"), "Ready")
        if ready is not None:
            reason = ready.get("reason") or ""
            return f"Ready={ready.get('status')}" + (f" ({reason})" if reason else "")
        health = assess(self.obj)
        return str(health.status.value)


def build(objects: Sequence[Obj]) -> list[Node]:
    """The owner trees of `objects`, roots sorted by kind and name; unowned objects left out."""
    by_uid = {str(meta(o).get("uid")): o for o in objects if meta(o).get("uid")}
    by_key = {ObjectKey.of(o): o for o in objects}
    children: dict[str, list[Obj]] = {}
    for obj in objects:
        for owner_ref in _owner_refs(obj):
            if owner_ref.get("controller") and str(owner_ref.get("uid")) in by_uid:
                children.setdefault(str(owner_ref["uid"]), []).append(obj)
    for owner in objects:
        for ref in Inventory.from_status(status_of(owner)).refs:
            child = by_key.get(ObjectKey(ref.group, ref.kind, ref.namespace, ref.name))
            if child is not None and child is not owner:
                kids = children.setdefault(str(meta(owner).get("uid")), [])
                if all(k is not child for k in kids):
                    kids.append(child)

    def grow(obj: Obj, seen: frozenset[str]) -> Node:
        uid = str(meta(obj).get("uid"))
        kids = sorted(children.get(uid, []), key=lambda o: ObjectKey.of(o))
        return Node(obj, [grow(k, seen | {uid}) for k in kids
                          if str(meta(k).get("uid")) not in seen])

    roots = [o for o in objects if GroupVersionKind.of(o).group_kind in ROOT_KINDS
             and not _owned(o, by_uid)]
    return [grow(o, frozenset()) for o in sorted(roots, key=lambda o: ObjectKey.of(o))]


def _owned(obj: Obj, by_uid: Mapping[str, Any]) -> bool:
    return any(ref.get("controller") and str(ref.get("uid")) in by_uid
               for ref in _owner_refs(obj))


def _owner_refs(obj: Obj) -> list[Mapping[str, Any]]:
    """The well-formed owner references of `obj` (a hand-edited state may hold others)."""
    refs = meta(obj).get("ownerReferences")
    return [r for r in refs if isinstance(r, Mapping)] if isinstance(refs, list) else []


def render(roots: Sequence[Node]) -> str:
    lines: list[str] = []

    def walk(node: Node, prefix: str, last: bool, top: bool) -> None:
        branch = "" if top else ("└── " if last else "├── ")
        lines.append(f"{prefix}{branch}{node.title}  {node.state}")
        below = prefix if top else prefix + ("    " if last else "│   ")
        for i, child in enumerate(node.children):
            walk(child, below, i == len(node.children) - 1, False)

    for root in roots:
        walk(root, "", True, True)
    return "\n".join(lines) + ("\n" if lines else "")


def to_json(roots: Sequence[Node]) -> list[dict[str, Any]]:
    def one(node: Node) -> dict[str, Any]:
        return {"object": node.title, "state": node.state,
                "children": [one(c) for c in node.children]}

    return [one(r) for r in roots]
