"""Semver constraints (`spec.ref.semver`): Masterminds/semver's own test tables as golden cases
(tests/fuzz/data/masterminds_semver_constraints.tsv names the version followed), and fuzzing:
parsing raises only SemverError, checking never raises, versions order totally."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from reconciler.sources.semver import Constraint, SemverError, Version, highest

TABLE = Path(__file__).parent / "data" / "masterminds_semver_constraints.tsv"

# Where we knowingly differ from Masterminds, and why.
DIVERGES = {
    ("!=4.1-alpha", "4.1.0"): "Masterminds compares only the pre-release of a constraint "
                              "whose patch is missing; here `!=4.1-alpha` excludes the whole "
                              "4.1 range from 4.1.0-alpha",
}


def _rows(kind: str) -> list[list[str]]:
    return [line.rstrip("\n").split("\t")[1:] for line in TABLE.read_text().splitlines()
            if line.startswith(kind + "\t")]


@pytest.mark.parametrize(("constraint", "version", "expected"), _rows("check"))
def test_masterminds_check_table(constraint: str, version: str, expected: str) -> None:
    parsed = Version.parse(version)
    assert parsed is not None
    got = Constraint.parse(constraint).allows(parsed)
    if (constraint, version) in DIVERGES:
        assert got != (expected == "true"), "fixed: remove it from DIVERGES"
        return
    assert got == (expected == "true")


@pytest.mark.parametrize(("constraint", "outcome", "ors", "ands"), _rows("parse"))
def test_masterminds_parse_table(constraint: str, outcome: str, ors: str, ands: str) -> None:
    if outcome == "error":
        with pytest.raises(SemverError):
            Constraint.parse(constraint)
        return
    parsed = Constraint.parse(constraint)
    assert (len(parsed.groups), len(parsed.groups[0])) == (int(ors), int(ands))


def test_the_table_is_all_there() -> None:
    assert len(_rows("check")) == 126 and len(_rows("parse")) == 19


CONSTRAINT_ALPHABET = st.sampled_from(list("0123456789.xX*^~<>=!|, -+vabc"))
VERSIONS = st.builds(
    lambda a, b, c, pre: f"{a}.{b}.{c}" + (f"-{pre}" if pre else ""),
    st.integers(0, 20), st.integers(0, 20), st.integers(0, 20),
    st.sampled_from(["", "alpha", "beta.1", "rc.2", "0", "1.a"]))


@given(st.text(CONSTRAINT_ALPHABET, max_size=40), VERSIONS)
@example("12.3.4.1234", "1.0.0")
@example("~", "1.0.0")
@example("1 - ", "1.0.0")
@example(" - 1", "1.0.0")
@example("||", "1.0.0")
@example("99999999999999999999999", "1.0.0")
def test_constraints_parse_or_say_why(text: str, version: str) -> None:
    try:
        constraint = Constraint.parse(text)
    except SemverError:
        return
    parsed = Version.parse(version)
    assert parsed is not None
    assert isinstance(constraint.allows(parsed), bool)


@given(st.lists(st.text(max_size=20), max_size=10), st.text(max_size=30))
def test_highest_never_raises_on_any_tags(tags: list[str], text: str) -> None:
    try:
        constraint = Constraint.parse(text)
    except SemverError:
        return
    best = highest(constraint, tags)
    assert best is None or best in tags


@given(VERSIONS, VERSIONS, VERSIONS)
def test_versions_order_totally(a: str, b: str, c: str) -> None:
    x, y, z = (Version.parse(v) for v in (a, b, c))
    assert x is not None and y is not None and z is not None
    assert (x < y) + (y < x) + (x == y) == 1
    if x <= y and y <= z:
        assert x <= z
