"""Crash consistency, short form (benchmarks/crash_loop.py is the long one): ten kill -9s of
`reconciler run` at seeded random moments while its inputs change, then a clean finish that
must equal a run that never crashed, with no orphan and no Workload made again."""

from __future__ import annotations

from pathlib import Path

from tests.faults.crashloop import crash_loop


def test_ten_kill_9s_end_where_a_run_without_crashes_ends(tmp_path: Path) -> None:
    report = crash_loop(tmp_path, crashes=10, workloads=4, seed=11)
    assert report.divergent == [], report
    assert report.orphans == [], report
    assert report.remade == [], report
    assert report.exits == [], report
