"""Semver constraints as spec.ref.semver is written (Masterminds syntax)."""

from __future__ import annotations

import pytest

from reconciler.sources.semver import Constraint, SemverError, Version, highest

TAGS = ["v0.9.0", "v1.0.0", "v1.2.0", "v1.2.3", "v1.3.0-rc.1", "v2.0.0", "not-a-version", "1.4.0"]


@pytest.mark.parametrize(
    ("constraint", "expected"),
    [
        ("*", "v2.0.0"),
        (">=1.0.0 <2.0.0", "1.4.0"),
        (">=1.0.0, <2.0.0", "1.4.0"),
        ("~1.2", "v1.2.3"),
        ("^1.0", "1.4.0"),
        ("1.2.x", "v1.2.3"),
        ("<1.0.0", "v0.9.0"),
        ("1.0.0 - 1.2.0", "v1.2.0"),
        ("~1.3.0-rc.0", "v1.3.0-rc.1"),
        (">=3.0.0 || =1.2.0", "v1.2.0"),
        ("!=2.0.0", "1.4.0"),
        (">5", None),
    ],
)
def test_highest_matching_tag(constraint: str, expected: str | None) -> None:
    assert highest(Constraint.parse(constraint), TAGS) == expected


def test_release_sorts_after_its_prereleases() -> None:
    parsed = [Version.parse(t) for t in ("1.0.0", "1.0.0-rc.2", "1.0.0-rc.10", "1.0.0-alpha")]
    versions = [v for v in parsed if v is not None]
    assert [v.pre for v in sorted(versions)] == [("alpha",), ("rc", "2"), ("rc", "10"), ()]


def test_bad_constraint_is_an_error() -> None:
    with pytest.raises(SemverError):
        Constraint.parse(">=banana")
