"""Params precedence: template default < blueprint < resource < owner; `value` is protected."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.chains.params import resolve_params

CASES: list[tuple[str, dict[str, Any], list[dict[str, Any]], list[dict[str, Any]],
                  list[dict[str, Any]], dict[str, Any]]] = [
    ("template default only", {"p": 1}, [], [], [], {"p": 1}),
    ("blueprint default beats template", {"p": 1}, [{"name": "p", "default": 2}], [], [],
     {"p": 2}),
    ("resource beats blueprint", {"p": 1}, [{"name": "p", "default": 2}],
     [{"name": "p", "default": 3}], [], {"p": 3}),
    ("owner beats defaults", {"p": 1}, [{"name": "p", "default": 2}],
     [{"name": "p", "default": 3}], [{"name": "p", "value": 4}], {"p": 4}),
    ("blueprint value protected from owner", {}, [{"name": "p", "value": "fixed"}], [],
     [{"name": "p", "value": "mine"}], {"p": "fixed"}),
    ("resource value protected from owner", {}, [], [{"name": "p", "value": "fixed"}],
     [{"name": "p", "value": "mine"}], {"p": "fixed"}),
    ("resource default unprotects blueprint value", {}, [{"name": "p", "value": "fixed"}],
     [{"name": "p", "default": "soft"}], [{"name": "p", "value": "mine"}], {"p": "mine"}),
    ("owner params not declared anywhere still arrive", {}, [], [],
     [{"name": "extra", "value": {"a": [1]}}], {"extra": {"a": [1]}}),
    ("types are kept", {"n": 1}, [], [], [{"name": "n", "value": [1, "two"]}],
     {"n": [1, "two"]}),
]


@pytest.mark.parametrize(("name", "template", "blueprint", "resource", "owner", "expected"),
                         CASES, ids=[c[0] for c in CASES])
def test_resolve_params(name: str, template: dict[str, Any], blueprint: list[dict[str, Any]],
                        resource: list[dict[str, Any]], owner: list[dict[str, Any]],
                        expected: dict[str, Any]) -> None:
    assert resolve_params(template, blueprint, resource, owner) == expected
