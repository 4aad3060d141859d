"""Bounds on interpolation, JSONPath and Jinja2 rendering of untrusted templates."""

from __future__ import annotations

import sys
import time
from typing import Any

import pytest

from reconciler.chains.blueprint import Template
from reconciler.chains.interpolate import InterpolationLimitError, interpolate
from reconciler.chains.render import RenderError, RenderLimitError, render
from reconciler.model import jsonpath
from reconciler.model.limits import Limits


def _jinja(source: str) -> Template:
    return Template("ClusterTemplate", "t", {"apiVersion": "carto.run/v1alpha1",
                                             "kind": "ClusterTemplate", "metadata": {"name": "t"},
                                             "spec": {"jinja2": source}})


CONTEXT: dict[str, Any] = {"workload": {"metadata": {"name": "app"}}}


@pytest.mark.parametrize(
    ("source", "limit"),
    [
        ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
         "render_iterations"),
        ("{{ 10 ** (10 ** 10) }}", "render_bytes"),
        ("{{ 'x' * 10000000000 }}", "render_bytes"),
        ("{{ (range(10)|list) * 100000000 }}", "render_bytes"),
        ("{% set ns = namespace(s='xx') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
         "{% endfor %}{{ ns.s }}", "render_bytes"),
        ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "recursion"),
        ("{{ 'x'|center(1000000000) }}", "render_bytes"),
        ("{{ 'x'.ljust(1000000000) }}", "render_bytes"),
        ("{{ '{:>{}}'.format(1, 1000000000) }}", "render_bytes"),
        ("{{ '%1000000000d' % 1 }}", "render_bytes"),
        ("{{ ((('x' * 1000)|list) * 1000)|join('x' * 1000) }}", "render_"),
        ("{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}", "render_bytes"),
    ],
)
def test_jinja_bombs_become_render_limit_errors(source: str, limit: str) -> None:
    started = time.monotonic()
    with pytest.raises(RenderLimitError) as err:
        render(_jinja(source), CONTEXT)
    assert limit in str(err.value)
    assert time.monotonic() - started < 10
    assert sys.gettrace() is None or "coverage" in repr(sys.gettrace())


def test_cpu_time_bound_stops_a_pure_python_loop() -> None:
    limits = Limits(render_seconds=0.5, render_iterations=10**12)
    started = time.monotonic()
    with pytest.raises(RenderLimitError, match="render_seconds"):
        render(_jinja("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}"
                      "{% endfor %}"), CONTEXT, limits)
    assert time.monotonic() - started < 5


def test_ordinary_templates_still_render() -> None:
    out = render(_jinja("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ "
                        "workload.metadata.name }}\ndata:\n  a: '{{ '{}-{}'.format(1, 2) }}'\n"
                        "  b: '{{ [1, 2]|join(',') }}'\n  c: '{{ 2 ** 10 }}'\n"), CONTEXT)
    assert out["data"] == {"a": "1-2", "b": "1,2", "c": "1024"}


def test_rendered_yaml_is_bounded() -> None:
    laughs = "".join(f"  {chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9)
                     + "]\n" for i in range(6))
    with pytest.raises(RenderError, match="excessive aliasing"):
        render(_jinja("a: &a [x,x,x,x,x,x,x,x,x]\nd:\n" + laughs), CONTEXT)


def test_interpolation_depth_and_size() -> None:
    params = [{"value": f"$(p[{k + 1}].value)$"} for k in range(30)] + [{"value": "x"}]
    with pytest.raises(InterpolationLimitError, match="interpolation_depth") as err:
        interpolate({"a": "$(p[0].value)$"}, {"p": params})
    assert err.value.location == "a"
    doubling = [{"value": f"$(p[{k + 1}].value)$" * 2} for k in range(30)] + [{"value": "x"}]
    with pytest.raises(InterpolationLimitError, match=r"interpolation_(bytes|steps|work_bytes)"):
        interpolate({"a": "$(p[0].value)$"}, {"p": doubling}, Limits(interpolation_depth=64))
    with pytest.raises(InterpolationLimitError, match="interpolation_steps"):
        interpolate({"a": ["$(p[0].value)$"] * 200}, {"p": [{"value": "x"}]},
                    Limits(interpolation_steps=100))


def test_jsonpath_repeated_descent_is_bounded() -> None:
    data: Any = 0
    for _ in range(60):
        data = [data, 0]
    started = time.monotonic()
    with pytest.raises(jsonpath.JSONPathLimitError, match="jsonpath_results"):
        jsonpath.evaluate("...*...*...*...*", data)
    assert time.monotonic() - started < 5
