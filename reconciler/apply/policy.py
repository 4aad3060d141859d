"""What an owner opts into through annotations on itself (any owner kind).

- `reconciler.dev/self-heal: "false"`: detect-only; drift is reported (condition and event) but
  not corrected.
- `reconciler.dev/prune-empty: "allow"`: an empty render may prune every object the owner applied
  before; without it prune refuses, since an empty render is far more often a mistake.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.model.objects import meta

SELF_HEAL = "reconciler.dev/self-heal"
PRUNE_EMPTY = "reconciler.dev/prune-empty"


@dataclass(frozen=True)
class OwnerPolicy:
    self_heal: bool = True
    allow_empty_prune: bool = False

    @classmethod
    def of(cls, owner: Mapping[str, Any]) -> OwnerPolicy:
        annotations = meta(owner).get("annotations") or {}
        return cls(
            self_heal=str(annotations.get(SELF_HEAL, "true")).lower() != "false",
            allow_empty_prune=str(annotations.get(PRUNE_EMPTY, "")).lower() == "allow",
        )
