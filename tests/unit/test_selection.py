"""Selecting a blueprint or template option: every term must hold, the most specific wins."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.chains.selection import best_matches
from reconciler.model.selectors import Selector, matches

OWNER: dict[str, Any] = {
    "apiVersion": "carto.run/v1alpha1",
    "kind": "Workload",
    "metadata": {"name": "w", "labels": {"type": "web", "tier": "gold"}},
    "spec": {"source": {"git": {"url": "https://example.com/a.git"}}, "env": []},
}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        (Selector(labels={"type": "web"}), True),
        (Selector(labels={"type": "worker"}), False),
        (Selector(labels={"type": "web", "missing": "x"}), False),
        (Selector(expressions=[{"key": "tier", "operator": "In", "values": ["gold"]}]), True),
        (Selector(expressions=[{"key": "tier", "operator": "NotIn", "values": ["gold"]}]), False),
        (Selector(expressions=[{"key": "tier", "operator": "Exists"}]), True),
        (Selector(expressions=[{"key": "nope", "operator": "DoesNotExist"}]), True),
        (Selector(expressions=[{"key": "nope", "operator": "NotIn", "values": ["x"]}]), True),
        (Selector(fields=[{"key": "spec.source.git.url", "operator": "Exists"}]), True),
        (Selector(fields=[{"key": "spec.source.image", "operator": "Exists"}]), False),
        (Selector(fields=[{"key": "spec.source.image", "operator": "DoesNotExist"}]), True),
        (Selector(fields=[{"key": "spec.source.git.url", "operator": "In",
                           "values": ["https://example.com/a.git"]}]), True),
        (Selector(fields=[{"key": "spec.source.git.url", "operator": "NotIn",
                           "values": ["https://example.com/a.git"]}]), False),
    ],
)
def test_matches(selector: Selector, expected: bool) -> None:
    assert matches(selector, OWNER) is expected


@pytest.mark.parametrize(
    ("selectors", "expected"),
    [
        ([Selector(labels={"type": "web"}), Selector(labels={"type": "worker"})], [0]),
        ([Selector(labels={"type": "web"}),
          Selector(labels={"type": "web", "tier": "gold"})], [1]),
        ([Selector(labels={"type": "web"}), Selector(labels={"tier": "gold"})], [0, 1]),
        ([Selector(labels={"type": "web"}),
          Selector(labels={"type": "web"},
                   fields=[{"key": "spec.source.git", "operator": "Exists"}])], [1]),
        ([Selector()], []),
        ([Selector(labels={"nope": "x"})], []),
    ],
    ids=["one-match", "most-specific", "tie", "fields-count", "empty-never-matches", "none"],
)
def test_best_matches(selectors: list[Selector], expected: list[int]) -> None:
    assert best_matches(selectors, OWNER) == expected
