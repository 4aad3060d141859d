"""kuttl's subset match: maps are subsets, lists are whole and ordered, scalars keep their type."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.kuttl.match import differences, is_subset


@pytest.mark.parametrize(
    ("expected", "actual", "subset"),
    [
        ({"a": 1}, {"a": 1, "b": 2}, True),
        ({}, {"a": 1}, True),
        ({"a": {"b": "x"}}, {"a": {"b": "x", "c": "y"}}, True),
        ({"a": 1}, {"b": 1}, False),
        ({"a": "5"}, {"a": 5}, False),
        ({"a": 1}, {"a": True}, False),
        ({"a": 1}, {"a": 1.0}, False),
        ([{"n": 1}, {"n": 2}], [{"n": 1, "x": 0}, {"n": 2}], True),
        ([{"n": 1}], [{"n": 1}, {"n": 2}], False),
        ([{"n": 2}, {"n": 1}], [{"n": 1}, {"n": 2}], False),
        ([], [], True),
        ({"a": None}, {"a": None}, True),
        ({"a": None}, {"a": "x"}, False),
        ({"a": {"b": 1}}, {"a": "text"}, False),
    ],
    ids=["extra-keys-ignored", "empty-map", "nested-map", "missing-key", "string-vs-int",
         "int-vs-bool", "int-vs-float", "list-elementwise", "list-length", "list-order",
         "empty-lists", "null", "null-vs-string", "map-vs-string"],
)
def test_is_subset_follows_kuttl(expected: Any, actual: Any, subset: bool) -> None:
    assert is_subset(expected, actual) is subset
    assert (not differences(expected, actual)) is subset


@pytest.mark.parametrize(
    ("expected", "actual", "reports"),
    [
        ({"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
         {"status": {"conditions": [{"type": "Ready", "status": "False"}]}},
         ['status.conditions[0].status: expected "True", got "False"']),
        ({"data": {"a": "x"}}, {"data": {}},
         ['data.a: expected "x", got nothing (the field is missing)']),
        ({"items": [1, 2, 3]}, {"items": [1, 9]},
         ["items: expected a list of 3 item(s), got 2", "items[1]: expected 2, got 9"]),
        ({"n": "5"}, {"n": 5}, ['n: expected "5" (string), got 5 (integer)']),
        ({"s": "a" * 100 + "X"}, {"s": "a" * 100 + "Y"},
         ["s: strings differ at character 100 (lengths 101 and 101)"]),
    ],
    ids=["condition-status", "missing-field", "list-length-and-item", "type", "long-string"],
)
def test_differences_name_path_expected_and_actual(
    expected: Any, actual: Any, reports: list[str]
) -> None:
    found = [str(d) for d in differences(expected, actual)]
    assert len(found) == len(reports)
    for line, report in zip(found, reports, strict=True):
        assert line.startswith(report), line


def test_differences_lists_every_difference_unless_limited() -> None:
    expected = {"a": 1, "b": 2, "c": 3}
    actual = {"a": 0, "b": 0, "c": 0}
    assert len(differences(expected, actual)) == 3
    assert len(differences(expected, actual, limit=1)) == 1
