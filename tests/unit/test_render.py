"""Rendering templates: `$(...)$`, sandboxed Jinja2, and a clear refusal of ytt."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from reconciler.chains.blueprint import Template
from reconciler.chains.render import YTT_UNSUPPORTED, RenderError, render


def _template(spec: dict[str, Any]) -> Template:
    return Template("ClusterTemplate", "t", {"apiVersion": "carto.run/v1alpha1",
                                             "kind": "ClusterTemplate",
                                             "metadata": {"name": "t"}, "spec": spec})


CONTEXT: dict[str, Any] = {
    "workload": {"metadata": {"name": "app", "labels": {"team": "a"}}},
    "params": {"replicas": 2, "env": [{"name": "A", "value": "1"}]},
}


def test_jinja2_renders_one_yaml_object() -> None:
    source = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ workload.metadata.name }}-config
data:
  replicas: "{{ params.replicas }}"
  env: '{{ params.env | to_json }}'
{% for k, v in workload.metadata.labels.items() %}
  label-{{ k }}: {{ v }}
{% endfor %}
"""
    out = render(_template({"jinja2": source}), CONTEXT)
    assert out["metadata"]["name"] == "app-config"
    assert out["data"] == {"replicas": "2", "env": '[{"name": "A", "value": "1"}]',
                           "label-team": "a"}


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("{{ ''.__class__ }}", "dunder attribute of a str"),
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "walk to object's subclasses"),
        ("{{ workload.__init__.__globals__ }}", "function globals"),
        ("{{ params.items.__self__ }}", "bound method internals"),
        ("{{ cycler.__init__.__globals__.os.popen('id').read() }}", "jinja globals to os"),
        ("{{ lipsum.__globals__['os'].system('true') }}", "lipsum globals"),
        ("{% set x = params.update({'replicas': 9}) %}{{ x }}", "mutating the context"),
        ("{{ undefined_name }}", "undefined names are errors, not empty"),
        ("{% include '/etc/passwd' %}", "no template loader: no file access"),
        ("{% import 'os' as os %}", "no imports"),
    ],
)
def test_jinja2_sandbox_refuses(source: str, why: str) -> None:
    with pytest.raises(RenderError, match="jinja2 template failed"):
        render(_template({"jinja2": source}), CONTEXT)


def test_jinja2_has_no_file_or_network_helpers() -> None:
    # Only pure filters are offered; nothing that opens files or sockets is in the environment.
    from reconciler.chains import render as module

    exposed = set(module._JINJA.globals) | set(module._JINJA.filters)
    assert not exposed & {"open", "urlopen", "read_file", "include_file", "fetch", "http_get"}


def test_jinja2_invalid_yaml_is_a_render_error() -> None:
    with pytest.raises(RenderError, match="did not render valid YAML"):
        render(_template({"jinja2": "a: [unclosed"}), CONTEXT)


def test_ytt_is_refused_with_a_pointer_to_supported_languages() -> None:
    with pytest.raises(RenderError) as exc:
        render(_template({"ytt": "#@ load('@ytt:data', 'data')\nkind: ConfigMap\n"}), CONTEXT)
    assert str(exc.value) == YTT_UNSUPPORTED
    assert "spec.template" in YTT_UNSUPPORTED and "spec.jinja2" in YTT_UNSUPPORTED


def test_interpolation_keeps_type_of_a_lone_tag() -> None:
    out = render(_template({"template": {"kind": "X", "apiVersion": "v1",
                                         "spec": {"n": "$(params.replicas)$",
                                                  "s": "n=$(params.replicas)$"}}}), CONTEXT)
    assert out["spec"] == {"n": 2, "s": "n=2"}


def test_b64encode_takes_a_string_and_refuses_a_map_or_a_number() -> None:
    encoded = "{{ params.env | to_json | b64encode }}"
    out = render(_template({"jinja2": f"data: {{files: '{encoded}'}}"}), CONTEXT)
    assert base64.b64decode(out["data"]["files"]) == b'[{"name": "A", "value": "1"}]'
    for value, kind in (("params", "dict"), ("params.env", "list"), ("params.replicas", "int")):
        source = f"data: {{files: '{{{{ {value} | b64encode }}}}'}}"
        with pytest.raises(RenderError, match=f"b64encode filter takes a string, not {kind}"):
            render(_template({"jinja2": source}), CONTEXT)
