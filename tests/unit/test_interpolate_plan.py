"""interpolate's plan: a template is walked once for its tags, later interpolations visit only
those strings. The result must be what a full walk gives, for every context, and the cached
plan must never carry one template's content into another's result."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from reconciler.chains.interpolate import (
    InterpolationError,
    InterpolationLimitError,
    _Stamper,
    interpolate,
)
from reconciler.model.limits import Limits

CONTEXT: dict[str, Any] = {
    "workload": {
        "metadata": {"name": "app", "labels": {"team": "a"}},
        "spec": {"env": [{"name": "A", "value": "1"}], "replicas": 2, "on": True},
    },
    "params": {"nested": "$(workload.metadata.name)$-x", "empty": None},
    "source": {"url": "https://git/x", "revision": "abc"},
}

TEMPLATES: list[Any] = [
    "$(workload.metadata.name)$",
    "plain text",
    {"kind": "ConfigMap", "metadata": {"name": "fixed"}, "data": {"k": "v"}},
    {"metadata": {"name": "$(workload.metadata.name)$", "labels": {"a": "b"}},
     "spec": {"containers": [{"image": "x", "env": "$(workload.spec.env)$"},
                             {"image": "$(source.url)$@$(source.revision)$"}],
              "static": {"deep": [1, 2.5, True, None]}}},
    {"a": ["$(params.nested)$", ["$(workload.spec.replicas)$", "keep"]], "b": "$(params.empty)$"},
    {"list": [{"x": "$(workload.spec.on)$"}, {"y": "no tag"}], "n": 3},
    {"broken": "$(unterminated", "ok": "$(workload.metadata.labels)$"},
]


def _shared_with(result: Any, template: Any) -> list[str]:
    """Paths of containers the result shares (the same object) with the template."""
    found: list[str] = []

    def visit(res: Any, tpl: Any, path: str) -> None:
        if isinstance(res, dict | list) and res is tpl:
            found.append(path)
            return
        if isinstance(res, dict) and isinstance(tpl, dict):
            for key in res:
                if key in tpl:
                    visit(res[key], tpl[key], f"{path}.{key}")
        elif isinstance(res, list) and isinstance(tpl, list):
            for index, (r, t) in enumerate(zip(res, tpl, strict=False)):
                visit(r, t, f"{path}[{index}]")

    visit(result, template, "")
    return found


@pytest.mark.parametrize("template", TEMPLATES)
def test_a_planned_interpolation_is_the_full_walk(template: Any) -> None:
    for _ in range(2):  # the second time the plan comes from the cache
        fresh = copy.deepcopy(template)  # equal content, other objects
        before = copy.deepcopy(fresh)
        walked = _Stamper(CONTEXT).walk(copy.deepcopy(template), "", ())
        result = interpolate(fresh, CONTEXT)
        assert result == walked
        assert fresh == before  # the template is never changed
        reference = copy.deepcopy(template)
        assert _shared_with(result, fresh) == _shared_with(
            _Stamper(CONTEXT).walk(reference, "", ()), reference)


def test_a_cached_plan_renders_the_values_of_each_context() -> None:
    template = {"metadata": {"name": "$(workload.metadata.name)$"},
                "spec": {"status": "$(workload.status.observedGeneration)$"}}
    seen = []
    for generation in (1, 2, 3):
        context = {"workload": {"metadata": {"name": f"app-{generation}"},
                                "status": {"observedGeneration": generation}}}
        seen.append(interpolate(copy.deepcopy(template), context))
    assert [s["spec"]["status"] for s in seen] == [1, 2, 3]
    assert [s["metadata"]["name"] for s in seen] == ["app-1", "app-2", "app-3"]


@pytest.mark.parametrize(("first", "second"), [
    ({"a": "$(source.url)$"}, {"a": "$(source.revision)$"}),
    ({"a": "$(source.url)$", "b": 1}, {"a": "$(source.url)$", "b": True}),
    ({"a": "$(source.url)$", "b": 1}, {"a": "$(source.url)$", "b": 1.0}),
    ({"a": "$(source.url)$", "b": "x"}, {"b": "x", "a": "$(source.url)$"}),
    ({"a": ["$(source.url)$", "x"]}, {"a": ["x", "$(source.url)$"]}),
])
def test_templates_that_differ_get_their_own_plan(first: Any, second: Any) -> None:
    assert interpolate(first, CONTEXT) == _Stamper(CONTEXT).walk(first, "", ())
    result = interpolate(second, CONTEXT)
    assert result == _Stamper(CONTEXT).walk(second, "", ())
    assert [type(v) for v in result.values()] == [type(v) for v in second.values()]


def test_errors_name_the_first_failing_tag_in_walk_order() -> None:
    template = {"spec": {"x": "$(missing.one)$", "y": ["$(missing.two)$"]}}
    for _ in range(2):
        with pytest.raises(InterpolationError) as caught:
            interpolate(copy.deepcopy(template), CONTEXT)
        assert caught.value.location == "spec.x"
        assert caught.value.path == "missing.one"


def test_the_whole_result_is_bounded_although_each_value_fits() -> None:
    limits = Limits(interpolation_bytes=1000)
    context = {"v": "x" * 300}
    fits = {f"k{i}": "$(v)$" for i in range(3)}  # about 920 bytes
    assert interpolate(fits, context, limits) == {f"k{i}": "x" * 300 for i in range(3)}
    too_large = {f"k{i}": "$(v)$" for i in range(4)}  # about 1230 bytes
    with pytest.raises(InterpolationLimitError) as caught:
        interpolate(too_large, context, limits)
    assert caught.value.limit == "interpolation_bytes"
    assert "the interpolated template is larger than 1000 bytes" in str(caught.value)


def test_a_template_too_large_to_cache_is_still_interpolated() -> None:
    big = {"data": {f"k{i}": "y" * 100 for i in range(1000)}, "name": "$(source.url)$"}
    result = interpolate(big, CONTEXT)
    assert result["name"] == "https://git/x"
    assert result["data"] is big["data"]


def test_a_template_that_is_not_plain_data_is_interpolated_without_a_cached_plan() -> None:
    class Tagged(str):
        pass

    template = {"a": Tagged("$(source.url)$"), "b": (1, "$(source.url)$")}
    result = interpolate(template, CONTEXT)
    assert result == {"a": "https://git/x", "b": (1, "$(source.url)$")}  # tuples are kept


def _outcome(run: Any) -> Any:
    try:
        return run()
    except InterpolationError as exc:
        return (type(exc), str(exc))


@pytest.mark.parametrize("depth", [1, 2])
@pytest.mark.parametrize("template", TEMPLATES)
def test_a_planned_interpolation_keeps_the_depth_limit(template: Any, depth: int) -> None:
    limits = Limits(interpolation_depth=depth)
    planned = _outcome(lambda: interpolate(copy.deepcopy(template), CONTEXT, limits))
    walked = _outcome(lambda: _Stamper(CONTEXT, limits).walk(copy.deepcopy(template), "", ()))
    assert planned == walked
