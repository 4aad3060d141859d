"""YAML text byte-identical to Go's ``gopkg.in/yaml.v3`` ``yaml.Marshal``, and the output digests.

This module owns the encoding Cartographer uses for ``status.resources[].outputs[]``:
``digest`` is ``sha256:<hex>`` of ``yaml.Marshal(value)`` and ``preview`` is that YAML text cut
to ``PREVIEW_CHARACTER_LIMIT`` bytes (``k8s.io/utils/strings.ShortenString``: a plain byte
slice, no ellipsis). A digest that differs from Cartographer's by a single byte would make every
output look changed, so the encoder is a port of the parts of yaml.v3 that plain JSON-like data
reaches: the resolver that decides when a string must be quoted, the natural key order of
``sorter.go`` and the libyaml emitter (indentation 4, unlimited line width, the scalar style
rules of ``yaml_emitter_select_scalar_style``).

Cartographer reads output values through a JSON round trip, so every number it digests is a
``float64``; ``digest`` and ``preview`` therefore format integers as Go formats a ``float64``
(``1000000`` becomes ``1e+06``). ``encode`` formats a Python ``int`` as a Go ``int`` unless
``json_numbers=True``.

Known gaps (never produced by Kubernetes-shaped data): strings holding U+0085, U+2028 or U+2029
without a newline, and map keys longer than 128 bytes, follow the libyaml rules as ported here but
are not covered by conformance vectors.
"""

from __future__ import annotations

import calendar
import functools
import hashlib
import math
import re
import unicodedata
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

from reconciler.model.errors import ReconcilerError

__all__ = [
    "PREVIEW_CHARACTER_LIMIT",
    "YAMLEncodeError",
    "digest",
    "encode",
    "float_digits",
    "go_float_g",
    "preview",
]

# Cartographer's templates.PREVIEW_CHARACTER_LIMIT; checked against its own e2e fixture
# (supplychain/workload-status) in tests/unit/test_yamlenc.py.
PREVIEW_CHARACTER_LIMIT: Final = 1024

_BEST_INDENT: Final = 4
# yaml.v3 emits a mapping key inline ("key: v") only up to this many bytes; longer keys get "? ".
_SIMPLE_KEY_LIMIT: Final = 128

_PLAIN: Final = "plain"
_SINGLE: Final = "single"
_DOUBLE: Final = "double"
_LITERAL: Final = "literal"


class YAMLEncodeError(ReconcilerError):
    """A value has no YAML form that Go's yaml.v3 could have produced."""

    def __init__(self, where: str, value: Any, message: str) -> None:
        self.where = where
        self.value = value
        super().__init__(f"cannot encode {type(value).__name__} at {where or '<root>'}: {message}")


def encode(value: Any, *, json_numbers: bool = False) -> str:
    """Return ``yaml.Marshal(value)`` as Go's yaml.v3 would write it, newline-terminated."""
    emitter = _Emitter(json_numbers=json_numbers)
    emitter.emit_node(value, in_sequence=False, simple_key=False, where="")
    emitter.write_indent()  # the implicit document end closes the last line
    return "".join(emitter.out)


def digest(value: Any) -> str:
    """Return Cartographer's output digest: ``sha256:`` and the hex SHA-256 of the YAML bytes."""
    return summarize(value)[1]


def preview(value: Any) -> str:
    """Return Cartographer's output preview: the YAML text cut to the first 1024 bytes."""
    return summarize(value)[0]


def summarize(value: Any) -> tuple[str, str]:
    """(preview, digest) of an output value, encoding it once.

    Outputs are re-read on every reconcile and are nearly always the same short strings (a
    URL, a revision, an image), so those are remembered; a long one is not, so the memory the
    cache can hold stays bounded whatever outputs templates produce.
    """
    if isinstance(value, str) and len(value) <= _REMEMBERED_TEXT_LIMIT:
        return _summarize_text(value)
    return _summarize(encode(value, json_numbers=True).encode("utf-8"))


# Strings up to this many characters are remembered by `summarize` (4,096 of them at most).
_REMEMBERED_TEXT_LIMIT: Final = 2048


@functools.lru_cache(maxsize=4096)
def _summarize_text(value: str) -> tuple[str, str]:
    return _summarize(encode(value, json_numbers=True).encode("utf-8"))


def _summarize(data: bytes) -> tuple[str, str]:
    return _cut_preview(data), f"sha256:{hashlib.sha256(data).hexdigest()}"


def _cut_preview(data: bytes) -> str:
    if len(data) <= PREVIEW_CHARACTER_LIMIT:
        return data.decode("utf-8")
    head = data[:PREVIEW_CHARACTER_LIMIT]
    # Go slices bytes and may split a character; the API server stores each stray byte of the
    # split character as U+FFFD (encoding/json's rule), so do the same to match the status.
    for cut in range(len(head), max(len(head) - 4, -1), -1):
        try:
            text = head[:cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return text + "\ufffd" * (len(head) - cut)
    return head.decode("utf-8", errors="replace")


# --------------------------------------------------------------------------------------------
# Numbers


def go_float_g(number: float) -> str:
    """Format like Go's ``strconv.FormatFloat(f, 'g', -1, 64)`` with yaml.v3's inf/nan names."""
    if math.isnan(number):
        return ".nan"
    if math.isinf(number):
        return ".inf" if number > 0 else "-.inf"
    sign, digits, exp_pos = float_digits(number)
    if not digits:
        return f"{sign}0"
    count = len(digits)
    # Go switches to %e when the exponent is < -4 or >= the shortest precision (at least 6
    # unless all digits are already in the integer part).
    eprec = 6
    if eprec > count and count >= exp_pos:
        eprec = count
    exponent = exp_pos - 1
    if exponent < -4 or exponent >= eprec:
        mantissa = digits[0] + ("." + digits[1:] if count > 1 else "")
        exp_sign = "-" if exponent < 0 else "+"
        return f"{sign}{mantissa}e{exp_sign}{abs(exponent):02d}"
    return sign + _fixed(digits, exp_pos)


def float_digits(number: float) -> tuple[str, str, int]:
    """Split ``number`` into sign, shortest round-trip digits and decimal point position.

    The value is ``0.<digits> * 10**position``; Python's ``repr`` and Go's shortest formatting
    pick the same digits.
    """
    sign = "-" if math.copysign(1.0, number) < 0 else ""
    if number == 0:
        return sign, "", 0
    parsed = Decimal(repr(abs(number))).normalize()
    as_tuple = parsed.as_tuple()
    digits = "".join(str(d) for d in as_tuple.digits)
    exponent = as_tuple.exponent
    assert isinstance(exponent, int)  # finite by construction
    return sign, digits, len(digits) + exponent


def _fixed(digits: str, point: int) -> str:
    if point <= 0:
        return "0." + "0" * (-point) + digits
    if point >= len(digits):
        return digits + "0" * (point - len(digits))
    return digits[:point] + "." + digits[point:]


# --------------------------------------------------------------------------------------------
# The resolver: would this string read back as something other than a string?

_RESOLVE_MAP: Final = frozenset(
    {
        "true", "True", "TRUE", "false", "False", "FALSE",
        "", "~", "null", "Null", "NULL",
        ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF",
        "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF",
        "<<",
    }
)  # fmt: skip
# yaml.v3 still quotes YAML 1.1 booleans so that 1.1 parsers do not read them as bools.
_OLD_BOOLS: Final = frozenset(
    {
        "y", "Y", "yes", "Yes", "YES", "on", "On", "ON",
        "n", "N", "no", "No", "NO", "off", "Off", "OFF",
    }
)  # fmt: skip
_YAML_FLOAT: Final = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_DOT_FLOAT: Final = re.compile(r"^\.[0-9]+([eE][-+]?[0-9]+)?$")
_BASE60_FLOAT: Final = re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$")
_DATE: Final = r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})"
_CLOCK: Final = r"([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})(?:[.,][0-9]+)?"
_TIMESTAMPS: Final = (
    re.compile(rf"^{_DATE}$"),
    re.compile(rf"^{_DATE}[Tt]{_CLOCK}(?:Z|[-+]([0-9]{{2}}):([0-9]{{2}}))$"),
    re.compile(rf"^{_DATE} {_CLOCK}$"),
)
_UINT64_MAX: Final = 2**64 - 1
_INT64_MAX: Final = 2**63 - 1


def _needs_quotes(text: str) -> bool:
    """Mirror ``encoder.stringv``: quote when the plain form resolves to a non-string tag."""
    return _resolves_to_non_string(text) or _is_base60_float(text) or text in _OLD_BOOLS


def _resolves_to_non_string(text: str) -> bool:
    if text in _RESOLVE_MAP:
        # "<<" has no resolver hint, so the map is never consulted for it.
        return text != "<<"
    first = text[0]
    if first in "yYnNtTfFoO~":
        return False
    if first == ".":
        return bool(_DOT_FLOAT.match(text)) and _go_parse_float_ok(text)
    if first not in "+-0123456789":
        return False
    if _is_timestamp(text):
        return True
    plain = text.replace("_", "")
    if _go_parse_int(plain) is not None or _go_parse_uint(plain) is not None:
        return True
    return bool(_YAML_FLOAT.match(plain)) and _go_parse_float_ok(plain)


def _go_parse_uint(text: str) -> int | None:
    """``strconv.ParseUint(text, 0, 64)`` for text without underscores."""
    if not text:
        return None
    base, digits = 10, text
    if text[0] == "0":
        prefix = text[1:2].lower()
        if len(text) >= 3 and prefix in ("b", "o", "x"):
            base, digits = {"b": 2, "o": 8, "x": 16}[prefix], text[2:]
        else:
            base, digits = 8, text[1:]
    allowed = "0123456789abcdef"[:base]
    if any(ch.lower() not in allowed or not ch.isascii() for ch in digits):
        return None
    number = int(digits, base) if digits else 0
    return number if number <= _UINT64_MAX else None


def _go_parse_int(text: str) -> int | None:
    """``strconv.ParseInt(text, 0, 64)`` for text without underscores."""
    negative = text[:1] == "-"
    unsigned = _go_parse_uint(text[1:] if text[:1] in ("+", "-") else text)
    if unsigned is None:
        return None
    if negative:
        return -unsigned if unsigned <= _INT64_MAX + 1 else None
    return unsigned if unsigned <= _INT64_MAX else None


def _go_parse_float_ok(text: str) -> bool:
    # ParseFloat reports a range error (and yaml.v3 then keeps the string) on overflow.
    return not math.isinf(float(text))


def _is_base60_float(text: str) -> bool:
    if not text or text[0] not in "+-0123456789" or ":" not in text:
        return False
    return bool(_BASE60_FLOAT.match(text))


def _is_timestamp(text: str) -> bool:
    """Mirror yaml.v3 ``parseTimestamp`` (Go ``time.Parse`` with its four layouts)."""
    if len(text) < 5 or not text[:4].isdigit() or text[4] != "-":
        return False
    for pattern in _TIMESTAMPS:
        match = pattern.match(text)
        if match is None:
            continue
        fields = [int(g) for g in match.groups() if g is not None]
        year, month, day = fields[:3]
        if not 1 <= month <= 12 or not 1 <= day <= calendar.monthrange(year or 2000, month)[1]:
            return False
        if len(fields) >= 6:
            hour, minute, second = fields[3:6]
            if hour > 23 or minute > 59 or second > 59:
                return False
        return True
    return False


# --------------------------------------------------------------------------------------------
# Map key order (yaml.v3 sorter.go)

# reflect.Kind numbers decide the order between keys of different kinds.
_KIND_BOOL: Final = 1
_KIND_INT: Final = 2
_KIND_FLOAT: Final = 14
_KIND_INTERFACE: Final = 20
_KIND_STRING: Final = 24


def _kind(key: Any) -> int:
    if isinstance(key, bool):
        return _KIND_BOOL
    if isinstance(key, int):
        return _KIND_INT
    if isinstance(key, float):
        return _KIND_FLOAT
    if isinstance(key, str):
        return _KIND_STRING
    return _KIND_INTERFACE


def _is_digit(ch: str) -> bool:
    return unicodedata.category(ch) == "Nd"


def _is_letter(ch: str) -> bool:
    return unicodedata.category(ch).startswith("L")


def _key_less(a: Any, b: Any) -> bool:
    ak, bk = _kind(a), _kind(b)
    numeric = (_KIND_BOOL, _KIND_INT, _KIND_FLOAT)
    if ak in numeric and bk in numeric:
        af, bf = float(a), float(b)
        if af != bf:
            return af < bf
        if ak != bk:
            return ak < bk
        return bool(a < b)
    if ak != _KIND_STRING or bk != _KIND_STRING:
        return ak < bk
    return _string_key_less(a, b)


def _string_key_less(ar: str, br: str) -> bool:
    """yaml.v3's natural order: digit runs compare as numbers, letters after non-letters."""
    digits = False
    for i in range(min(len(ar), len(br))):
        if ar[i] == br[i]:
            digits = _is_digit(ar[i])
            continue
        al, bl = _is_letter(ar[i]), _is_letter(br[i])
        if al and bl:
            return ar[i] < br[i]
        if al or bl:
            return al if digits else bl
        an = bn = 0
        if ar[i] == "0" or br[i] == "0":
            j = i - 1
            while j >= 0 and _is_digit(ar[j]):
                if ar[j] != "0":
                    an = bn = 1
                    break
                j -= 1
        ai = i
        while ai < len(ar) and _is_digit(ar[ai]):
            an = an * 10 + (ord(ar[ai]) - ord("0"))
            ai += 1
        bi = i
        while bi < len(br) and _is_digit(br[bi]):
            bn = bn * 10 + (ord(br[bi]) - ord("0"))
            bi += 1
        if an != bn:
            return an < bn
        if ai != bi:
            return ai < bi
        return ar[i] < br[i]
    return len(ar) < len(br)


def _key_compare(a: Any, b: Any) -> int:
    if _key_less(a, b):
        return -1
    if _key_less(b, a):
        return 1
    return 0


_KEY_ORDER: Final = functools.cmp_to_key(_key_compare)


# --------------------------------------------------------------------------------------------
# The emitter (a port of the libyaml emitter as yaml.v3 configures it)

_BREAKS: Final = frozenset("\r\n\x85\u2028\u2029")
_ONE_PRINTABLE_ASCII_LINE: Final = re.compile(r"[\x20-\x7e]+")


def _is_printable(ch: str) -> bool:
    code = ord(ch)
    return (
        code == 0x0A
        or 0x20 <= code <= 0x7E
        or 0xA0 <= code <= 0xD7FF
        or (0xE000 <= code <= 0xFFFD and code != 0xFEFF)
    )


class _Analysis:
    """What ``yaml_emitter_analyze_scalar`` decides about one scalar."""

    __slots__ = ("block_allowed", "block_plain_allowed", "multiline", "single_quoted_allowed")

    def __init__(self, text: str) -> None:
        if not text:
            self.multiline = False
            self.block_plain_allowed = True
            self.single_quoted_allowed = True
            self.block_allowed = False
            return
        if _ONE_PRINTABLE_ASCII_LINE.fullmatch(text):
            self._one_ascii_line(text)
        else:
            self._scan(text)

    def _one_ascii_line(self, text: str) -> None:
        """What `_scan` decides, for text of printable ASCII alone (no tab, no line break):
        the common output (a URL, a revision, an image reference), read with string methods
        rather than a character at a time."""
        first = text[0]
        leading_space = first == " "
        trailing_space = text[-1] == " "
        block_indicators = (
            text.startswith(("---", "..."))
            or first in "#,[]{}&*!|>'\"%@`"
            or (first in "?:-" and (len(text) == 1 or text[1] == " "))
            or text.find(": ", 1) >= 0
            or (len(text) > 1 and text[-1] == ":")
            or " #" in text
        )
        self.multiline = False
        self.block_plain_allowed = not (leading_space or trailing_space or block_indicators)
        self.single_quoted_allowed = True
        self.block_allowed = not trailing_space

    def _scan(self, text: str) -> None:
        block_indicators = text.startswith(("---", "..."))
        line_breaks = special = tabs = False
        leading_space = leading_break = trailing_space = trailing_break = False
        break_space = space_break = False
        preceded_by_ws = True
        previous_space = previous_break = False
        last = len(text) - 1
        for i, ch in enumerate(text):
            followed_by_ws = i == last or text[i + 1] in " \t"
            if i == 0:
                if ch in "#,[]{}&*!|>'\"%@`" or (ch in "?:-" and followed_by_ws):
                    block_indicators = True
            elif (ch == ":" and followed_by_ws) or (ch == "#" and preceded_by_ws):
                block_indicators = True
            if ch == "\t":
                tabs = True
            elif not _is_printable(ch):
                special = True
            if ch == " ":
                leading_space = leading_space or i == 0
                trailing_space = trailing_space or i == last
                break_space = break_space or previous_break
                previous_space, previous_break = True, False
            elif ch in _BREAKS:
                line_breaks = True
                leading_break = leading_break or i == 0
                trailing_break = trailing_break or i == last
                space_break = space_break or previous_space
                previous_space, previous_break = False, True
            else:
                previous_space = previous_break = False
            preceded_by_ws = ch in " \t\0" or ch in _BREAKS
        self.multiline = line_breaks
        self.block_plain_allowed = not (
            leading_space
            or leading_break
            or trailing_space
            or trailing_break
            or break_space
            or space_break
            or tabs
            or special
            or line_breaks
            or block_indicators
        )
        self.single_quoted_allowed = not (break_space or space_break or tabs or special)
        self.block_allowed = not (trailing_space or space_break or special)


class _Emitter:
    """Block-style emitter state: the column, the indentation stack and libyaml's two flags."""

    def __init__(self, *, json_numbers: bool) -> None:
        self.json_numbers = json_numbers
        self.out: list[str] = []
        self.column = 0
        self.indent = -1
        self.indents: list[int] = []
        # libyaml: "whitespace" = the last thing written separates tokens; "indention" = only
        # indentation has been written on this line so far.
        self.whitespace = True
        self.indention = True

    # -- low-level writes

    def put(self, text: str) -> None:
        self.out.append(text)
        self.column += len(text)

    def put_break(self) -> None:
        self.out.append("\n")
        self.column = 0
        self.indention = True

    def write_break(self, ch: str) -> None:
        if ch == "\n":
            self.put_break()
            return
        self.out.append(ch)
        self.column = 0
        self.indention = True

    def write_indent(self) -> None:
        indent = max(self.indent, 0)
        if (
            not self.indention
            or self.column > indent
            or (self.column == indent and not self.whitespace)
        ):
            self.put_break()
        if self.column < indent:
            self.put(" " * (indent - self.column))
        self.whitespace = True

    def write_indicator(
        self, indicator: str, *, need_ws: bool, is_ws: bool, is_indention: bool
    ) -> None:
        if need_ws and not self.whitespace:
            self.put(" ")
        self.put(indicator)
        self.whitespace = is_ws
        self.indention = self.indention and is_indention

    def increase_indent(self, *, flow: bool, in_sequence: bool) -> None:
        self.indents.append(self.indent)
        if self.indent < 0:
            self.indent = _BEST_INDENT if flow else 0
        elif in_sequence:
            # yaml.v3: the first indent inside a sequence just skips the "- " indicator.
            self.indent += 2
        else:
            self.indent = _BEST_INDENT * ((self.indent + _BEST_INDENT) // _BEST_INDENT)

    def pop_indent(self) -> None:
        self.indent = self.indents.pop()

    # -- nodes

    def emit_node(self, value: Any, *, in_sequence: bool, simple_key: bool, where: str) -> None:
        if isinstance(value, Mapping):
            self.emit_mapping(value, in_sequence=in_sequence, where=where)
        elif isinstance(value, list | tuple):
            self.emit_sequence(value, in_sequence=in_sequence, where=where)
        else:
            text, style = self.scalar(value, where)
            self.emit_scalar(text, style, in_sequence=in_sequence, simple_key=simple_key)

    def emit_mapping(self, value: Mapping[Any, Any], *, in_sequence: bool, where: str) -> None:
        if not value:
            self.write_indicator("{", need_ws=True, is_ws=True, is_indention=False)
            self.write_indicator("}", need_ws=False, is_ws=False, is_indention=False)
            return
        self.increase_indent(flow=False, in_sequence=in_sequence)
        for key in sorted(value, key=_KEY_ORDER):
            key_where = f"{where}.{key}" if where else str(key)
            if isinstance(key, Mapping | list | tuple):
                raise YAMLEncodeError(key_where, key, "map keys must be scalars")
            self.write_indent()
            text, style = self.scalar(key, key_where)
            analysis = _Analysis(text)
            simple = not analysis.multiline and len(text.encode("utf-8")) <= _SIMPLE_KEY_LIMIT
            if simple:
                self.emit_scalar(text, style, in_sequence=False, simple_key=True, analysis=analysis)
                self.write_indicator(":", need_ws=False, is_ws=False, is_indention=False)
            else:
                self.write_indicator("?", need_ws=True, is_ws=False, is_indention=True)
                self.emit_scalar(
                    text, style, in_sequence=False, simple_key=False, analysis=analysis
                )
                self.write_indent()
                self.write_indicator(":", need_ws=True, is_ws=False, is_indention=True)
            self.emit_node(value[key], in_sequence=False, simple_key=False, where=key_where)
        self.pop_indent()

    def emit_sequence(
        self, value: list[Any] | tuple[Any, ...], *, in_sequence: bool, where: str
    ) -> None:
        if not value:
            self.write_indicator("[", need_ws=True, is_ws=True, is_indention=False)
            self.write_indicator("]", need_ws=False, is_ws=False, is_indention=False)
            return
        self.increase_indent(flow=False, in_sequence=in_sequence)
        for index, item in enumerate(value):
            self.write_indent()
            self.write_indicator("-", need_ws=True, is_ws=False, is_indention=True)
            self.emit_node(item, in_sequence=True, simple_key=False, where=f"{where}[{index}]")
        self.pop_indent()

    def scalar(self, value: Any, where: str) -> tuple[str, str]:
        """Return the scalar text and the style yaml.v3's encoder asks the emitter for."""
        if value is None:
            return "null", _PLAIN
        if isinstance(value, bool):
            return ("true" if value else "false"), _PLAIN
        if isinstance(value, int):
            if self.json_numbers:
                try:
                    return go_float_g(float(value)), _PLAIN
                except OverflowError as err:
                    raise YAMLEncodeError(where, value, "too large for a float64") from err
            return str(value), _PLAIN
        if isinstance(value, float):
            return go_float_g(value), _PLAIN
        if isinstance(value, str):
            if "\n" in value:
                return value, _LITERAL
            if not value or _needs_quotes(value):
                return value, _DOUBLE
            return value, _PLAIN
        raise YAMLEncodeError(where, value, "only mappings, lists, str, int, float, bool, None")

    def emit_scalar(
        self,
        text: str,
        style: str,
        *,
        in_sequence: bool,
        simple_key: bool,
        analysis: _Analysis | None = None,
    ) -> None:
        facts = analysis or _Analysis(text)
        if simple_key and facts.multiline:
            style = _DOUBLE
        if style == _PLAIN and (not facts.block_plain_allowed or (not text and simple_key)):
            style = _SINGLE
        if style == _SINGLE and not facts.single_quoted_allowed:
            style = _DOUBLE
        if style == _LITERAL and (not facts.block_allowed or simple_key):
            style = _DOUBLE
        self.increase_indent(flow=True, in_sequence=in_sequence)
        if style == _PLAIN:
            self.write_plain(text)
        elif style == _SINGLE:
            self.write_single_quoted(text)
        elif style == _DOUBLE:
            self.write_double_quoted(text)
        else:
            self.write_literal(text)
        self.pop_indent()

    # -- scalar writers

    def write_plain(self, text: str) -> None:
        if text and not self.whitespace:
            self.put(" ")
        # Plain scalars never hold breaks (the analysis forbids it) and the width is unlimited.
        self.put(text)
        if text:
            self.whitespace = False
        self.indention = False

    def write_single_quoted(self, text: str) -> None:
        self.write_indicator("'", need_ws=True, is_ws=False, is_indention=False)
        breaks = False
        for ch in text:
            if ch in _BREAKS:
                if not breaks and ch == "\n":
                    self.put_break()
                self.write_break(ch)
                breaks = True
                continue
            if breaks and ch != " ":
                self.write_indent()
            self.put("''" if ch == "'" else ch)
            if ch != " ":
                self.indention = False
                breaks = False
        self.write_indicator("'", need_ws=False, is_ws=False, is_indention=False)
        self.whitespace = False
        self.indention = False

    def write_double_quoted(self, text: str) -> None:
        self.write_indicator('"', need_ws=True, is_ws=False, is_indention=False)
        for ch in text:
            if not _is_printable(ch) or ch == "\ufeff" or ch in _BREAKS or ch in '"\\':
                self.put("\\" + _escape(ch))
            else:
                self.put(ch)
        self.write_indicator('"', need_ws=False, is_ws=False, is_indention=False)
        self.whitespace = False
        self.indention = False

    def write_literal(self, text: str) -> None:
        self.write_indicator("|", need_ws=True, is_ws=False, is_indention=False)
        if text[:1] == " " or text[:1] in _BREAKS:
            self.write_indicator(str(_BEST_INDENT), need_ws=False, is_ws=False, is_indention=False)
        chomp = _chomping(text)
        if chomp:
            self.write_indicator(chomp, need_ws=False, is_ws=False, is_indention=False)
        self.whitespace = True
        breaks = True
        for ch in text:
            if ch in _BREAKS:
                self.write_break(ch)
                breaks = True
            else:
                if breaks:
                    self.write_indent()
                self.put(ch)
                self.indention = False
                breaks = False


_NAMED_ESCAPES: Final = {
    "\0": "0", "\a": "a", "\b": "b", "\t": "t", "\n": "n", "\v": "v", "\f": "f", "\r": "r",
    "\x1b": "e", '"': '"', "\\": "\\", "\x85": "N", "\xa0": "_", "\u2028": "L", "\u2029": "P",
}  # fmt: skip


def _escape(ch: str) -> str:
    named = _NAMED_ESCAPES.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    if code <= 0xFF:
        return f"x{code:02X}"
    if code <= 0xFFFF:
        return f"u{code:04X}"
    return f"U{code:08X}"


def _chomping(text: str) -> str:
    """The block scalar chomping indicator: strip, clip (none) or keep trailing breaks."""
    if not text or text[-1] not in _BREAKS:
        return "-"
    if len(text) == 1 or text[-2] in _BREAKS:
        return "+"
    return ""
