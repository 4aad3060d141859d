"""Matching owners (Workload, Deliverable) to blueprints and template options by selectors.

A blueprint's selector (`model/selectors.Selector.of_blueprint`) is the union of `selector` labels,
`selectorMatchExpressions` (on labels) and `selectorMatchFields` (on the owner's fields). Every term
must hold; among full matches the most specific (most terms) wins, and a tie at the top is
ambiguous.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.model.selectors import Selector, matches


def best_matches(selectors: Sequence[Selector], owner: Mapping[str, Any]) -> list[int]:
    """Indices of the most specific selectors that fully match `owner` (empty if none)."""
    best: list[int] = []
    best_size = 0
    for index, selector in enumerate(selectors):
        if selector.size == 0 or not matches(selector, owner, index):
            continue
        if selector.size > best_size:
            best, best_size = [index], selector.size
        elif selector.size == best_size:
            best.append(index)
    return best
