"""kuttl's subset match of an expected (partial) object against a live one, with every difference.

kuttl (`pkg/test/utils/subset.go`, `IsSubset`) accepts a live object when each map key the
expected object names is present with a matching value; keys it does not name are ignored. Lists
are not subsets: they must have the same length and match element by element, in order. Scalars
must have the same type and be equal, so `"5"` does not match `5`.

kuttl stops at the first difference; reports here list them all, so `differences` walks on
(elements of lists of different lengths are still compared pairwise) while `is_subset` answers
the yes/no question exactly as kuttl does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_MISSING = object()


@dataclass(frozen=True)
class Difference:
    """One field where the live object does not satisfy the expected one."""

    path: str
    """Where, as `status.conditions[0].reason` (empty for the object itself)."""
    message: str
    """What differs, as `expected "Ready", got "Failed"`."""

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def is_subset(expected: Any, actual: Any) -> bool:
    return not differences(expected, actual, limit=1)


def differences(expected: Any, actual: Any, limit: int | None = None) -> list[Difference]:
    """Every field of `expected` that `actual` lacks or holds differently (at most `limit`)."""
    found: list[Difference] = []
    _walk(expected, actual, "", found, limit)
    return found


def _walk(expected: Any, actual: Any, path: str, found: list[Difference],
          limit: int | None) -> None:
    if limit is not None and len(found) >= limit:
        return
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key, value in expected.items():
            child = f"{path}.{key}" if path else str(key)
            if key not in actual:
                found.append(Difference(child, f"expected {_show(value)}, got nothing "
                                               "(the field is missing)"))
                if limit is not None and len(found) >= limit:
                    return
                continue
            _walk(value, actual[key], child, found, limit)
        return
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            found.append(Difference(path, f"expected a list of {len(expected)} item(s), got "
                                          f"{len(actual)} (kuttl compares lists whole, in order)"))
        for index, (want, have) in enumerate(zip(expected, actual, strict=False)):
            _walk(want, have, f"{path}[{index}]", found, limit)
        return
    if _kind_of(expected) != _kind_of(actual):
        found.append(Difference(path, f"expected {_show(expected)} ({_kind_of(expected)}), got "
                                      f"{_show(actual)} ({_kind_of(actual)})"))
        return
    if expected != actual:
        if isinstance(expected, str) and isinstance(actual, str):
            found.append(Difference(path, _string_difference(expected, actual)))
        else:
            found.append(Difference(path, f"expected {_show(expected)}, got {_show(actual)}"))


def _string_difference(expected: str, actual: str, width: int = 80) -> str:
    """Long strings (previews, URLs) differ somewhere in the middle: show around that place."""
    if len(expected) <= width and len(actual) <= width:
        return f"expected {_quote(expected)}, got {_quote(actual)}"
    at = next((i for i, (a, b) in enumerate(zip(expected, actual, strict=False)) if a != b),
              min(len(expected), len(actual)))
    start = max(at - 20, 0)
    lead = "..." if start else ""
    return (f"strings differ at character {at} (lengths {len(expected)} and {len(actual)}): "
            f"expected {lead}{_quote(expected[start:at + 40])}, "
            f"got {lead}{_quote(actual[start:at + 40])}")


def _kind_of(value: Any) -> str:
    """The JSON type of a value; bool is its own type (Python's bool is an int)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "map"
    return type(value).__name__


def _show(value: Any, width: int = 80) -> str:
    if isinstance(value, dict):
        text = "a map of " + (", ".join(map(str, value)) or "nothing")
    elif isinstance(value, list):
        text = f"a list of {len(value)} item(s)"
    elif isinstance(value, str):
        text = _quote(value)
    elif value is None:
        text = "null"
    else:
        text = str(value).lower() if isinstance(value, bool) else str(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
