"""Kubernetes-style JSONPath over plain dict/list data, as Cartographer evaluates it.

This module owns path evaluation for templates (``$(workload.spec.foo)$``), output paths
(``urlPath``, ``revisionPath``, ``imagePath``, ``configPath``) and health rules. Cartographer wraps
a path as ``{.`` + path + ``}`` (``eval.ensureValidWrapping``) and hands it to client-go's
``util/jsonpath`` with ``AllowMissingKeys(true)``; the grammar and results here follow that
parser and evaluator:

* ``a.b``, ``.a.b`` and ``{.a.b}`` are the same path; ``$`` and ``@`` are no-ops; a field runs up
  to ``. , [ ] $ @ { }`` or whitespace, so keys may hold ``-`` and ``/``, and ``\\.`` escapes a dot
  (``labels.app\\.kubernetes\\.io/name``).
* ``[0]``, ``[-1]``, slices ``[1:3]``, ``[::2]``, ``[*]``, unions ``[0,2]``, filters
  ``[?(@.type=="Ready")]`` with ``== != < > <= >= =~`` and existence ``[?(@.name)]``, recursive
  descent ``..name`` and ``.*``.
* A missing key yields nothing (not an error); an explicit ``null`` at the end of a path is a
  result (``[None]``), as in client-go, where ``MapIndex`` of a present key is valid even when
  the value is nil. Stepping *through* a null yields nothing.
* An index outside a list is an error (client-go: "array index out of bounds"), as is indexing
  or filtering something that is not a list. These raise :class:`PathNotFoundError` with the
  reason in ``detail``.

Chosen where client-go is unhelpful (documented deviations):

* ``['x.y']`` and ``["x.y"]`` select the single key ``x.y``. client-go re-parses ``['x.y']`` as
  ``.x.y`` and rejects double quotes, a long-standing kubectl gotcha nobody relies on.
* Surrounding whitespace is stripped, so ``$( workload.metadata.name )$`` works; Cartographer
  would fail with "unrecognized identifier".
* Filter comparisons accept an int against a float (Go's templates refuse mixed kinds).
* ``.*`` and ``..`` do not descend into strings (client-go yields their bytes as numbers).
* ``range``/``end`` template keywords and several actions (``{.a}{.b}``) are rejected.

``=~`` matches with RE2, the engine behind Go's ``regexp``, so patterns have client-go's syntax
(no backreferences or lookaround) and matching takes time linear in the subject whatever the
pattern: a user-written pattern cannot backtrack for ever. A pattern written in the path is
compiled with the path (a bad one is a :class:`JSONPathSyntaxError`); one read from the data is
compiled when the filter meets it. Patterns longer than ``MAX_REGEXP_CHARS`` are refused.

Results are references into the data, never copies.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import re2

from reconciler.model.errors import ReconcilerError
from reconciler.model.limits import DEFAULT_LIMITS, check_deadline

__all__ = [
    "AmbiguousPathError",
    "JSONPathError",
    "JSONPathLimitError",
    "JSONPathSyntaxError",
    "Path",
    "PathNotFoundError",
    "compile_path",
    "evaluate",
    "evaluate_single",
]


class JSONPathError(ReconcilerError):
    """A JSONPath could not be parsed or evaluated; ``expr`` is the path as written."""

    def __init__(self, expr: str, detail: str) -> None:
        self.expr = expr
        self.detail = detail
        super().__init__(f"{detail}: {expr}" if expr else detail)


class JSONPathSyntaxError(JSONPathError):
    """The path is not valid client-go JSONPath (or uses a feature this module rejects)."""


class PathNotFoundError(JSONPathError):
    """The path selects nothing: a missing key, an index out of range, or a non-list indexed."""


class AmbiguousPathError(JSONPathError):
    """The path selects several values where Cartographer expects exactly one."""


EMPTY_RESULT: Final = "jsonpath returned empty list"
MAX_REGEXP_CHARS: Final = 4096
"""The longest ``=~`` pattern accepted (RE2 also bounds the memory of the compiled program)."""

# A step maps the current list of values to the next one; ``expr`` is only for error messages.
_Step = Callable[[list[Any], str], list[Any]]


@dataclass(frozen=True, slots=True)
class Path:
    """A compiled path; ``find`` returns every selected value (possibly none).

    ``fields`` is set when every step is a plain key (``workload.spec.source.git.url``, the
    common case in templates and output paths): such a path selects at most one value, so
    ``find`` walks the keys directly instead of running the general steps on lists.
    """

    expr: str
    steps: tuple[_Step, ...]
    fields: tuple[str, ...] | None = None

    def find(self, data: Any) -> list[Any]:
        fields = self.fields
        if fields is None:
            return _run(self.steps, [data], self.expr)
        check_deadline("evaluating a JSONPath")
        value = data
        for name in fields:
            # The same test as a `_Field` step: a mapping holding the key (no `in` on a list).
            if (type(value) is dict or isinstance(value, Mapping)) and name in value:
                value = value[name]
            else:
                return []
        return [value]


class JSONPathLimitError(JSONPathError):
    """Evaluating the path would select more values than ``Limits.jsonpath_results``."""


def _too_many(expr: str) -> JSONPathLimitError:
    limit = DEFAULT_LIMITS.jsonpath_results
    return JSONPathLimitError(expr, f"the path selects more than {limit} values "
                                    "(limit jsonpath_results)")


def _run(steps: Sequence[_Step], values: list[Any], expr: str) -> list[Any]:
    for step in steps:
        check_deadline("evaluating a JSONPath")
        values = step(values, expr)
        if len(values) > DEFAULT_LIMITS.jsonpath_results:
            raise _too_many(expr)
    return values


@functools.lru_cache(maxsize=2048)
def compile_path(expr: str) -> Path:
    """Parse ``expr`` (``a.b``, ``.a.b`` or ``{.a.b}``) once; later calls hit the cache."""
    text = expr.strip()
    if not text:
        raise JSONPathSyntaxError(expr, "empty jsonpath not allowed")
    parser = _Parser(expr, _wrap(text))
    steps = tuple(parser.parse_whole())
    names = [step.name for step in steps if isinstance(step, _Field)]
    fields = tuple(name for name in names if name) if len(names) == len(steps) else None
    return Path(expr, steps, fields)


def evaluate(expr: str, data: Any) -> Any:
    """Return the value at ``expr``, or the list of values when the path selects several.

    Raises :class:`PathNotFoundError` when the path selects nothing.
    """
    results = compile_path(expr).find(data)
    if not results:
        raise PathNotFoundError(expr, EMPTY_RESULT)
    if len(results) == 1:
        return results[0]
    return results


def evaluate_single(expr: str, data: Any) -> Any:
    """Cartographer's ``EvaluateJsonPath``: exactly one value or an error."""
    results = compile_path(expr).find(data)
    if not results:
        raise PathNotFoundError(expr, EMPTY_RESULT)
    if len(results) > 1:
        raise AmbiguousPathError(expr, "too many results for the query")
    return results[0]


def _wrap(text: str) -> str:
    """Cartographer's ``ensureValidWrapping``."""
    if not text.startswith("{."):
        text = "{" + text if text.startswith(".") else "{." + text
    if not text.endswith("}"):
        text += "}"
    return text


# --------------------------------------------------------------------------------------------
# Steps


@dataclass(frozen=True, slots=True)
class _Field:
    """One key (``.name``, ``['name']``); the empty name (``{.}``, a leading ``$.``) selects
    the current value."""

    name: str

    def __call__(self, values: list[Any], expr: str) -> list[Any]:
        name = self.name
        if name == "":
            return values
        return [v[name] for v in values if isinstance(v, Mapping) and name in v]


def _field(name: str) -> _Step:
    return _Field(name)


def _children(value: Any) -> list[Any]:
    if isinstance(value, Mapping):
        return list(value.values())
    if isinstance(value, list | tuple):
        return list(value)
    return []


def _wildcard(values: list[Any], expr: str) -> list[Any]:
    limit = DEFAULT_LIMITS.jsonpath_results
    result: list[Any] = []
    for v in values:
        result.extend(_children(v))
        if len(result) > limit:
            raise _too_many(expr)
    return result


def _recursive(values: list[Any], expr: str) -> list[Any]:
    # client-go keeps each container that has children, then everything beneath it (in
    # pre-order), iteratively and bounded: repeated descents multiply the values selected.
    limit = DEFAULT_LIMITS.jsonpath_results
    result: list[Any] = []
    pending: list[list[Any]] = [list(reversed(values))]
    while pending:
        top = pending[-1]
        if not top:
            pending.pop()
            continue
        value = top.pop()
        children = _children(value)
        if children:
            result.append(value)
            if len(result) > limit:
                raise _too_many(expr)
            pending.append(list(reversed(children)))
    return result


@dataclass(frozen=True, slots=True)
class _Literal:
    """A constant in a filter (``"Ready"``, ``3``, ``true``): one per input value."""

    constant: Any

    def __call__(self, values: list[Any], expr: str) -> list[Any]:
        return [self.constant for _ in values]


def _re2_options() -> Any:
    options = re2.Options()
    options.log_errors = False  # RE2 would print each refused pattern on stderr
    options.never_capture = True  # `=~` asks only whether it matches: the DFA answers that
    return options


_RE2_OPTIONS: Final = _re2_options()


def _utf8(text: str) -> bytes:
    # RE2 works on UTF-8 bytes; given bytes, its wrapper skips mapping byte offsets back to
    # characters (a match's position is never used here). A lone surrogate (JSON can carry one)
    # stays an invalid byte sequence rather than an encoding error.
    return text.encode("utf-8", "surrogatepass")


@functools.lru_cache(maxsize=512)
def _compiled_regexp(pattern: str) -> Any:
    return re2.compile(_utf8(pattern), _RE2_OPTIONS)


def _shown(pattern: str) -> str:
    return repr(pattern if len(pattern) <= 80 else pattern[:79] + "…")


def regexp(pattern: str, expr: str) -> Any:
    """The RE2 program for ``pattern`` (cached), or :class:`JSONPathError` naming it and ``expr``
    when it is too long or not valid Go/RE2 syntax."""
    if len(pattern) > MAX_REGEXP_CHARS:
        raise JSONPathError(expr, f"regexp {_shown(pattern)} is longer than {MAX_REGEXP_CHARS} "
                                  "characters")
    try:
        return _compiled_regexp(pattern)
    except re2.error as err:
        reason = err.args[0] if err.args else err
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise JSONPathError(expr, f"invalid regexp {_shown(pattern)}: {reason}") from None


def _type_name(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__


@dataclass(frozen=True, slots=True)
class _Slice:
    """``[start:end:step]`` with client-go's ParamsEntry rules (``[i]`` is ``[i:i+1]``)."""

    start: int | None
    end: int | None
    step: int | None
    end_derived: bool

    def __call__(self, values: list[Any], expr: str) -> list[Any]:
        result: list[Any] = []
        for value in values:
            if value is None:
                continue
            if not isinstance(value, list | tuple):
                raise PathNotFoundError(expr, f"{_type_name(value)} is not array or slice")
            length = len(value)
            start = self.start or 0
            if start < 0:
                start += length
            end = length if self.end is None else self.end
            if end < 0 or (end == 0 and self.end_derived):
                end += length
            if end == start:
                # client-go stops the whole step here, dropping later inputs.
                return result
            if not 0 <= start < length:
                raise PathNotFoundError(
                    expr, f"array index out of bounds: index {start}, length {length}"
                )
            if not 0 <= end <= length:
                raise PathNotFoundError(
                    expr, f"array index out of bounds: index {end - 1}, length {length}"
                )
            if start > end:
                raise PathNotFoundError(
                    expr, f"starting index {start} is greater than ending index {end}"
                )
            stride = 1 if self.step is None else self.step
            if stride <= 0:
                raise JSONPathSyntaxError(expr, "step must be > 0")
            result.extend(value[start:end:stride])
        return result


@dataclass(frozen=True, slots=True)
class _Union:
    branches: tuple[tuple[_Step, ...], ...]

    def __call__(self, values: list[Any], expr: str) -> list[Any]:
        return [found for branch in self.branches for found in _run(branch, values, expr)]


def _basic_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "invalid"


def _compare(left: Any, op: str, right: Any, expr: str) -> bool:
    if op == "=~":
        if not isinstance(left, str) or not isinstance(right, str):
            raise JSONPathError(expr, "regexp search only supports strings")
        return regexp(right, expr).search(_utf8(left)) is not None
    lk, rk = _basic_kind(left), _basic_kind(right)
    if "invalid" in (lk, rk):
        raise JSONPathError(expr, "invalid type for comparison")
    if lk != rk:
        raise JSONPathError(expr, "incompatible types for comparison")
    if op == "==":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if lk == "bool":
        raise JSONPathError(expr, "invalid type for comparison")
    ordering: dict[str, Callable[[Any, Any], bool]] = {
        "<": lambda a, b: a < b,
        ">": lambda a, b: a > b,
        "<=": lambda a, b: a <= b,
        ">=": lambda a, b: a >= b,
    }
    return ordering[op](left, right)


@dataclass(frozen=True, slots=True)
class _Filter:
    left: tuple[_Step, ...]
    op: str  # "exists" or a comparison operator
    right: tuple[_Step, ...]

    def __call__(self, values: list[Any], expr: str) -> list[Any]:
        result: list[Any] = []
        for value in values:
            if not isinstance(value, list | tuple):
                raise PathNotFoundError(
                    expr, f"{_type_name(value)} is not array or slice and cannot be filtered"
                )
            for item in value:
                if self.op == "exists":
                    try:
                        found = _run(self.left, [item], expr)
                    except JSONPathError:
                        # client-go ignores evaluation errors when testing existence.
                        continue
                    if found:
                        result.append(item)
                    continue
                lefts = _run(self.left, [item], expr)
                if not lefts:
                    continue
                if len(lefts) > 1:
                    raise JSONPathError(expr, "can only compare one element at a time")
                rights = _run(self.right, [item], expr)
                if not rights:
                    continue
                if len(rights) > 1:
                    raise JSONPathError(expr, "can only compare one element at a time")
                if _compare(lefts[0], self.op, rights[0], expr):
                    result.append(item)
        return result


# --------------------------------------------------------------------------------------------
# Parser (client-go util/jsonpath/parser.go, restricted to one action)

_TERMINATORS: Final = frozenset(" \t\r\n.,[]$@{}")
_SLICE: Final = re.compile(r"^(-?[0-9]*)(:-?[0-9]*)?(:-?[0-9]*)?$")
_FILTER: Final = re.compile(r"^([^!<>=]+)([!<>=~]+)(.+?)$", re.DOTALL)
_OPERATORS: Final = frozenset({"==", "!=", "<", ">", "<=", ">=", "=~"})
_QUOTE_ESCAPES: Final = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}


def _describe(ch: str) -> str:
    """Go's ``%#U`` for a rune, as client-go prints unexpected characters."""
    return f"U+{ord(ch):04X} '{ch}'"


class _Parser:
    def __init__(self, expr: str, text: str) -> None:
        self.expr = expr
        self.text = text
        self.pos = 0

    def fail(self, detail: str) -> JSONPathSyntaxError:
        return JSONPathSyntaxError(self.expr, detail)

    def parse_whole(self) -> list[_Step]:
        # _wrap guarantees a leading "{."; the action must end exactly at the closing "}".
        self.pos = 1
        steps = self.parse_action(end_at_brace=True)
        if self.pos != len(self.text):
            raise self.fail("more than one query or text after the query")
        return steps

    def parse_action(self, *, end_at_brace: bool) -> list[_Step]:
        steps: list[_Step] = []
        text = self.text
        while True:
            rest = text[self.pos :]
            if end_at_brace and rest.startswith("}"):
                self.pos += 1
                return steps
            if not end_at_brace and not rest:
                return steps
            if rest.startswith("[?("):
                steps.append(self.parse_filter())
                continue
            if rest.startswith(".."):
                if steps and steps[-1] is _recursive:
                    raise self.fail("invalid multiple recursive descent")
                self.pos += 2
                steps.append(_recursive)
                if self.pos < len(text) and (text[self.pos].isalnum() or text[self.pos] == "_"):
                    steps.append(self.parse_field())
                continue
            if not rest or rest[0] in "\r\n":
                raise self.fail("unclosed action")
            ch = rest[0]
            if ch in " @$":
                self.pos += 1
            elif ch == "[":
                steps.append(self.parse_array())
            elif ch in "\"'":
                steps.append(_Literal(self.parse_quote(ch)))
            elif ch == ".":
                self.pos += 1
                steps.append(self.parse_field())
            elif ch in "+-" or ch.isdigit():
                steps.append(_Literal(self.parse_number()))
            elif ch.isalnum() or ch == "_":
                steps.append(_Literal(self.parse_identifier()))
            else:
                raise self.fail(f"unrecognized character in action: {_describe(ch)}")

    def parse_field(self) -> _Step:
        chars: list[str] = []
        text = self.text
        while self.pos < len(text):
            ch = text[self.pos]
            if ch == "\\" and self.pos + 1 < len(text):
                # An escaped character (usually a dot) belongs to the key; the backslash does not.
                chars.append(text[self.pos + 1])
                self.pos += 2
                continue
            if ch in _TERMINATORS:
                break
            chars.append(ch)
            self.pos += 1
        name = "".join(chars)
        if name == "*":
            return _wildcard
        return _field(name)

    def parse_identifier(self) -> bool:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in _TERMINATORS:
            self.pos += 1
        word = self.text[start : self.pos]
        if word in ("true", "false"):
            return word == "true"
        raise self.fail(f"unrecognized identifier {word}")

    def parse_number(self) -> int | float:
        start = self.pos
        if self.text[self.pos] in "+-":
            self.pos += 1
        while self.pos < len(self.text) and (
            self.text[self.pos] == "." or self.text[self.pos].isdigit()
        ):
            self.pos += 1
        word = self.text[start : self.pos]
        try:
            return int(word)
        except ValueError:
            pass
        try:
            return float(word)
        except ValueError:
            raise self.fail(f"cannot parse number {word}") from None

    def parse_quote(self, quote: str) -> str:
        chars: list[str] = []
        self.pos += 1
        text = self.text
        while True:
            if self.pos >= len(text) or text[self.pos] == "\n":
                raise self.fail("unterminated quoted string")
            ch = text[self.pos]
            self.pos += 1
            if ch == quote:
                return "".join(chars)
            if ch == "\\" and self.pos < len(text):
                escaped = text[self.pos]
                self.pos += 1
                chars.append(_QUOTE_ESCAPES.get(escaped, escaped))
                continue
            chars.append(ch)

    def parse_array(self) -> _Step:
        close = self.text.find("]", self.pos)
        newline = self.text.find("\n", self.pos)
        if close < 0 or 0 <= newline < close:
            raise self.fail("unterminated array")
        inner = self.text[self.pos + 1 : close]
        self.pos = close + 1
        if inner == "*":
            inner = ":"
        if "," in inner:
            branches = tuple(
                tuple(_Parser(self.expr, f"[{part.strip()}]").parse_action(end_at_brace=False))
                for part in inner.split(",")
            )
            return _Union(branches)
        stripped = inner.strip()
        if len(stripped) >= 2 and stripped[0] == stripped[-1] and stripped[0] in "'\"":
            return _field(stripped[1:-1])
        match = _SLICE.match(inner)
        if match is None:
            raise self.fail(f"invalid array index {inner}")
        raw = [g[1:] if g and i > 0 else g for i, g in enumerate(match.groups())]
        if "-" in raw:
            # Found by fuzzing: a bare sign (`[-]`, `[1:-]`) raised ValueError from int().
            raise self.fail(f"invalid array index {inner}")
        start = int(raw[0]) if raw[0] else None
        step = int(raw[2]) if raw[2] else None
        if match.group(2) is not None:
            return _Slice(start, int(raw[1]) if raw[1] else None, step, end_derived=False)
        if start is None:
            raise self.fail("invalid array index (empty)")
        # "[i]" selects one element: client-go derives end = start + 1.
        return _Slice(start, start + 1, step, end_derived=True)

    def parse_filter(self) -> _Step:
        self.pos += 3
        start = self.pos
        text = self.text
        quote: str | None = None
        while True:
            if self.pos >= len(text) or text[self.pos] == "\n":
                raise self.fail("unterminated filter")
            ch = text[self.pos]
            self.pos += 1
            if quote is not None:
                if ch == quote and text[self.pos - 2] != "\\":
                    quote = None
            elif ch in "\"'":
                quote = ch
            elif ch == ")":
                break
        if self.pos >= len(text) or text[self.pos] != "]":
            raise self.fail("unclosed array expect ]")
        body = text[start : self.pos - 1]
        self.pos += 1
        match = _FILTER.match(body)
        if match is None:
            return _Filter(self.sub_action(body), "exists", ())
        op = match.group(2)
        if op not in _OPERATORS:
            raise self.fail(f"unrecognized filter operator {op}")
        right = self.sub_action(match.group(3))
        if op == "=~" and len(right) == 1 and isinstance(right[0], _Literal) and isinstance(
                right[0].constant, str):
            try:
                regexp(right[0].constant, self.expr)
            except JSONPathError as err:
                raise self.fail(err.detail) from None
        return _Filter(self.sub_action(match.group(1)), op, right)

    def sub_action(self, text: str) -> tuple[_Step, ...]:
        return tuple(_Parser(self.expr, text).parse_action(end_at_brace=False))
