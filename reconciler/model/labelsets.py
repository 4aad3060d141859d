"""Label selectors and label sets in the form read tracking keeps them.

A list by labels is recorded as a dependency on its selector's canonical text ("k=v,..."); a
change is described by the (label, value) pairs its object carried before or after it. A
selector can match a change only if all its pairs are among the change's.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from collections.abc import Set as AbstractSet

LabelPairs = frozenset[tuple[str, str]]
"""A set of (label, value) pairs: a selector's, or what a changed object carried."""

LabelSet = AbstractSet[tuple[str, str]]
"""The (label, value) pairs a changed object carried before or after the change: a set, or a
label map's `items()` (no copy)."""


def selector_text(labels: Mapping[str, str]) -> str:
    """A selector's canonical form in a Dependency: "k=v" pairs, sorted, comma-joined (label
    keys and values never hold "," or "=", which the backends refuse)."""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


@functools.lru_cache(maxsize=4096)
def selector_pairs(text: str) -> LabelPairs:
    found: set[tuple[str, str]] = set()
    for pair in text.split(","):
        label, _, value = pair.partition("=")
        if label:
            found.add((label, value))
    return frozenset(found)


def label_pairs(*label_maps: object) -> LabelPairs:
    """The (label, value) pairs of some objects' label maps (not-maps count as none)."""
    return frozenset((str(k), str(v)) for labels in label_maps if isinstance(labels, dict)
                     for k, v in labels.items())


def list_dependency(group: str, kind: str, scope: str,
                    labels: Mapping[str, str] | None) -> tuple[str, str, str, str, str]:
    """The read-tracking dependency of a list of a kind in `scope` (a namespace, "" when the
    kind is cluster-scoped, or "*"): ("labels", group, kind, scope, `selector_text`) when it
    selects by labels, else ("kind", group, kind, scope, "")."""
    if labels:
        return ("labels", group, kind, scope, selector_text(labels))
    return ("kind", group, kind, scope, "")
