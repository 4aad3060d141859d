"""Turning a template into the object to stamp: `$(...)$` interpolation or sandboxed Jinja2.

`ytt:` templates need the ytt binary, which the product does not ship: they fail with a clear
message instead of being half-supported.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import yaml
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from reconciler.chains.blueprint import Template
from reconciler.chains.interpolate import interpolate
from reconciler.model.errors import ReconcilerError

YTT_UNSUPPORTED = (
    "ytt templates are not supported: the ytt binary is not available to this reconciler. "
    "Rewrite spec.ytt as spec.template (with $(...)$ interpolation) or as spec.jinja2 "
    "(a sandboxed Jinja2 template rendering one YAML object)"
)


class RenderError(ReconcilerError):
    pass


_JINJA = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
_JINJA.filters["to_json"] = lambda value: json.dumps(value, sort_keys=True)
_JINJA.filters["to_yaml"] = lambda value: yaml.safe_dump(value, sort_keys=True).rstrip("\n")


def render(template: Template, context: Mapping[str, Any]) -> Any:
    spec = template.spec
    if "ytt" in spec:
        raise RenderError(YTT_UNSUPPORTED)
    if "jinja2" in spec:
        return _render_jinja(str(spec["jinja2"]), context)
    if "template" in spec:
        return interpolate(spec["template"], context)
    raise RenderError("template has none of spec.template, spec.jinja2 (or spec.ytt)")


def _render_jinja(source: str, context: Mapping[str, Any]) -> Any:
    try:
        text = _JINJA.from_string(source).render(**context)
    except TemplateError as exc:
        raise RenderError(f"jinja2 template failed: {exc}") from exc
    except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
        # User template code raises plain Python errors too ({% include %} without a loader,
        # 1/0, a bad int()): they are the template's fault and must become a condition.
        raise RenderError(f"jinja2 template failed: {type(exc).__name__}: {exc}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RenderError(f"jinja2 template did not render valid YAML: {exc}") from exc
