"""Semantic versions of Git tags and the constraint ranges `spec.ref.semver` is written in.

Follows the constraint syntax Flux accepts (Masterminds/semver): comparison operators
(`=`, `!=`, `>`, `>=`, `<`, `<=`), tilde `~1.2`, caret `^1.2`, wildcards `1.2.x` / `*`, hyphen
ranges `1.2 - 1.4`, `,` or space for AND and `||` for OR. A pre-release version only satisfies a
constraint that itself names a pre-release, as in Masterminds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import total_ordering

from reconciler.model.errors import ReconcilerError


class SemverError(ReconcilerError):
    """A constraint that cannot be parsed."""


_VERSION = re.compile(
    r"^v?(?P<major>0|[1-9]\d*)(?:\.(?P<minor>0|[1-9]\d*))?(?:\.(?P<patch>0|[1-9]\d*))?"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)
_PARTIAL = re.compile(
    r"^v?(?P<major>\d+|[xX*])(?:\.(?P<minor>\d+|[xX*]))?(?:\.(?P<patch>\d+|[xX*]))?"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-.]+)?$"
)
_TERM = re.compile(r"^(?P<op>!=|>=|<=|=>|=<|>|<|=|~>|~|\^)?\s*(?P<ver>\S+)$")


@total_ordering
@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int
    pre: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Version | None:
        m = _VERSION.match(text.strip())
        if m is None:
            return None
        pre = tuple(m["pre"].split(".")) if m["pre"] else ()
        if _leading_zero(pre):
            return None
        return cls(int(m["major"]), int(m["minor"] or 0), int(m["patch"] or 0), pre)

    def _key(self) -> tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]:
        # A release sorts after all of its pre-releases; numeric identifiers before alphanumeric.
        pre = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.pre)
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, pre)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()

    @property
    def core(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)


_Check = Callable[[Version], bool]


@dataclass(frozen=True)
class _Partial:
    """A version with wildcards; `parts` counts the fields given as numbers."""

    version: Version
    parts: int

    def upper(self) -> Version:
        """The first version no longer covered by the wildcard (exclusive)."""
        v = self.version
        if self.parts == 0:
            return Version(1 << 62, 0, 0)
        if self.parts == 1:
            return Version(v.major + 1, 0, 0, ("0",))
        if self.parts == 2:
            return Version(v.major, v.minor + 1, 0, ("0",))
        return Version(v.major, v.minor, v.patch + 1, ("0",))


def _partial(text: str) -> _Partial:
    m = _PARTIAL.match(text)
    if m is None:
        raise SemverError(f"{text!r} is not a version")
    nums: list[int] = []
    for field in ("major", "minor", "patch"):
        value = m[field]
        if value is None or value in "xX*":
            break
        nums.append(int(value))
    padded = [*nums, 0, 0, 0][:3]
    # `1.1-alpha` is 1.1.0-alpha, as Masterminds reads it.
    pre = tuple(m["pre"].split(".")) if m["pre"] and nums else ()
    if _leading_zero(pre):
        raise SemverError(f"{text!r}: a numeric pre-release identifier has a leading zero")
    return _Partial(Version(padded[0], padded[1], padded[2], pre), len(nums))


def _leading_zero(pre: tuple[str, ...]) -> bool:
    """SemVer 2.0.0 item 9: numeric identifiers must not include leading zeroes."""
    return any(len(part) > 1 and part.isdigit() and part[0] == "0" for part in pre)


def _term(op: str, p: _Partial) -> _Check:
    low, high = p.version, p.upper()
    if op in ("", "="):
        if p.parts == 3:
            return lambda v: v == low
        return lambda v: low <= v < high
    if op == "!=":
        if p.parts == 3:
            return lambda v: v != low
        return lambda v: not (low <= v < high)
    if op == ">":
        return (lambda v: v > low) if p.parts == 3 else (lambda v: v >= high)
    if op in (">=", "=>"):
        return lambda v: v >= low
    if op == "<":
        return lambda v: v < low
    if op in ("<=", "=<"):
        return (lambda v: v <= low) if p.parts == 3 else (lambda v: v < high)
    if op in ("~", "~>"):
        if p.parts == 0 or (p.parts == 3 and low.core == (0, 0, 0) and not low.pre):
            # `~*`, and `~0.0.0` (Masterminds: "equivalent to >= 0.0.0"), take everything.
            return lambda v: True
        top = Version(low.major + 1, 0, 0, ("0",)) if p.parts == 1 else Version(
            low.major, low.minor + 1, 0, ("0",)
        )
        return lambda v: low <= v < top
    if op == "^":
        if low.major > 0 or p.parts == 1:
            top = Version(low.major + 1, 0, 0, ("0",))
        elif low.minor > 0 or p.parts == 2:
            top = Version(0, low.minor + 1, 0, ("0",))
        else:
            top = Version(0, 0, low.patch + 1, ("0",))
        return lambda v: low <= v < top
    raise SemverError(f"unknown operator {op!r}")


@dataclass(frozen=True)
class Constraint:
    """A parsed `spec.ref.semver` range: OR of AND-groups of checks."""

    text: str
    groups: tuple[tuple[tuple[_Check, bool], ...], ...]

    @classmethod
    def parse(cls, text: str) -> Constraint:
        groups: list[tuple[tuple[_Check, bool], ...]] = []
        for alternative in text.split("||"):
            alt = re.sub(r"\s*-\s+", " - ", alternative.strip())
            alt = re.sub(r"([<>=!~^]+)\s+", r"\1", alt)
            tokens = [t for t in re.split(r"[\s,]+", alt) if t]
            checks: list[tuple[_Check, bool]] = []
            i = 0
            while i < len(tokens):
                if i + 2 < len(tokens) and tokens[i + 1] == "-":
                    lo, hi = _partial(tokens[i]), _partial(tokens[i + 2])
                    checks.append((_term(">=", lo), bool(lo.version.pre)))
                    checks.append((_term("<=", hi), bool(hi.version.pre)))
                    i += 3
                    continue
                m = _TERM.match(tokens[i])
                if m is None:
                    raise SemverError(f"semver constraint {text!r}: cannot parse {tokens[i]!r}")
                p = _partial(m["ver"])
                checks.append((_term(m["op"] or "", p), bool(p.version.pre)))
                i += 1
            if not checks:
                raise SemverError(f"semver constraint {text!r} has an empty alternative")
            groups.append(tuple(checks))
        return cls(text, tuple(groups))

    def allows(self, version: Version) -> bool:
        for group in self.groups:
            names_pre = any(pre for _, pre in group)
            if version.pre and not names_pre:
                continue
            if all(check(version) for check, _ in group):
                return True
        return False


def highest(constraint: Constraint, tags: Iterable[str]) -> str | None:
    """The tag with the highest version that satisfies `constraint`, or None."""
    best: tuple[Version, str] | None = None
    for tag in tags:
        version = Version.parse(tag)
        if version is None or not constraint.allows(version):
            continue
        if best is None or version > best[0]:
            best = (version, tag)
    return best[1] if best else None
