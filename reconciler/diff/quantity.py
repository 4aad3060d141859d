"""Kubernetes resource quantities (`500m`, `1Gi`, `2e3`) read as exact numbers.

An API server stores quantities in a canonical form (`1000m` becomes `1`, `1024Mi` becomes `1Gi`),
so comparing the text a user wrote with the text the server returns would report drift where
there is none. Only values under fields that hold quantities are compared this way
(`QUANTITY_FIELDS`): a plain string such as an environment variable value `"1000m"` stays a
string.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

# Keys whose values (one level down) are quantities: ResourceRequirements, LimitRange,
# ResourceQuota, PVC capacity and emptyDir sizeLimit.
QUANTITY_FIELDS = frozenset({
    "limits", "requests", "capacity", "allocatable", "hard", "used", "min", "max", "default",
    "defaultRequest", "maxLimitRequestRatio",
})
QUANTITY_LEAVES = frozenset({"sizeLimit", "storage"})

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
            "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
            "P": Decimal("1e15"), "E": Decimal("1e18")}
_QUANTITY = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|"
                       r"[eE][+-]?[0-9]+)?$")


def parse_quantity(value: object) -> Decimal | None:
    """The exact value of a quantity, or None when `value` is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return Decimal(str(value))
    if not isinstance(value, str):
        return None
    match = _QUANTITY.match(value.strip())
    if match is None:
        return None
    try:
        number = Decimal(match.group(1))
    except InvalidOperation:
        return None
    suffix = match.group(2) or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    return number * (Decimal(10) ** int(suffix[1:]))


def quantities_equal(a: object, b: object) -> bool:
    qa, qb = parse_quantity(a), parse_quantity(b)
    return qa is not None and qb is not None and qa == qb


def is_quantity_field(parent: str | None, key: str | None) -> bool:
    """True when the value at `parent.key` holds a quantity (`resources.limits.cpu`)."""
    return parent in QUANTITY_FIELDS or key in QUANTITY_LEAVES
