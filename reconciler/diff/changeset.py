"""The change set: what a reconcile would do to each object, for people and for machines.

`plan_object` decides one object's action (created, configured, unchanged; `plan_deletion` for
deleted) with the fast left-scoped walk, after normalization and ignore rules. `ChangeSet.render`
prints a unified diff per object under a `► Kind/namespace/name action` header; `to_json` gives
the same facts as data. Secret values are masked in both.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import yaml

from reconciler.diff.compare import (
    MISSING,
    Difference,
    comparable,
    differences,
    is_subset,
    scalar_equal,
    scoped_live,
)
from reconciler.diff.ignore import IgnoreRule, ignored_paths, strip
from reconciler.diff.mask import is_secret, mask_pair, mask_value
from reconciler.model.objects import Obj, ObjectKey


class ChangeAction(StrEnum):
    CREATED = "created"
    CONFIGURED = "configured"
    DELETED = "deleted"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class ObjectChange:
    key: ObjectKey
    api_version: str
    action: ChangeAction
    desired: Obj | None = None
    live: Obj | None = None
    differences: tuple[Difference, ...] = ()

    @property
    def title(self) -> str:
        ns = f"{self.key.namespace}/" if self.key.namespace else ""
        return f"{self.key.kind}/{ns}{self.key.name}"

    def unified_diff(self) -> str:
        want = comparable(self.desired) if self.desired is not None else None
        have = _scoped(want, self.live) if self.live is not None else None
        if self.action is ChangeAction.DELETED and self.live is not None:
            have = comparable(self.live)
        want, have = mask_pair(want, have)
        before = _yaml(have).splitlines(keepends=True)
        after = _yaml(want).splitlines(keepends=True)
        return "".join(difflib.unified_diff(before, after, fromfile=f"live/{self.title}",
                                            tofile=f"desired/{self.title}", n=3))

    def to_json(self) -> dict[str, Any]:
        secret = is_secret(self.desired) or is_secret(self.live)
        changes = []
        for d in self.differences:
            before, after = d.before, d.after
            if secret:
                before, after = mask_value(d.path, before), mask_value(d.path, after)
            entry: dict[str, Any] = {"path": d.path}
            if before is not MISSING:
                entry["before"] = before
            entry["after"] = after
            changes.append(entry)
        return {
            "object": self.title, "apiVersion": self.api_version, "kind": self.key.kind,
            "namespace": self.key.namespace, "name": self.key.name,
            "action": str(self.action), "changes": changes,
        }


@dataclass
class ChangeSet:
    changes: list[ObjectChange] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        return any(c.action is not ChangeAction.UNCHANGED for c in self.changes)

    def counts(self) -> dict[str, int]:
        out = {str(a): 0 for a in ChangeAction}
        for c in self.changes:
            out[str(c.action)] += 1
        return out

    def render(self, show_unchanged: bool = True) -> str:
        lines: list[str] = []
        for change in self.changes:
            if change.action is ChangeAction.UNCHANGED and not show_unchanged:
                continue
            lines.append(f"► {change.title} {change.action}")
            if change.action is not ChangeAction.UNCHANGED:
                lines.append(change.unified_diff().rstrip("\n"))
        return "\n".join(lines) + ("\n" if lines else "")

    def to_json(self) -> dict[str, Any]:
        return {"changes": [c.to_json() for c in self.changes], "summary": self.counts(),
                "hasChanges": self.has_changes}


def plan_object(desired: Obj, live: Obj | None,
                rules: Sequence[IgnoreRule] = ()) -> ObjectChange:
    """What applying `desired` would do to `live`, ignoring the fields `rules` name."""
    key, api_version = ObjectKey.of(desired), str(desired.get("apiVersion", ""))
    if live is None:
        return ObjectChange(key, api_version, ChangeAction.CREATED, desired, None,
                            tuple(differences(desired, None)))
    if rules:
        desired = strip(desired, ignored_paths(rules, desired, live))
        live = strip(live, ignored_paths(rules, live, live))
    if is_subset(comparable(desired), live):
        return ObjectChange(key, api_version, ChangeAction.UNCHANGED, desired, live)
    return ObjectChange(key, api_version, ChangeAction.CONFIGURED, desired, live,
                        tuple(differences(desired, live)))


def plan_deletion(live: Obj) -> ObjectChange:
    return ObjectChange(ObjectKey.of(live), str(live.get("apiVersion", "")),
                        ChangeAction.DELETED, None, live)


def _scoped(want: Mapping[str, Any] | None, live: Obj) -> Obj:
    """`live` cut to what `want` declares, with values equal to desired ones (1 vs 1000m)
    written as desired, so the report shows only what the comparison found different."""
    scoped = _aligned(want or {}, scoped_live(want or {}, live), None, None)
    return dict(scoped) if isinstance(scoped, Mapping) else {}


def _aligned(want: Any, have: Any, parent: str | None, key: str | None) -> Any:
    if isinstance(want, Mapping) and isinstance(have, Mapping):
        return {k: (_aligned(want[k], v, key, k) if k in want else v) for k, v in have.items()}
    if isinstance(want, list) and isinstance(have, list) and len(want) == len(have):
        return [_aligned(w, h, parent, key) for w, h in zip(want, have, strict=True)]
    if not isinstance(want, Mapping | list) and scalar_equal(want, have, parent, key):
        return want
    return have


def _yaml(obj: Mapping[str, Any] | None) -> str:
    if obj is None:
        return ""
    return yaml.safe_dump(dict(obj), sort_keys=False, default_flow_style=False)
