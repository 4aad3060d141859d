"""The runs a Runnable has stamped: their outcome, the outputs of the latest success, retention.

A run's outcome is its `Succeeded` condition (Tekton's convention, which Cartographer reads for
every run kind): True succeeded, False failed, anything else still running. Runs are ordered
newest first by `metadata.creationTimestamp`, as Cartographer orders them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from reconciler.model.conditions import FALSE, TRUE, find_condition
from reconciler.model.jsonpath import JSONPathError, evaluate_single
from reconciler.model.objects import Obj, meta, spec_of, status_of

SUCCEEDED: Final = "Succeeded"
DEFAULT_MAX_SUCCESSFUL_RUNS: Final = 10
DEFAULT_MAX_FAILED_RUNS: Final = 10


def outcome(run: Mapping[str, Any]) -> str | None:
    """`True`, `False` or `Unknown` from the run's Succeeded condition; None without one."""
    cond = find_condition(status_of(run).get("conditions"), SUCCEEDED)
    return str(cond.get("status")) if cond is not None else None


def newest_first(runs: Sequence[Obj]) -> list[Obj]:
    # creationTimestamp has one-second resolution; resourceVersion (monotonic on the server)
    # breaks ties so the order is deterministic.
    def key(run: Obj) -> tuple[str, int]:
        m = meta(run)
        version = str(m.get("resourceVersion") or "0")
        return (str(m.get("creationTimestamp") or ""), int(version) if version.isdigit() else 0)

    return sorted(runs, key=key, reverse=True)


@dataclass(frozen=True)
class LatestOutputs:
    """The outputs read from the newest succeeded run (`source`), or why they could not be."""

    outputs: dict[str, Any]
    source: Obj | None = None
    path: str = ""
    error: JSONPathError | None = None


def latest_succeeded_outputs(runs: Sequence[Obj], output_paths: Mapping[str, str]) -> LatestOutputs:
    """Read `output_paths` (name → JSONPath) from the newest run whose Succeeded is True."""
    for run in newest_first(runs):
        if outcome(run) != TRUE:
            continue
        outputs: dict[str, Any] = {}
        for name, path in sorted(output_paths.items()):
            try:
                outputs[name] = evaluate_single(str(path), run)
            except JSONPathError as exc:
                return LatestOutputs({}, run, str(path), exc)
        return LatestOutputs(outputs, run)
    return LatestOutputs({})


@dataclass(frozen=True)
class RetentionPolicy:
    max_successful_runs: int = DEFAULT_MAX_SUCCESSFUL_RUNS
    max_failed_runs: int = DEFAULT_MAX_FAILED_RUNS

    @classmethod
    def of(cls, runnable: Obj) -> RetentionPolicy:
        given = spec_of(runnable).get("retentionPolicy") or {}
        # The CRD's minimum is 1: keeping no successful run would lose the outputs.
        return cls(
            max_successful_runs=max(1, int(given.get("maxSuccessfulRuns")
                                           or DEFAULT_MAX_SUCCESSFUL_RUNS)),
            max_failed_runs=max(1, int(given.get("maxFailedRuns") or DEFAULT_MAX_FAILED_RUNS)),
        )


def runs_to_delete(runs: Sequence[Obj], policy: RetentionPolicy) -> list[Obj]:
    """Finished runs beyond the policy's counts, oldest kept last; running runs are never due."""
    due: list[Obj] = []
    succeeded = failed = 0
    for run in newest_first(runs):
        state = outcome(run)
        if state == TRUE:
            succeeded += 1
            if succeeded > policy.max_successful_runs:
                due.append(run)
        elif state == FALSE:
            failed += 1
            if failed > policy.max_failed_runs:
                due.append(run)
    return due
