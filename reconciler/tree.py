"""`reconciler tree`: what each owner made, as a tree, with each object's health.

Owners are the objects a reconcile starts from (Workloads, Deliverables, Runnables,
Kustomizations). An object is a child of an owner when it names it in a controller
ownerReference (what supply chains and runnables stamp) or sits in its `status.inventory`
(what a Kustomization applied); children are walked the same way, so a Runnable stamped by a
supply chain shows its runs below it. Health is the object's `Ready` condition when it has one,
else its `Succeeded` condition (Tekton runs, image scans), else Argo CD's assessment.

A Workload's or Deliverable's children come in supply-chain order, each named after its stage
(`report.stages`): the template that stamped it, the stage's inputs and outputs, and, for a
stage that is not healthy, why, with the last logs of its failed Tekton TaskRun.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.apply.health import assess
from reconciler.apply.inventory import Inventory
from reconciler.model.conditions import find_condition
from reconciler.model.objects import GroupVersionKind, Obj, ObjectKey, meta, status_of
from reconciler.model.terminal import printable_line
from reconciler.report import Stage, stage_detail_lines, stages

ROOT_KINDS = {("carto.run", "Workload"), ("carto.run", "Deliverable"),
              ("carto.run", "Runnable"), ("kustomize.toolkit.fluxcd.io", "Kustomization")}


_BLUEPRINT_REFS = {"Workload": ("supply chain", "supplyChainRef"),
                   "Deliverable": ("delivery", "deliveryRef")}


@dataclass
class Node:
    obj: Obj
    children: list[Node] = field(default_factory=list)
    stage: Stage | None = None
    """The supply-chain or delivery stage that stamped this object (children of owners)."""

    @property
    def title(self) -> str:
        key = ObjectKey.of(self.obj)
        ns = f"{key.namespace}/" if key.namespace else ""
        return f"{key.kind}/{ns}{key.name}"

    @property
    def state(self) -> str:
        conditions = status_of(self.obj).get("conditions")
        for type_ in ("Ready", "Succeeded"):
            cond = find_condition(conditions, type_)
            if cond is not None:
                reason = cond.get("reason") or ""
                return f"{type_}={cond.get('status')}" + (f" ({reason})" if reason else "")
        health = assess(self.obj)
        return str(health.status.value)

    @property
    def blueprint(self) -> str:
        """`supply chain: NAME` for a Workload, `delivery: NAME` for a Deliverable, else ''."""
        found = _BLUEPRINT_REFS.get(str(self.obj.get("kind")))
        if found is None:
            return ""
        ref = status_of(self.obj).get(found[1])
        name = ref.get("name") if isinstance(ref, Mapping) else None
        return f"{found[0]}: {name}" if name else ""

    @property
    def label(self) -> str:
        """The node's line: its stage (if any), the object, its state, its blueprint; control
        characters and newlines in names and reasons neutralised (it is printed on a terminal,
        where `to_json` keeps them exact)."""
        stage = f"{self.stage.name}: " if self.stage is not None else ""
        blueprint = f"  {self.blueprint}" if self.blueprint else ""
        return printable_line(f"{stage}{self.title}  {self.state}{blueprint}")


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

    def grow(obj: Obj, seen: frozenset[str], stage: Stage | None = None) -> Node:
        uid = str(meta(obj).get("uid"))
        kids = sorted(children.get(uid, []), key=lambda o: ObjectKey.of(o))
        kids = [k for k in kids if str(meta(k).get("uid")) not in seen]
        staged: list[Node] = []
        if str(obj.get("kind")) in _BLUEPRINT_REFS:
            # Stamped objects in supply-chain order, each with its stage; the rest after them.
            for found in stages(obj, objects):
                match = next((k for k in kids if _is_stamped(k, found)), None)
                if match is not None:
                    kids.remove(match)
                    staged.append(grow(match, seen | {uid}, found))
        return Node(obj, staged + [grow(k, seen | {uid}) for k in kids], stage)

    roots = [o for o in objects if GroupVersionKind.of(o).group_kind in ROOT_KINDS
             and not _owned(o, by_uid)]
    return [grow(o, frozenset()) for o in sorted(roots, key=lambda o: ObjectKey.of(o))]


def _is_stamped(obj: Obj, stage: Stage) -> bool:
    ref = stage.stamped
    return bool(ref) and (obj.get("apiVersion"), obj.get("kind"), meta(obj).get("name"),
                          meta(obj).get("namespace") or "") == (
        ref.get("apiVersion"), ref.get("kind"), ref.get("name"), ref.get("namespace") or "")


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
        lines.append(f"{prefix}{branch}{node.label}")
        below = prefix if top else prefix + ("    " if last else "│   ")
        if node.stage is not None:
            # Details hang under the node's own line, beside the line to its children.
            rail = below + ("│   " if node.children else "    ")
            lines.extend(f"{rail}{detail}" for detail in stage_detail_lines(node.stage))
        for i, child in enumerate(node.children):
            walk(child, below, i == len(node.children) - 1, False)

    for root in roots:
        walk(root, "", True, True)
    return "\n".join(lines) + ("\n" if lines else "")


def to_json(roots: Sequence[Node]) -> list[dict[str, Any]]:
    def one(node: Node) -> dict[str, Any]:
        doc: dict[str, Any] = {"object": node.title, "state": node.state}
        if node.blueprint:
            doc["blueprint"] = node.blueprint
        if node.stage is not None:
            doc["stage"] = node.stage.to_json()
        doc["children"] = [one(c) for c in node.children]
        return doc

    return [one(r) for r in roots]
