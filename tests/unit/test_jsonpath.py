"""jsonpath: client-go JSONPath semantics as Cartographer wraps and evaluates them."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest

from reconciler.model.errors import ReconcilerError
from reconciler.model.jsonpath import (
    AmbiguousPathError,
    JSONPathError,
    JSONPathSyntaxError,
    PathNotFoundError,
    compile_path,
    evaluate,
    evaluate_single,
)

DATA: dict[str, Any] = {
    "metadata": {
        "name": "petclinic",
        "labels": {"app.kubernetes.io/name": "web", "tier": "front"},
        "annotations": {"example.com/owner": "team-a"},
    },
    "spec": {
        "replicas": 3,
        "paused": False,
        "optional": None,
        "containers": [
            {"name": "app", "image": "app:1", "ports": [{"containerPort": 8080}]},
            {"name": "sidecar", "image": "side:2"},
        ],
        "env-vars": {"my-key": "v"},
    },
    "status": {
        "conditions": [
            {"type": "Ready", "status": "True", "priority": 2},
            {"type": "Healthy", "status": "False", "priority": 5},
        ],
    },
}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        pytest.param("metadata.name", "petclinic", id="bare"),
        pytest.param(".metadata.name", "petclinic", id="leading-dot"),
        pytest.param("{.metadata.name}", "petclinic", id="braced"),
        pytest.param("{.metadata.name", "petclinic", id="open-brace-only"),
        pytest.param("  metadata.name  ", "petclinic", id="surrounding-space"),
        pytest.param("$.metadata.name", "petclinic", id="dollar-root"),
        pytest.param("spec.containers[0].image", "app:1", id="index"),
        pytest.param("spec.containers[-1].name", "sidecar", id="negative-index"),
        pytest.param("spec.containers[0:2].name", ["app", "sidecar"], id="slice"),
        pytest.param("spec.containers[1:].name", "sidecar", id="open-slice-single"),
        pytest.param("spec.containers[*].name", ["app", "sidecar"], id="wildcard-index"),
        pytest.param("spec.containers[0,1].image", ["app:1", "side:2"], id="union"),
        pytest.param("metadata.labels.*", ["web", "front"], id="wildcard-field"),
        pytest.param(r"metadata.labels.app\.kubernetes\.io/name", "web", id="escaped-dots"),
        pytest.param("metadata.labels['app.kubernetes.io/name']", "web", id="single-quoted"),
        pytest.param('metadata.labels["tier"]', "front", id="double-quoted"),
        pytest.param("metadata.annotations.example\\.com/owner", "team-a", id="slash-key"),
        pytest.param("spec.env-vars.my-key", "v", id="dash-key"),
        pytest.param('status.conditions[?(@.type=="Ready")].status', "True", id="filter-eq"),
        pytest.param("status.conditions[?(@.type == 'Ready')].status", "True", id="filter-ws"),
        pytest.param('status.conditions[?(@.type!="Ready")].type', "Healthy", id="filter-ne"),
        pytest.param("status.conditions[?(@.priority>3)].type", "Healthy", id="filter-gt"),
        pytest.param("status.conditions[?(@.priority<3)].type", "Ready", id="filter-lt"),
        pytest.param("status.conditions[?(@.priority>=2)].type", ["Ready", "Healthy"], id="ge"),
        pytest.param('status.conditions[?(@.type=~"^He")].type', "Healthy", id="filter-regexp"),
        pytest.param("spec.containers[?(@.ports)].name", "app", id="filter-exists"),
        pytest.param("spec.containers[?(@.ports)].ports[0].containerPort", 8080, id="deep"),
        pytest.param("..containerPort", 8080, id="recursive"),
        pytest.param("spec..name", ["app", "sidecar"], id="recursive-below"),
        pytest.param("spec.optional", None, id="explicit-null-is-found"),
        pytest.param("spec.paused", False, id="false-is-found"),
        pytest.param("spec.replicas", 3, id="int"),
        pytest.param("{.}", DATA, id="whole-object"),
    ],
)
def test_evaluate(expr: str, expected: Any) -> None:
    assert evaluate(expr, DATA) == expected


@pytest.mark.parametrize(
    ("expr", "detail"),
    [
        pytest.param("metadata.missing", "jsonpath returned empty list", id="missing-key"),
        pytest.param("spec.optional.deeper", "jsonpath returned empty list", id="through-null"),
        pytest.param("metadata.name.length", "jsonpath returned empty list", id="into-scalar"),
        pytest.param("spec.containers.name", "jsonpath returned empty list", id="field-of-list"),
        pytest.param(
            "spec.containers[5]", "array index out of bounds: index 5, length 2", id="index-oob"
        ),
        pytest.param(
            "spec.containers[0:3]",
            "array index out of bounds: index 2, length 2",
            id="slice-oob",
        ),
        pytest.param("metadata[0]", "a mapping is not array or slice", id="index-a-map"),
        pytest.param(
            "metadata[?(@.x)]",
            "a mapping is not array or slice and cannot be filtered",
            id="filter-a-map",
        ),
        pytest.param(
            'status.conditions[?(@.type=="Nope")].status',
            "jsonpath returned empty list",
            id="filter-no-match",
        ),
    ],
)
def test_evaluate_not_found(expr: str, detail: str) -> None:
    with pytest.raises(PathNotFoundError) as caught:
        evaluate(expr, DATA)
    assert caught.value.expr == expr
    assert caught.value.detail == detail
    assert str(caught.value) == f"{detail}: {expr}"


@pytest.mark.parametrize(
    ("expr", "detail"),
    [
        pytest.param("", "empty jsonpath not allowed", id="empty"),
        pytest.param("   ", "empty jsonpath not allowed", id="blank"),
        pytest.param(",", "unrecognized character in action: U+002C ','", id="comma"),
        pytest.param("a[", "unterminated array", id="unterminated-array"),
        pytest.param("a[x]", "invalid array index x", id="bad-index"),
        pytest.param("a[?(@.b==1]", "unterminated filter", id="unterminated-filter"),
        pytest.param("a[?(@.b)x", "unclosed array expect ]", id="filter-no-bracket"),
        pytest.param("a['b", "unterminated array", id="unterminated-quote"),
        pytest.param("a b", "unrecognized identifier b", id="identifier"),
        pytest.param("{.a}{.b}", "more than one query or text after the query", id="two-actions"),
        pytest.param("a....b", "invalid multiple recursive descent", id="double-recursive"),
        pytest.param("a[?(@.b=!1)]", "unrecognized filter operator =!", id="bad-operator"),
    ],
)
def test_syntax_errors(expr: str, detail: str) -> None:
    with pytest.raises(JSONPathSyntaxError) as caught:
        compile_path(expr)
    assert caught.value.detail == detail


@pytest.mark.parametrize(
    ("expr", "data", "detail"),
    [
        pytest.param(
            "a[?(@.n==1)]", {"a": [{"n": "1"}]}, "incompatible types for comparison", id="kinds"
        ),
        pytest.param("a[?(@.n==1)]", {"a": [{"n": None}]}, "invalid type for comparison", id="nil"),
        pytest.param("a[?(@.n<true)]", {"a": [{"n": True}]}, "invalid type for comparison", id="b"),
        pytest.param("a[0:1:0]", {"a": [1]}, "step must be > 0", id="zero-step"),
    ],
)
def test_evaluation_errors(expr: str, data: Any, detail: str) -> None:
    with pytest.raises(JSONPathError) as caught:
        evaluate(expr, data)
    assert caught.value.detail == detail


@pytest.mark.parametrize(
    ("expr", "data", "expected"),
    [
        pytest.param("a[?(@.n==1.0)].k", {"a": [{"n": 1, "k": "x"}]}, "x", id="int-vs-float"),
        pytest.param("a[?(@.b==true)].k", {"a": [{"b": True, "k": "y"}]}, "y", id="bool-literal"),
        pytest.param("a[?(@.n==-2)].k", {"a": [{"n": -2, "k": "z"}]}, "z", id="negative"),
        pytest.param("a[?(@.x==@.y)].k", {"a": [{"x": 1, "y": 1, "k": "w"}]}, "w", id="paths"),
        pytest.param("a[::2]", {"a": [1, 2, 3]}, [1, 3], id="step"),
        pytest.param("a[?(@.b)].k", {"a": [{"b": None, "k": "n"}]}, "n", id="exists-null"),
    ],
)
def test_filter_and_slice_details(expr: str, data: Any, expected: Any) -> None:
    assert evaluate(expr, data) == expected


@pytest.mark.parametrize(
    ("expr", "error", "message"),
    [
        pytest.param(
            "spec.containers[*].name",
            AmbiguousPathError,
            "too many results for the query: spec.containers[*].name",
            id="too-many",
        ),
        pytest.param(
            "spec.nothing",
            PathNotFoundError,
            "jsonpath returned empty list: spec.nothing",
            id="none",
        ),
    ],
)
def test_evaluate_single_errors(expr: str, error: type[JSONPathError], message: str) -> None:
    with pytest.raises(error) as caught:
        evaluate_single(expr, DATA)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("spec.containers[?(@.name=='app')].image", "app:1"),
        ("spec.optional", None),
    ],
)
def test_evaluate_single(expr: str, expected: Any) -> None:
    assert evaluate_single(expr, DATA) == expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [("spec.containers[*].name", ["app", "sidecar"]), ("metadata.nope", [])],
)
def test_find_returns_every_result(expr: str, expected: list[Any]) -> None:
    assert compile_path(expr).find(DATA) == expected


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [("a.b", "a.b", True), ("a.b", ".a.b", False)],
)
def test_compile_is_cached(first: str, second: str, same: bool) -> None:
    assert (compile_path(first) is compile_path(second)) is same


@pytest.mark.parametrize(
    "error",
    [JSONPathSyntaxError, PathNotFoundError, AmbiguousPathError],
)
def test_errors_are_reconciler_errors(error: type[JSONPathError]) -> None:
    assert issubclass(error, JSONPathError)
    assert issubclass(error, ReconcilerError)


@pytest.mark.parametrize(
    ("expr", "data"),
    [("a", {"a": {"k": [1]}}), ("a.k", {"a": {"k": [1]}})],
)
def test_results_are_references(expr: str, data: Any) -> None:
    assert evaluate(expr, data) is compile_path(expr).find(data)[0]


@pytest.mark.parametrize("expr", [
    "metadata.name", ".metadata.labels.tier", "{.spec.replicas}", "$.spec.paused",
    "spec.optional", "spec.optional.deeper", "metadata.name.length", "spec.containers.name",
    "metadata['labels']['app.kubernetes.io/name']", r"metadata.labels.app\.kubernetes\.io/name",
    "{.}", "$", "missing.key", "spec",
])
@pytest.mark.parametrize("data", [DATA, {"spec": [1, 2]}, "text", None, {"metadata": "x"}])
def test_a_path_of_plain_keys_selects_what_the_general_steps_select(expr: str,
                                                                    data: Any) -> None:
    path = compile_path(expr)
    assert path.fields is not None  # the direct walk is the one tested here
    general = path.steps
    found = path.find(data)
    assert found == _general_find(general, data)
    assert all(a is b for a, b in zip(found, _general_find(general, data), strict=True))


@pytest.mark.parametrize("expr", ["spec.containers[0].name", "..name", "metadata.*",
                                  "spec.containers[?(@.name=='app')].image"])
def test_other_paths_run_the_general_steps(expr: str) -> None:
    assert compile_path(expr).fields is None


def test_a_path_of_plain_keys_reads_any_mapping() -> None:
    data = MappingProxyType({"a": MappingProxyType({"b": 1})})
    assert evaluate_single("a.b", data) == 1
    with pytest.raises(PathNotFoundError):
        evaluate_single("a.c", data)


def _general_find(steps: Any, data: Any) -> list[Any]:
    values = [data]
    for step in steps:
        values = step(values, "")
    return values
