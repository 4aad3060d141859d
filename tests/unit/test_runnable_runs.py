"""A Runnable's runs: outcome, outputs of the newest success, retention policy."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.chains.runnable_runs import (
    RetentionPolicy,
    latest_succeeded_outputs,
    outcome,
    runs_to_delete,
)


def _run(name: str, created: str, succeeded: str | None, **status: Any) -> dict[str, Any]:
    conditions = [] if succeeded is None else [{"type": "Succeeded", "status": succeeded}]
    return {"apiVersion": "v1", "kind": "Thing",
            "metadata": {"name": name, "creationTimestamp": created, "resourceVersion": "1"},
            "spec": {"name": name},
            "status": {"conditions": conditions, **status}}


T1, T2, T3 = "2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z", "2026-01-01T00:00:03Z"


@pytest.mark.parametrize(
    ("succeeded", "expected"),
    [("True", "True"), ("False", "False"), ("Unknown", "Unknown"), (None, None)],
)
def test_outcome(succeeded: str | None, expected: str | None) -> None:
    assert outcome(_run("a", T1, succeeded)) == expected


@pytest.mark.parametrize(
    ("runs", "paths", "outputs", "source"),
    [
        ([], {"x": "spec.name"}, {}, None),
        ([_run("old", T1, "True"), _run("new", T2, "True")], {"x": "spec.name"},
         {"x": "new"}, "new"),
        ([_run("ok", T1, "True"), _run("failed", T2, "False"), _run("running", T3, "Unknown")],
         {"x": "spec.name"}, {"x": "ok"}, "ok"),
        ([_run("none", T1, None)], {"x": "spec.name"}, {}, None),
        ([_run("a", T1, "True", result={"digest": "sha"})],
         {"d": "status.result.digest", "n": ".spec.name"}, {"d": "sha", "n": "a"}, "a"),
        ([_run("a", T1, "True")], {}, {}, "a"),
    ],
    ids=["no-runs", "newest-success-wins", "only-successes-count", "no-succeeded-condition",
         "several-paths", "no-output-paths"],
)
def test_latest_succeeded_outputs(
    runs: list[dict[str, Any]], paths: dict[str, str], outputs: dict[str, Any],
    source: str | None,
) -> None:
    latest = latest_succeeded_outputs(runs, paths)
    assert latest.error is None
    assert latest.outputs == outputs
    assert (latest.source or {}).get("metadata", {}).get("name") == source


def test_latest_succeeded_outputs_reports_unsatisfied_path() -> None:
    latest = latest_succeeded_outputs([_run("a", T1, "True")], {"x": "status.missing"})
    assert latest.outputs == {}
    assert latest.path == "status.missing"
    assert latest.error is not None
    assert latest.source is not None and latest.source["metadata"]["name"] == "a"


@pytest.mark.parametrize(
    ("outcomes", "policy", "deleted"),
    [
        (["True", "True", "True"], RetentionPolicy(2, 2), ["r0"]),
        (["False", "True", "False", "False"], RetentionPolicy(1, 2), ["r0"]),
        (["Unknown", "Unknown", "True"], RetentionPolicy(1, 1), []),
        ([None, "True", "False"], RetentionPolicy(1, 1), []),
        (["True"] * 12, RetentionPolicy(), ["r0", "r1"]),
    ],
    ids=["oldest-success-goes", "failures-counted-apart", "running-never-deleted",
         "no-condition-never-deleted", "default-keeps-ten"],
)
def test_runs_to_delete(
    outcomes: list[str | None], policy: RetentionPolicy, deleted: list[str]
) -> None:
    runs = [_run(f"r{i}", f"2026-01-01T00:00:{i:02d}Z", o) for i, o in enumerate(outcomes)]
    assert sorted(r["metadata"]["name"] for r in runs_to_delete(runs, policy)) == deleted


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({}, RetentionPolicy(10, 10)),
        ({"maxSuccessfulRuns": 3, "maxFailedRuns": 5}, RetentionPolicy(3, 5)),
        ({"maxSuccessfulRuns": 0}, RetentionPolicy(10, 10)),
        ({"maxSuccessfulRuns": -2}, RetentionPolicy(1, 10)),
    ],
    ids=["defaults", "given", "zero-is-unset", "at-least-one"],
)
def test_retention_policy_of(given: dict[str, int], expected: RetentionPolicy) -> None:
    runnable = {"spec": {"retentionPolicy": given}} if given else {"spec": {}}
    assert RetentionPolicy.of(runnable) == expected
