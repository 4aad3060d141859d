"""Turning a template into the object to stamp: `$(...)$` interpolation or sandboxed Jinja2.

`ytt:` templates need the ytt binary, which the product does not ship: they fail with a clear
message instead of being half-supported.

A Jinja2 template is untrusted code, so a render is bounded (`Limits`), and every bound that
trips is a `RenderLimitError` (a `RenderError`: the resource gets a TemplateStampFailure
condition, the other resources and owners go on):

- time: `render_seconds` of CPU time, enforced by a trace function active only during the
  render and only in this thread; it sees every line of the compiled template (so a pure loop
  such as two nested `range(100000)` stops) and every call, and also honours the reconcile's
  deadline;
- iterations: `render_iterations` loop iterations and range items in total;
- size: `render_bytes` for the output and for any string or list an operator (`*`, `+`, `**`,
  `%`, `~`), a method (`center`, `ljust`, `replace`, `format`, ...) or a filter produces; numbers
  past that size (`10 ** 10 ** 10`) are refused before they are computed;
- `RecursionError` (recursive macros) and `MemoryError` become render failures, never crashes.
"""

from __future__ import annotations

import base64
import json
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import FrameType
from typing import Any

import yaml
from jinja2 import Environment, StrictUndefined, TemplateError, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import MAX_RANGE, ImmutableSandboxedEnvironment

from reconciler.chains.blueprint import Template
from reconciler.chains.interpolate import interpolate
from reconciler.model.errors import LoadError, ReconcilerError
from reconciler.model.limits import DEFAULT_LIMITS, Limits, check_deadline
from reconciler.model.yamlsafe import load_yaml

YTT_UNSUPPORTED = (
    "ytt templates are not supported: the ytt binary is not available to this reconciler. "
    "Rewrite spec.ytt as spec.template (with $(...)$ interpolation) or as spec.jinja2 "
    "(a sandboxed Jinja2 template rendering one YAML object)"
)
_TEMPLATE_FILE = "<template>"


class RenderError(ReconcilerError):
    pass


class RenderLimitError(RenderError):
    """A render would exceed one of its bounds; ``limit`` names the `Limits` field."""

    def __init__(self, limit: str, detail: str) -> None:
        self.limit = limit
        super().__init__(f"jinja2 template exceeded a limit: {detail} (limit {limit})")


class _Budget:
    """The bounds of the render running in this thread."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.iterations = 0
        self.events = 0
        self.cpu_at = time.thread_time() + limits.render_seconds

    def iterate(self, count: int = 1) -> None:
        self.iterations += count
        if self.iterations > self.limits.render_iterations:
            raise RenderLimitError(
                "render_iterations", f"more than {self.limits.render_iterations} steps (loop "
                "iterations, range items and template lines run)")

    def check_time(self) -> None:
        if time.thread_time() > self.cpu_at:
            raise RenderLimitError("render_seconds", f"rendering took more than "
                                   f"{self.limits.render_seconds:g}s of CPU time")
        check_deadline("rendering a jinja2 template")


_local = threading.local()


def _budget() -> _Budget | None:
    return getattr(_local, "budget", None)


def _limits() -> Limits:
    budget = _budget()
    return budget.limits if budget is not None else DEFAULT_LIMITS


def _tracer(frame: FrameType, event: str, arg: Any) -> Any:
    """The global trace function during a render: line-trace only the template's own code."""
    budget = _budget()
    if budget is None:
        return None
    budget.events += 1
    if budget.events & 0x3F == 0:
        budget.check_time()
    if frame.f_code.co_filename == _TEMPLATE_FILE:
        return _line_tracer
    return None


def _line_tracer(frame: FrameType, event: str, arg: Any) -> Any:
    budget = _budget()
    if budget is None:
        return None
    if event == "line":
        budget.iterate()
        if budget.iterations & 0x3FF == 0:
            budget.check_time()
    return _line_tracer


@contextmanager
def _bounded(limits: Limits) -> Iterator[_Budget]:
    """Trace this thread (only) for the duration of one render."""
    budget = _Budget(limits)
    outer_budget = _budget()
    outer_trace = sys.gettrace()
    _local.budget = budget
    sys.settrace(_tracer)
    try:
        yield budget
    finally:
        sys.settrace(outer_trace)
        _local.budget = outer_budget


# --- size checks --------------------------------------------------------------------------------


def _too_large(what: str) -> RenderLimitError:
    return RenderLimitError("render_bytes", f"{what} would be larger than "
                                            f"{_limits().render_bytes} bytes")


def _check_size(value: Any, what: str) -> Any:
    if isinstance(value, str | bytes | list | tuple) and len(value) > _limits().render_bytes:
        raise _too_large(what)
    return value


def _check_ints(values: Any, what: str) -> None:
    """Widths, counts and repeat factors past the output limit are refused before use."""
    limit = _limits().render_bytes
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > limit:
            raise _too_large(f"{what} with argument {value}")


def _check_format(text: Any, what: str) -> None:
    """A format string whose width or precision is past the output limit is refused."""
    if isinstance(text, str):
        _check_ints((int(digits) for digits in re.findall(r"\d{7,}", text)), what)


def _int_bits(value: Any) -> int:
    return abs(value).bit_length() if isinstance(value, int) else 0


def _sized(value: Any) -> int:
    return len(value) if isinstance(value, str | bytes | list | tuple) else 0


# --- the environment ----------------------------------------------------------------------------


class _BoundedCodeGenerator(CodeGenerator):
    """`~` concatenation goes through the environment, which bounds its size."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:  # noqa: N802
        self.write("environment.bounded_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class BoundedSandbox(ImmutableSandboxedEnvironment):
    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset({"**", "*", "+", "%", "//", "/", "-"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals["range"] = self.bounded_range
        self.filters = {name: _bounded_filter(name, func) for name, func in self.filters.items()}

    def bounded_range(self, *args: int) -> range:
        items = range(*args)
        if len(items) > MAX_RANGE:
            raise RenderLimitError("render_iterations", f"range of {len(items)} items is larger "
                                   f"than {MAX_RANGE}")
        budget = _budget()
        if budget is not None:
            budget.iterate(len(items))
        return items

    def bounded_concat(self, parts: tuple[Any, ...]) -> str:
        limit = _limits().render_bytes
        texts = [str(part) for part in parts]
        if sum(len(text) for text in texts) > limit:
            raise _too_large("a ~ concatenation")
        return "".join(texts)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        limits = _limits()
        max_bits = limits.render_bytes * 8
        if operator == "**":
            if isinstance(left, int) and isinstance(right, int) and right > 0 \
                    and _int_bits(left) > 1 and _int_bits(left) * right > max_bits:
                raise _too_large(f"{left} ** {right}")
        elif operator == "*":
            if _sized(left) or _sized(right):
                count = right if _sized(left) else left
                if isinstance(count, int) and max(_sized(left), _sized(right)) * count > \
                        limits.render_bytes:
                    raise _too_large("a repeated string or list")
            elif _int_bits(left) + _int_bits(right) > max_bits:
                raise _too_large("a product")
        elif operator == "+":
            if _sized(left) + _sized(right) > limits.render_bytes:
                raise _too_large("a concatenation")
        elif operator == "%" and isinstance(left, str):
            _check_format(left, "a % format")
            _check_ints(right if isinstance(right, tuple) else (right,), "a % format")
        return _check_size(self.binop_table[operator](left, right), f"the result of {operator}")

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        text = value.__self__

        def checked(*args: Any, **kwargs: Any) -> str:
            _check_format(text, "a format string")
            values = [*args, *kwargs.values()]
            if value.__name__ == "format_map" and args and isinstance(args[0], Mapping):
                values.extend(args[0].values())
            _check_ints(values, "a format string")
            return str(_check_size(wrapped(*args, **kwargs), "a formatted string"))

        return checked

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        owner = getattr(__obj, "__self__", None)
        name = getattr(__obj, "__name__", "a call")
        if isinstance(owner, str | bytes | list | tuple):
            _check_ints((*args, *kwargs.values()), f"{name}()")
            if name == "replace" and len(args) >= 2:
                _check_replace(owner, args[0], args[1])
            if name == "join" and args:
                _check_join(args[0], owner)
        return _check_size(super().call(__context, __obj, *args, **kwargs), f"the result of {name}")


def _check_replace(text: Any, old: Any, new: Any) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        count = len(text) + 1 if old == "" else text.count(old)
        if len(text) + count * len(new) > _limits().render_bytes:
            raise _too_large("replace()")


def _check_join(items: Any, separator: Any) -> None:
    if isinstance(items, list | tuple) and isinstance(separator, str):
        budget = _budget()
        if budget is not None:
            budget.iterate(len(items))
        if len(separator) * len(items) > _limits().render_bytes:
            raise _too_large("join()")


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    def bounded(*args: Any, **kwargs: Any) -> Any:
        plain = [a for a in args if not isinstance(a, Context | EvalContext | Environment)]
        _check_ints((*plain[1:], *kwargs.values()), f"the {name} filter")
        if name == "format" and plain:
            _check_format(plain[0], "the format filter")
        if name == "replace" and len(plain) >= 3:
            _check_replace(plain[0], plain[1], plain[2])
        if name == "join" and plain:
            _check_join(plain[0], plain[1] if len(plain) > 1 else kwargs.get("d", ""))
        return _check_size(func(*args, **kwargs), f"the result of the {name} filter")

    # Keep jinja2's pass_context / pass_environment markers.
    for marker in ("jinja_pass_arg",):
        if hasattr(func, marker):
            setattr(bounded, marker, getattr(func, marker))
    bounded.__name__ = getattr(func, "__name__", name)
    return bounded


_JINJA = BoundedSandbox(undefined=StrictUndefined, autoescape=False)
_JINJA.filters["to_json"] = _bounded_filter(
    "to_json", lambda value: json.dumps(value, sort_keys=True))
_JINJA.filters["to_yaml"] = _bounded_filter(
    "to_yaml", lambda value: yaml.safe_dump(value, sort_keys=True).rstrip("\n"))
# What TAP's config-writer does with ytt's base64.encode: the git-writer's `git_files` param is
# base64 of the JSON of the files to write (`{{ config | to_json | b64encode }}`).
_JINJA.filters["b64encode"] = _bounded_filter("b64encode", lambda value: _b64encode(value))


def _b64encode(value: Any) -> str:
    """Base64 of a string's UTF-8; anything else is refused rather than encoded as its Python
    repr (`{'a': 1}`), which no consumer could read: pipe a map or list through `to_json` or
    `to_yaml` first."""
    if not isinstance(value, str):
        raise RenderError(f"jinja2 template failed: the b64encode filter takes a string, not "
                          f"{type(value).__name__} (write `| to_json | b64encode`)")
    return base64.b64encode(value.encode("utf-8")).decode("ascii")


def render(template: Template, context: Mapping[str, Any],
           limits: Limits = DEFAULT_LIMITS) -> Any:
    spec = template.spec
    if "ytt" in spec:
        raise RenderError(YTT_UNSUPPORTED)
    if "jinja2" in spec:
        return _render_jinja(str(spec["jinja2"]), context, limits)
    if "template" in spec:
        return interpolate(spec["template"], context, limits)
    raise RenderError("template has none of spec.template, spec.jinja2 (or spec.ytt)")


def _render_jinja(source: str, context: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS) -> Any:
    try:
        with _bounded(limits):
            compiled = _JINJA.from_string(source)
            size = 0
            chunks: list[str] = []
            for chunk in compiled.generate(**context):
                size += len(chunk)
                if size > limits.render_bytes:
                    raise RenderLimitError("render_bytes", f"the output is larger than "
                                                           f"{limits.render_bytes} bytes")
                chunks.append(chunk)
            text = "".join(chunks)
    except RenderError:
        raise
    except TemplateError as exc:
        raise RenderError(f"jinja2 template failed: {exc}") from exc
    except RecursionError as exc:
        raise RenderLimitError("recursion depth", "recursion too deep (a macro or loop that "
                               "calls itself without end?)") from exc
    except MemoryError as exc:
        raise RenderLimitError("render_bytes", "the render ran out of memory") from exc
    except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
        # User template code raises plain Python errors too ({% include %} without a loader,
        # 1/0, a bad int()): they are the template's fault and must become a condition.
        raise RenderError(f"jinja2 template failed: {type(exc).__name__}: {exc}") from exc
    try:
        return load_yaml(text, "the rendered jinja2 template", limits)
    except LoadError as exc:
        raise RenderError(f"jinja2 template did not render valid YAML: {exc}") from exc
