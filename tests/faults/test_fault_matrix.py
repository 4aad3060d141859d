"""The fault matrix, short form (the long form is benchmarks/fault_matrix.py): the daemon
against `reconciler serve --faults`, one kind of API server fault at a time, five Workloads
whose params change while the fault is on. Nothing may be lost or wrongly deleted, and the run
converges once the fault ends."""

from __future__ import annotations

from pathlib import Path

from tests.faults.matrix import HEADER, KINDS, matrix


def test_every_api_fault_kind_loses_nothing_and_converges(tmp_path: Path) -> None:
    rows = []
    with matrix(tmp_path, workloads=5, seed=7) as run:
        for kind in KINDS:
            rows.append(run.run(kind, window=2.0, converge_within=60.0))
    table = "\n".join([HEADER, *(row.line() for row in rows)])
    print(table)
    for row in rows:
        assert row.lost == 0, table
        assert row.wrongly_deleted == 0, table
    injected = {row.kind: row.injected for row in rows}
    # Every kind that the daemon's requests can meet was met (the daemon writes with
    # server-side apply, which 409 spares; see docs/faults.md).
    assert all(injected[kind] > 0 for kind in KINDS if kind != "409"), table
    # The faults that fail requests were retried, by the client or the work queues.
    retried = {row.kind: row.retried for row in rows}
    assert all(retried[kind] > 0 for kind in ("429", "500", "503", "outage")), table
