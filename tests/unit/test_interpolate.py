"""interpolate: Cartographer's $(path)$ stamping, including its error messages."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.chains.interpolate import InterpolationError, find_tags, go_json, interpolate
from reconciler.model.errors import ReconcilerError

CONTEXT: dict[str, Any] = {
    "workload": {
        "metadata": {"name": "petclinic", "labels": {"app.kubernetes.io/part-of": "shop"}},
        "spec": {
            "env": [{"name": "A", "value": "1"}],
            "replicas": 3,
            "ratio": 0.5,
            "enabled": True,
            "nothing": None,
            "html": "<b>&</b>",
        },
    },
    "params": {
        "sub": "5",
        "greeting": "hello $(workload.metadata.name)$",
        "loop-a": "$(params.loop-b)$",
        "loop-b": "$(params.loop-a)$",
        "self": "$(params.self)$",
        "map": {"inner": "$(workload.metadata.name)$"},
    },
    "sources": {"source": {"url": "https://git/x", "revision": "abc"}},
    "source": {"url": "https://git/x", "revision": "abc"},
    "image": "registry/app@sha256:1",
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        pytest.param("$(workload.metadata.name)$", "petclinic", id="string"),
        pytest.param("$( workload.metadata.name )$", "petclinic", id="whitespace-in-tag"),
        pytest.param("$(params.sub)$", "5", id="string-stays-string"),
        pytest.param("$(workload.spec.replicas)$", 3, id="int-kept"),
        pytest.param("$(workload.spec.enabled)$", True, id="bool-kept"),
        pytest.param("$(workload.spec.nothing)$", None, id="null-kept"),
        pytest.param("$(workload.spec.env)$", [{"name": "A", "value": "1"}], id="list-kept"),
        pytest.param("$(image)$", "registry/app@sha256:1", id="top-level-key"),
        pytest.param("$(sources.source.url)$", "https://git/x", id="sources"),
        pytest.param("b$(params.sub)$", "b5", id="prefix"),
        pytest.param("$(params.sub)$$(params.sub)$", "55", id="two-tags"),
        pytest.param("[$(workload.spec.replicas)$]", "[3]", id="int-in-text"),
        pytest.param("r=$(workload.spec.ratio)$", "r=0.5", id="float-in-text"),
        pytest.param("on=$(workload.spec.enabled)$", "on=true", id="bool-in-text"),
        pytest.param(
            "env=$(workload.spec.env)$", 'env=[{"name":"A","value":"1"}]', id="json-in-text"
        ),
        pytest.param("h=$(workload.spec.html)$", "h=<b>&</b>", id="string-not-escaped"),
        pytest.param("a $( b", "a $( b", id="unterminated-tag-is-text"),
        pytest.param("no tags", "no tags", id="no-tags"),
        pytest.param("$(params.greeting)$", "hello petclinic", id="nested-tags-expanded"),
        pytest.param(
            "$(params.map)$", {"inner": "petclinic"}, id="nested-tags-in-container-expanded"
        ),
        pytest.param("$(params.self)$", "$(params.self)$", id="self-reference-stops"),
        pytest.param(
            {"$(image)$": ["x-$(workload.metadata.name)$", 7, None]},
            {"$(image)$": ["x-petclinic", 7, None]},
            id="keys-not-interpolated",
        ),
        pytest.param(
            "$(workload.metadata.labels.app\\.kubernetes\\.io/part-of)$",
            "shop",
            id="escaped-dots",
        ),
    ],
)
def test_interpolate(template: Any, expected: Any) -> None:
    assert interpolate(template, CONTEXT) == expected


@pytest.mark.parametrize(
    ("template", "path", "message"),
    [
        pytest.param(
            {"spec": {"x": "$(workload.spec.foo)$"}},
            "workload.spec.foo",
            "failed to interpolate template at path [spec.x]: evaluate tag "
            "$(workload.spec.foo)$: jsonpath returned empty list: workload.spec.foo",
            id="missing-single",
        ),
        pytest.param(
            {"items": ["a-$(params.nope)$"]},
            "params.nope",
            "failed to interpolate template at path [items[0]]: evaluate tag "
            "$(params.nope)$: jsonpath returned empty list: params.nope",
            id="missing-in-text",
        ),
        pytest.param(
            "x$(workload.spec.nothing)$",
            "workload.spec.nothing",
            "failed to interpolate template: evaluate tag $(workload.spec.nothing)$: "
            "tag must not point to nil value: workload.spec.nothing",
            id="null-in-text",
        ),
        pytest.param(
            "$(params.loop-a)$",
            "$(params.loop-b)$",
            "failed to interpolate template: infinite tag loop detected: "
            "$(params.loop-a)$ -> $(params.loop-b)$ -> $(params.loop-a)$",
            id="loop",
        ),
        pytest.param(
            "$()$",
            "",
            "failed to interpolate template: evaluate tag $()$: empty jsonpath not allowed",
            id="empty-tag",
        ),
        pytest.param(
            "$(,)$",
            ",",
            "failed to interpolate template: evaluate tag $(,)$: "
            "unrecognized character in action: U+002C ',': ,",
            id="unparsable-tag",
        ),
        pytest.param(
            "$(source.*)$",
            "source.*",
            "failed to interpolate template: evaluate tag $(source.*)$: "
            "too many results for the query: source.*",
            id="too-many-results",
        ),
    ],
)
def test_interpolate_errors(template: Any, path: str, message: str) -> None:
    with pytest.raises(InterpolationError) as caught:
        interpolate(template, CONTEXT)
    assert caught.value.path == path
    assert str(caught.value) == message
    assert isinstance(caught.value, ReconcilerError)


@pytest.mark.parametrize(
    "template",
    [
        {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "b", "n": [1, {"x": "y"}]}},
        ["plain", {"nested": ["list"]}],
    ],
)
def test_untagged_templates_are_not_copied(template: Any) -> None:
    assert interpolate(template, CONTEXT) is template


@pytest.mark.parametrize("template", ["$(workload.spec.env)$", {"copy": "$(workload.spec.env)$"}])
def test_context_values_are_not_aliased(template: Any) -> None:
    stamped = interpolate(template, CONTEXT)
    env = stamped if isinstance(stamped, list) else stamped["copy"]
    assert env == CONTEXT["workload"]["spec"]["env"]
    assert env is not CONTEXT["workload"]["spec"]["env"]
    assert env[0] is not CONTEXT["workload"]["spec"]["env"][0]


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        pytest.param("$(a.b)$", ["a.b"], id="single"),
        pytest.param("x $( a )$ y $(b)$ $(a)$", ["a", "b"], id="text-dedup-stripped"),
        pytest.param({"$(key)$": ["$(v)$", {"w": "$(w)$"}]}, ["v", "w"], id="nested-no-keys"),
        pytest.param("$(unterminated", [], id="unterminated"),
        pytest.param(["no", 1, None], [], id="none"),
    ],
)
def test_find_tags(template: Any, expected: list[str]) -> None:
    assert find_tags(template) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "null"),
        (3, "3"),
        (3.0, "3"),
        (1e21, "1e+21"),
        (1e-7, "1e-7"),
        (0.000001, "0.000001"),
        (12345678901234567890, "12345678901234567000"),
        ('a"b\\<>&\u2028\x01', '"a\\"b\\\\\\u003c\\u003e\\u0026\\u2028\\u0001"'),
        ({"b": 1, "a": [True, None]}, '{"a":[true,null],"b":1}'),
    ],
)
def test_go_json(value: Any, expected: str) -> None:
    assert go_json(value) == expected


@pytest.mark.parametrize("value", [float("nan"), float("inf"), {1, 2}])
def test_go_json_rejects(value: Any) -> None:
    with pytest.raises(ValueError):
        go_json(value)
