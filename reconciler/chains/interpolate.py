"""Cartographer's ``$(path)$`` template interpolation over plain dict/list/str data.

This module owns stamping a template against its context (``workload``, ``params``, ``sources``,
``source``, ``images``, ``image``, ``configs``, ``config``, ``deliverable``, ``deployment``, ...)
the way Cartographer's ``templates.Stamper`` does:

* Mapping values and list items are walked recursively; mapping keys are never interpolated.
* A string that is exactly one tag (starts with ``$(``, ends with ``)$`` and holds a single
  ``$(``) becomes the value at the path with its type kept: mapping, list, number, bool or
  ``None`` (an explicit null is a value, not an error).
* Any other string with tags is rendered by ``fasttemplate`` rules: each ``$(path)$`` is
  replaced by the string itself, or by Go's ``json.Marshal`` of a non-string value (sorted keys,
  no spaces, ``<>&`` escaped, numbers as ``float64``); a tag pointing to null is an error; an
  unterminated ``$(`` stays as text.
* The result of interpolating a string is interpolated again until it stops changing, so a
  context value that itself holds ``$(...)$`` is expanded too; a cycle fails with
  "infinite tag loop detected: a -> b -> a", as in Cartographer.
* A path must select exactly one value (``jsonpath.evaluate_single``).

Re-stamping is what makes interpolation expensive on untrusted input: a Workload whose params
reference one another twice each doubles the text at every level (28 levels, 2.7 KB of YAML,
gigabytes of output). Every interpolation therefore runs on a budget (``Limits``):
``interpolation_depth`` levels of re-stamping, ``interpolation_bytes`` for any one stamped value
and for the result, ``interpolation_work_bytes`` and ``interpolation_steps`` for all the work
(intermediate strings, copied values and tag evaluations included), and the reconcile's
deadline. Exceeding one raises :class:`InterpolationLimitError`, naming the limit and the field.

A template is walked once to find where its tags are (`_Plan`, cached by the template's
content): each interpolation then evaluates only those strings and copies only the containers
on the way to one that changed; everything else in the result is the template's own object, as
in a full walk.

Whitespace inside a tag is allowed (``$( workload.metadata.name )$``); Cartographer itself would
reject it. Values copied out of the context are fresh containers (Cartographer round-trips them
through JSON), so the stamped object never aliases the workload.
"""

from __future__ import annotations

import marshal
import math
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from reconciler.chains.yamlenc import float_digits
from reconciler.model import jsonpath
from reconciler.model.errors import ReconcilerError
from reconciler.model.limits import DEFAULT_LIMITS, Limits, check_deadline

__all__ = ["InterpolationError", "InterpolationLimitError", "find_tags", "interpolate"]

OPEN_TAG: Final = "$("
CLOSE_TAG: Final = ")$"


class InterpolationError(ReconcilerError):
    """A tag could not be interpolated.

    ``path`` is the JSONPath inside the tag, ``location`` where the string sits in the template
    (``spec.containers[0].image``), ``detail`` why it failed.
    """

    def __init__(self, path: str, detail: str, *, location: str = "", tag: str = "") -> None:
        self.path = path
        self.detail = detail
        self.location = location
        self.tag = tag
        where = f" at path [{location}]" if location else ""
        evaluating = f"evaluate tag {tag}: " if tag else ""
        super().__init__(f"failed to interpolate template{where}: {evaluating}{detail}")


class InterpolationLimitError(InterpolationError):
    """Interpolation would exceed one of its bounds; ``limit`` names the `Limits` field."""

    def __init__(self, limit: str, detail: str, *, location: str = "", path: str = "") -> None:
        self.limit = limit
        super().__init__(path, f"{detail} (limit {limit}); the template or the values it "
                               "interpolates expand too much", location=location)


def interpolate(
    template: Any, context: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS
) -> Any:
    """Return ``template`` with every ``$(path)$`` replaced from ``context``.

    Containers and strings without tags are returned as the same objects, so a template without
    tags costs one walk and no copies. Raises :class:`InterpolationLimitError` when the work
    would exceed ``limits``.
    """
    stamper = _Stamper(context, limits)
    try:
        plan = _plan_of(template, limits.interpolation_bytes)
        result = stamper.run(plan, template)
    except RecursionError as err:
        raise InterpolationLimitError(
            "interpolation_depth", "interpolated values are nested too deeply") from err
    except MemoryError as err:
        raise InterpolationLimitError(
            "interpolation_bytes", "interpolation ran out of memory") from err
    if stamper.stamped and plan.size + stamper.work + _SCALAR_SIZE * stamper.steps \
            > limits.interpolation_bytes:
        # The cheap bound above (the template's size plus everything the interpolation
        # produced) may overstate the result: measure it.
        size = _bounded_size(result, limits.interpolation_bytes)
        if size > limits.interpolation_bytes:
            raise InterpolationLimitError(
                "interpolation_bytes",
                f"the interpolated template is larger than {limits.interpolation_bytes} bytes")
    return result


_SCALAR_SIZE: Final = 8
"""What `_bounded_size` counts for a number, bool or null: one tag replaced by such a value
grows the result by at most this much."""

_PLAN_CACHE_ENTRIES: Final = 256
_PLAN_CACHE_KEY_BYTES: Final = 64 * 1024
"""Plans of at most this many templates, each at most this large (marshalled), are kept."""


@dataclass(frozen=True, slots=True)
class _Leaf:
    """A string of the template that holds a tag: the keys and indexes that lead to it from
    the root, its location as errors name it (``spec.containers[0].image``) and its text."""

    route: tuple[Any, ...]
    location: str
    text: str
    # For a string that is exactly one tag: the path inside it as written, and stripped.
    path: str | None = None
    stripped: str = ""
    # For any other string: its pieces as `_split` gives them (text, is a tag).
    pieces: tuple[tuple[str, bool], ...] = ()


@dataclass(frozen=True, slots=True)
class _Plan:
    """Where a template's tags are, in the order a full walk meets them, and the template's
    `_bounded_size` (counted up to the limit it was made for)."""

    leaves: tuple[_Leaf, ...]
    size: int
    limit: int
    paths: tuple[str, ...] = ()  # every tag's path, stripped, in the order they are met
    compiled: tuple[jsonpath.Path | None, ...] = ()  # each of `paths` compiled (None: invalid)


_plans: dict[bytes, _Plan] = {}
_plans_lock = threading.Lock()  # the daemon's workers interpolate at once


def _plan_of(template: Any, limit: int) -> _Plan:
    """The plan of ``template``, from the cache when a template with the same content (the
    same marshalled bytes: same structure, keys, values and types) was planned before."""
    return _keyed_plan(template, limit)[1]


def _keyed_plan(template: Any, limit: int) -> tuple[bytes | None, _Plan]:
    """`_plan_of`, with the template's marshalled bytes (None when it is not plain data)."""
    try:
        key = marshal.dumps(template, 2)  # version 2: no back-references, bytes follow content
    except ValueError:  # not plain data, or nested too deeply to marshal: plan it each time
        return None, _make_plan(template, limit)
    plan = _plans.get(key)
    if plan is not None and plan.limit == limit:
        return key, plan
    plan = _make_plan(template, limit)
    if len(key) <= _PLAN_CACHE_KEY_BYTES:
        with _plans_lock:
            if len(_plans) >= _PLAN_CACHE_ENTRIES:
                del _plans[next(iter(_plans))]  # the oldest
            _plans[key] = plan
    return key, plan


def tag_values(template: Any, context: Mapping[str, Any],
               limits: Limits = DEFAULT_LIMITS) -> tuple[bytes, tuple[Any, ...]] | None:
    """The template's content (its marshalled bytes) and the value of every tag of it in
    ``context``, in the order the plan meets them (each path evaluated as `interpolate`
    evaluates it), shared with the context, not copied.

    `interpolate` is a function of these alone, but for a value that holds a tag itself (it is
    stamped again, reading more of the context): the caller must see to that (the realizer
    refuses a value whose serialization holds ``$(``). A tag can also be formed across the
    pieces of a string (``$$(a)$)$`` with ``a`` = ``(b``, or an empty value between a literal
    ``$`` and ``(``): the string as its first pass stamps it would be stamped again, so such a
    template gets None too. None also when the template is not plain data or a path does not
    evaluate to exactly one value (the render will report it).
    """
    key, plan = _keyed_plan(template, limits.interpolation_bytes)
    if key is None:
        return None
    check_deadline("evaluating a template's tags")
    values: list[Any] = []
    for compiled in plan.compiled:
        if compiled is None:
            return None  # does not parse: the render reports it
        fields = compiled.fields
        if fields is None:
            try:
                found = compiled.find(context)
            except (jsonpath.JSONPathError, RecursionError):
                return None
            if len(found) != 1:
                return None
            values.append(found[0])
            continue
        # `Path.find` of a path of plain keys, inline: the common tag (`workload.metadata.name`)
        value: Any = context
        for name in fields:
            if (type(value) is dict or isinstance(value, Mapping)) and name in value:
                value = value[name]
            else:
                return None
        values.append(value)
    if _forms_a_tag(plan, values):
        return None
    return key, tuple(values)


def _forms_a_tag(plan: _Plan, values: list[Any]) -> bool:
    """Whether a string with several pieces holds a tag once its tags are replaced by their
    values (text values as they are; any other value stands for JSON, which can neither start
    with ``(`` nor end with ``$``, nor hold ``$(`` that the caller does not refuse)."""
    at = 0
    for leaf in plan.leaves:
        if leaf.path is not None:
            at += 1
            continue
        parts: list[str] = []
        for piece, is_tag in leaf.pieces:
            if is_tag:
                value = values[at]
                at += 1
                parts.append(value if isinstance(value, str) else "\x00")
            else:
                parts.append(piece)
        if OPEN_TAG in "".join(parts):
            return True
    return False


def _make_plan(template: Any, limit: int) -> _Plan:
    leaves: list[_Leaf] = []

    def visit(value: Any, route: tuple[Any, ...], location: str) -> None:
        # Mappings and lists only, as `_Stamper.walk` descends: tuples and keys are left as is.
        if isinstance(value, str):
            if OPEN_TAG in value:
                path = value[len(OPEN_TAG) : -len(CLOSE_TAG)] if _is_single_tag(value) else None
                pieces = () if path is not None else tuple(_split(value))
                leaves.append(_Leaf(route, location, value, path, (path or "").strip(), pieces))
        elif isinstance(value, Mapping):
            for key, item in value.items():
                visit(item, (*route, key), f"{location}.{key}" if location else str(key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                visit(item, (*route, index), f"{location}[{index}]")

    visit(template, (), "")
    paths: list[str] = []
    for leaf in leaves:
        if leaf.path is not None:
            paths.append(leaf.stripped)
        else:
            paths.extend(piece.strip() for piece, is_tag in leaf.pieces if is_tag)
    return _Plan(tuple(leaves), _bounded_size(template, limit), limit, tuple(paths),
                 tuple(_compiled(path) for path in paths))


def _compiled(path: str) -> jsonpath.Path | None:
    try:
        return jsonpath.compile_path(path)
    except jsonpath.JSONPathError:
        return None


def _shallow_copy(value: Any) -> Any:
    return dict(value) if isinstance(value, Mapping) else list(value)


def _bounded_size(value: Any, limit: int) -> int:
    """Roughly the JSON size of ``value``; stops counting once past ``limit``."""
    total = 0
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            total += len(item) + 2
        elif isinstance(item, Mapping):
            total += 2
            for key, child in item.items():
                total += len(str(key)) + 4
                pending.append(child)
        elif isinstance(item, list | tuple):
            total += 2 + len(item)
            pending.extend(item)
        else:
            total += 8
        if total > limit:
            return total
    return total


def find_tags(template: Any) -> list[str]:
    """Return each path referenced by a tag in ``template``, in order of first appearance.

    Paths are stripped of surrounding whitespace. Keys are not searched (they are never
    interpolated), and tags that would only appear after expansion are not found.
    """
    seen: dict[str, None] = {}
    for text in _strings(template):
        if OPEN_TAG in text:
            for path in _tag_paths(text):
                seen.setdefault(path.strip(), None)
    return list(seen)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _is_single_tag(text: str) -> bool:
    return text.startswith(OPEN_TAG) and text.endswith(CLOSE_TAG) and text.count(OPEN_TAG) == 1


def _tag_paths(text: str) -> Iterator[str]:
    if _is_single_tag(text):
        yield text[len(OPEN_TAG) : -len(CLOSE_TAG)]
        return
    for piece, is_tag in _split(text):
        if is_tag:
            yield piece


def _split(text: str) -> Iterator[tuple[str, bool]]:
    """Split like ``fasttemplate``: (text, False) and (tag contents, True) pieces."""
    pos = 0
    while True:
        start = text.find(OPEN_TAG, pos)
        if start < 0:
            break
        end = text.find(CLOSE_TAG, start + len(OPEN_TAG))
        if end < 0:
            break
        if start > pos:
            yield text[pos:start], False
        yield text[start + len(OPEN_TAG) : end], True
        pos = end + len(CLOSE_TAG)
    if pos < len(text):
        yield text[pos:], False


class _Stamper:
    def __init__(self, context: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS) -> None:
        self.context = context
        self.limits = limits
        self.steps = 0
        self.work = 0
        self.stamped = False

    def spend(self, steps: int, size: int, location: str, path: str = "") -> None:
        """Charge work to the budget of this interpolation; raise once it is spent."""
        limits = self.limits
        self.steps += steps
        self.work += size
        if self.steps > limits.interpolation_steps:
            raise InterpolationLimitError(
                "interpolation_steps",
                f"interpolation takes more than {limits.interpolation_steps} steps",
                location=location, path=path)
        if self.work > limits.interpolation_work_bytes:
            raise InterpolationLimitError(
                "interpolation_work_bytes",
                f"interpolation produces more than {limits.interpolation_work_bytes} bytes in "
                "total", location=location, path=path)

    def run(self, plan: _Plan, template: Any) -> Any:
        """``template`` interpolated: what ``walk(template, "", ())`` returns, visiting only
        the strings the plan names. A container is copied (once) when a string beneath it
        changed; the rest of the result is shared with the template."""
        result = template
        copies: dict[tuple[Any, ...], Any] = {}
        for leaf in plan.leaves:
            # (Limits holds interpolation_depth >= 1: one level is always allowed.)
            if leaf.path is not None:
                new = self.single_tag(leaf)
            else:
                new = self.walk_string(leaf.text, leaf.location, ())
            if new is leaf.text:
                continue
            route = leaf.route
            if not route:
                return new
            parent = copies.get(())
            if parent is None:
                parent = result = copies[()] = _shallow_copy(template)
            for depth in range(1, len(route)):
                prefix = route[:depth]
                child = copies.get(prefix)
                if child is None:
                    child = copies[prefix] = _shallow_copy(parent[route[depth - 1]])
                    parent[route[depth - 1]] = child
                parent = child
            parent[route[-1]] = new
        return result

    def single_tag(self, leaf: _Leaf) -> Any:
        """`walk_string` of a template string that is one tag, with the plan's parse of it."""
        assert leaf.path is not None
        check_deadline("interpolating a template")
        self.stamped = True
        text, location = leaf.text, leaf.location
        self.spend(1, 0, location, leaf.stripped)
        value = self.clone(self.lookup(leaf.path, location, text), location, leaf.stripped)
        if isinstance(value, str) and value == text:
            return text
        return self.walk(value, location, (text,))

    def walk(self, value: Any, location: str, chain: tuple[str, ...]) -> Any:
        if isinstance(value, str):
            if OPEN_TAG not in value:
                return value
            return self.walk_string(value, location, chain)
        if isinstance(value, Mapping):
            changed: dict[Any, Any] | None = None
            for key, item in value.items():
                where = f"{location}.{key}" if location else str(key)
                new = self.walk(item, where, chain)
                if new is not item and changed is None:
                    changed = dict(value)
                if changed is not None:
                    changed[key] = new
            return value if changed is None else changed
        if isinstance(value, list):
            items: list[Any] | None = None
            for index, item in enumerate(value):
                new = self.walk(item, f"{location}[{index}]", chain)
                if new is not item and items is None:
                    items = list(value)
                if items is not None:
                    items[index] = new
            return value if items is None else items
        return value

    def walk_string(self, text: str, location: str, chain: tuple[str, ...]) -> Any:
        check_deadline("interpolating a template")
        if text in chain:
            loop = " -> ".join((*chain[chain.index(text) :], text))
            raise InterpolationError(
                chain[-1], f"infinite tag loop detected: {loop}", location=location
            )
        if len(chain) >= self.limits.interpolation_depth:
            raise InterpolationLimitError(
                "interpolation_depth",
                f"interpolated values hold tags nested more than "
                f"{self.limits.interpolation_depth} levels deep", location=location,
                path=next(iter(_tag_paths(chain[0])), "").strip())
        self.stamped = True
        stamped = self.leaf(text, location)
        if isinstance(stamped, str) and stamped == text:
            return text
        # Cartographer stamps the result again: context values may hold tags themselves.
        return self.walk(stamped, location, (*chain, text))

    def leaf(self, text: str, location: str) -> Any:
        if _is_single_tag(text):
            path = text[len(OPEN_TAG) : -len(CLOSE_TAG)]
            self.spend(1, 0, location, path.strip())
            return self.clone(self.lookup(path, location, text), location, path.strip())
        parts: list[str] = []
        size = 0
        limit = self.limits.interpolation_bytes
        for piece, is_tag in _split(text):
            if not is_tag:
                parts.append(piece)
                size += len(piece)
                continue
            self.spend(1, 0, location, piece.strip())
            value = self.lookup(piece, location, f"{OPEN_TAG}{piece}{CLOSE_TAG}")
            if value is None:
                raise InterpolationError(
                    piece,
                    f"tag must not point to nil value: {piece}",
                    location=location,
                    tag=f"{OPEN_TAG}{piece}{CLOSE_TAG}",
                )
            if isinstance(value, str):
                text_value = value
            else:
                if _bounded_size(value, limit) > limit:
                    raise InterpolationLimitError(
                        "interpolation_bytes",
                        f"the value of tag $({piece})$ is larger than {limit} bytes",
                        location=location, path=piece.strip())
                try:
                    text_value = go_json(value)
                except ValueError as err:
                    raise InterpolationError(
                        piece, f"json marshal: {err}", location=location, tag=f"$({piece})$"
                    ) from err
            size += len(text_value)
            if size > limit:
                raise InterpolationLimitError(
                    "interpolation_bytes",
                    f"the interpolated string is larger than {limit} bytes",
                    location=location, path=piece.strip())
            parts.append(text_value)
        self.spend(0, size, location)
        return "".join(parts)

    def clone(self, value: Any, location: str, path: str) -> Any:
        """A fresh copy of a context value (Cartographer round-trips through JSON), charged to
        the budget: copying a large value into many fields is work too."""
        if not isinstance(value, Mapping | list | tuple):
            if isinstance(value, str):
                if len(value) > self.limits.interpolation_bytes:
                    raise InterpolationLimitError(
                        "interpolation_bytes",
                        f"the value of tag $({path})$ is larger than "
                        f"{self.limits.interpolation_bytes} bytes", location=location, path=path)
                self.spend(0, len(value), location, path)
            return value
        size = _bounded_size(value, self.limits.interpolation_bytes)
        if size > self.limits.interpolation_bytes:
            raise InterpolationLimitError(
                "interpolation_bytes",
                f"the value of tag $({path})$ is larger than {self.limits.interpolation_bytes} "
                "bytes", location=location, path=path)
        self.spend(1, size, location, path)
        return _json_clone(value)

    def lookup(self, path: str, location: str, tag: str) -> Any:
        try:
            return jsonpath.evaluate_single(path.strip(), self.context)
        except jsonpath.JSONPathError as err:
            raise InterpolationError(path.strip(), str(err), location=location, tag=tag) from err


def _json_clone(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _json_clone(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_clone(item) for item in value]
    return value


# --------------------------------------------------------------------------------------------
# Go encoding/json, as Cartographer renders non-string values inside text

_JSON_ESCAPES: Final = {
    '"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
    "<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029",
}  # fmt: skip


def go_json(value: Any) -> str:
    """Return Go's ``json.Marshal`` of JSON-decoded ``value`` (every number a ``float64``).

    Raises ``ValueError`` for NaN, infinities and types JSON cannot hold.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _json_number(float(value))
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, Mapping):
        items = sorted((str(key), item) for key, item in value.items())
        return "{" + ",".join(f"{_json_string(k)}:{go_json(v)}" for k, v in items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(go_json(item) for item in value) + "]"
    raise ValueError(f"unsupported type: {type(value).__name__}")


def _json_string(text: str) -> str:
    out = ['"']
    for ch in text:
        escaped = _JSON_ESCAPES.get(ch)
        if escaped is not None:
            out.append(escaped)
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _json_number(number: float) -> str:
    if math.isnan(number) or math.isinf(number):
        raise ValueError(f"unsupported value: {number}")
    sign, digits, point = float_digits(number)
    if not digits:
        return f"{sign}0"
    magnitude = abs(number)
    if magnitude < 1e-6 or magnitude >= 1e21:
        exponent = point - 1
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        # Go writes e-07 then trims the exponent's leading zero: e-7 (but keeps e+21).
        exp_text = f"-{abs(exponent)}" if exponent < 0 else f"+{exponent:02d}"
        return f"{sign}{mantissa}e{exp_text}"
    if point <= 0:
        return f"{sign}0." + "0" * (-point) + digits
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"
