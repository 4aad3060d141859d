"""The expression languages a user writes: `$(...)$` interpolation (reconciler/chains/
interpolate.py), JSONPath (reconciler/model/jsonpath.py) and the jq subset of ignore rules
(reconciler/diff/ignore.py). Any input gives a value or the module's typed error, never another
exception; the work stays within the limits."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from reconciler.chains.interpolate import InterpolationError, interpolate
from reconciler.diff.ignore import IgnoreRule, IgnoreRuleError, compile_jq, ignored_paths
from reconciler.model.jsonpath import JSONPathError, compile_path, evaluate
from reconciler.model.limits import Limits

PATHISH = st.text(st.sampled_from(list("abc01.[]*?@()=<>!'\"$:{},- |&~\\")), max_size=40)
KEYS = st.sampled_from(["a", "b", "c", "0", "1", "name", "a.b", ""])
DATA = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=True) |
    st.text(st.sampled_from(list("ab$()x")), max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=15)


@given(PATHISH, DATA)
@example("{.a[?(@.b=='x')].c}", {"a": [{"b": "x", "c": 1}]})
@example("a[-1:0:-1]", {"a": [1, 2, 3]})
@example("a[0:10:0]", {"a": [1, 2, 3]})
@example("..a..b..c", {"a": {"b": {"c": 1}}})
@example("a[?(@ < 'x')]", {"a": [1, "y", None]})
@example("a['b','c']", {"a": {"b": 1}})
@example("{", {})
@example("a[99999999999999999999]", {"a": [1]})
@example("[-]", None)
@example("a[1:-]", {"a": [1]})
@example("a[::-]", {"a": [1]})
def test_jsonpath_answers_or_raises_its_own_error(expr: str, data: Any) -> None:
    try:
        compile_path(expr)
        evaluate(expr, data)
    except JSONPathError:
        pass


TEMPLATE = st.recursive(
    st.text(st.sampled_from(list("$()ab.x [0]' ")), max_size=30) |
    st.sampled_from(["$(a)$", "$(a.b)$", "x $(a)$ y", "$(a)$$(b)$", "$( a )$", "$(", ")$",
                     "$(params.p)$", "$(c[0])$", "$(a)$ $(c)$"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=10)
CONTEXT = st.dictionaries(st.sampled_from(["a", "b", "c", "params"]), DATA, max_size=4)


@given(TEMPLATE, CONTEXT)
@example("$(a)$", {"a": "$(b)$", "b": "$(a)$"})
@example("x $(a)$", {"a": "$(a)$ $(a)$"})
@example("$(a)$", {"a": float("nan")})
@example("$(a)$ $(a)$", {"a": {"k": [1.5, 1e300, True, None]}})
def test_interpolation_stamps_or_raises_its_own_error(template: Any,
                                                      context: dict[str, Any]) -> None:
    small = Limits(interpolation_bytes=4096, interpolation_work_bytes=65536,
                   interpolation_steps=2000, interpolation_depth=8)
    with contextlib.suppress(InterpolationError):
        interpolate(template, context, small)


@given(st.integers(2, 40))
def test_doubling_params_hit_a_limit_not_the_memory(levels: int) -> None:
    context = {"p0": "x" * 64}
    for level in range(1, levels + 1):
        context[f"p{level}"] = f"$(p{level - 1})$$(p{level - 1})$"
    small = Limits(interpolation_bytes=1 << 16, interpolation_work_bytes=1 << 20,
                   interpolation_steps=10_000, interpolation_depth=64)
    try:
        result = interpolate(f"$(p{levels})$", context, small)
    except InterpolationError as exc:
        assert "interpolation" in str(exc) or "infinite" in str(exc), exc
        return
    assert len(result) <= small.interpolation_bytes


JQ = st.text(st.sampled_from(list(".abc[]0123*?|\"'=()select ,-:{}\\")), max_size=40)


@given(JQ, DATA)
@example(".a[]", {"a": [1, 2]})
@example('.a[] | select(.name == "x") | .b', {"a": [{"name": "x", "b": 1}]})
@example(".", None)
@example(".[", {})
@example('.a["b"]', {"a": {"b": 1}})
@example(".a[-1]", {"a": [1]})
@example(".a[99999999999999999999999]", {"a": [1]})
def test_jq_paths_compile_and_match_or_raise_the_rule_error(expr: str, data: Any) -> None:
    try:
        compile_jq(expr, "fuzz")
    except IgnoreRuleError:
        return
    rule = IgnoreRule(jq_paths=(expr,))
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": data}
    for path in ignored_paths([rule], obj):
        assert isinstance(path, tuple)


RAW_RULE = st.dictionaries(
    st.sampled_from(["group", "kind", "name", "namespace", "jsonPointers",
                     "jqPathExpressions", "managedFieldsManagers", "other"]),
    st.none() | st.text(max_size=10) | st.lists(st.text(
        st.sampled_from(list("/.a~01[]")), max_size=10), max_size=3) | st.integers(),
    max_size=4)


@given(RAW_RULE, DATA)
@example({"jsonPointers": ["/data/~2"]}, {})
@example({"jsonPointers": ["data"]}, {})
@example({"jsonPointers": "/data"}, {})
@example({"jqPathExpressions": 7}, {})
def test_ignore_rules_parse_or_raise_the_rule_error(raw: dict[str, Any], data: Any) -> None:
    try:
        rule = IgnoreRule.parse(raw)
    except IgnoreRuleError:
        return
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": data}
    ignored_paths([rule], obj)


def test_regression_a_rule_field_that_is_not_a_list_is_named() -> None:
    # Found by the fuzzer above: 7 raised TypeError, "/data" was read letter by letter.
    for value in (7, "/data", {"a": 1}):
        try:
            IgnoreRule.parse({"jsonPointers": value}, "spec.ignoreDifferences[0]")
        except IgnoreRuleError as exc:
            assert "spec.ignoreDifferences[0]: jsonPointers must be a list" in str(exc)
        else:
            raise AssertionError(f"{value!r} accepted")


def test_regression_a_bare_sign_is_an_invalid_array_index() -> None:
    # Found by the long fuzzing profile: `[-]` raised ValueError from int().
    for expr in ("[-]", "a[1:-]", "a[::-]"):
        try:
            compile_path(expr)
        except JSONPathError as exc:
            assert "invalid array index" in str(exc), exc
        else:
            raise AssertionError(f"{expr!r} compiled")
