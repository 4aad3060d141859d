"""How `reconciler test` prints results: a line per test, and for a failure what differs and why.

A failed assertion is shown as the expected object beside the live one it was compared with,
the live one cut down to the fields the assertion names (so a Workload's whole status does not
bury the two fields that matter), then the differing fields and the conditions that explain them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from reconciler.kuttl.assertions import Verdict
from reconciler.kuttl.runner import OWNER_KINDS, Failure, TestResult, format_condition

INDENT = "    "
_COLUMN = 58


def result_line(result: TestResult) -> str:
    word = "PASS" if result.passed else "FAIL"
    return f"{word} {result.name} ({result.seconds:.2f}s)"


def summary_line(results: Sequence[TestResult]) -> str:
    passed = sum(r.passed for r in results)
    return f"{passed} passed, {len(results) - passed} failed"


def failure_details(failure: Failure) -> str:
    lines = [f"step {failure.step}: {failure.summary}"]
    for verdict in failure.verdicts:
        lines.extend(_verdict_lines(verdict))
    if failure.conditions:
        lines.append("conditions in the test namespace:")
        lines.extend(f"  {c}" for c in failure.conditions)
    return "\n".join(INDENT + line for line in lines)


def _verdict_lines(verdict: Verdict) -> list[str]:
    exp = verdict.expectation
    where = exp.source.replace("\\", "/").rsplit("/", 1)[-1]
    lines = ["", f"{exp.label} ({where}): {verdict.problem}"]
    lines.extend(f"  {d}" for d in verdict.differences)
    if verdict.closest is not None:
        live = verdict.closest
        name = (live.get("metadata") or {}).get("name")
        lines.extend(_side_by_side(
            f"expected ({where})", _yaml(exp.obj),
            f"live {live.get('kind')} {name}", _yaml(scoped(exp.obj, live))))
        conditions = (live.get("status") or {}).get("conditions") or []
        # The namespace's owners are listed once, after every assertion.
        if conditions and live.get("kind") not in OWNER_KINDS:
            lines.append(f"  conditions of {live.get('kind')} {name}:")
            lines.extend(f"    {format_condition(c)}" for c in conditions)
    return lines


def scoped(expected: Any, actual: Any) -> Any:
    """`actual` cut down to the fields `expected` names (lists keep every live item)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return {k: scoped(v, actual[k]) for k, v in expected.items() if k in actual}
    if isinstance(expected, list) and isinstance(actual, list):
        return [scoped(expected[i], item) if i < len(expected) else item
                for i, item in enumerate(actual)]
    return actual


def _yaml(obj: Any) -> list[str]:
    text = yaml.safe_dump(obj, sort_keys=False, default_flow_style=False, width=1000)
    return text.rstrip("\n").splitlines()


def _side_by_side(left_title: str, left: list[str], right_title: str,
                  right: list[str]) -> list[str]:
    """Two columns when both fit, else one block after the other."""
    if max(map(len, [left_title, right_title, *left, *right]), default=0) > _COLUMN:
        return ([f"  --- {left_title}"] + [f"  {line}" for line in left]
                + [f"  --- {right_title}"] + [f"  {line}" for line in right])
    rows = [(f"--- {left_title}", f"--- {right_title}")]
    rows.extend((left[i] if i < len(left) else "", right[i] if i < len(right) else "")
                for i in range(max(len(left), len(right))))
    return [f"  {a:<{_COLUMN}} | {b}".rstrip() for a, b in rows]
