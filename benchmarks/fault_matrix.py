"""The fault matrix, long form: `reconciler run` against `reconciler serve --faults`, each kind
of API server fault in turn over many Workloads and longer windows, several rounds.

    .venv/bin/python benchmarks/fault_matrix.py [--workloads 50] [--window 10] [--rounds 2]

Prints per fault kind and round: faults injected, reconciles retried, objects lost (must be 0),
objects wrongly deleted (must be 0), seconds to converge after the fault ended. Exit 1 if
anything was lost or wrongly deleted. See tests/faults/matrix.py for what each column counts.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconciler.observability.logging import configure_logging
from tests.faults.matrix import HEADER, KINDS, matrix
from tests.faults.test_git_faults import GIT_FAULTS


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", type=int, default=50)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    started = time.monotonic()
    bad = 0
    with tempfile.TemporaryDirectory(prefix="fault-matrix-") as tmp, \
            matrix(Path(tmp), args.workloads, args.seed) as run:
        print(f"{args.workloads} workloads, {args.window:g}s windows, seed {args.seed}")
        print(HEADER)
        for _ in range(args.rounds):
            for kind in KINDS:
                row = run.run(kind, args.window, converge_within=300.0)
                print(row.line(), flush=True)
                bad += row.lost + row.wrongly_deleted
    os.environ.setdefault("GIT_TERMINAL_PROMPT", "0")  # as the tests' fixture sets it
    configure_logging("error")  # the in-process controllers' warnings are the faults themselves
    print()
    print("Git faults under a deployed GitRepository + Kustomization (tests/faults/"
          "test_git_faults.py): the last artifact and deployment kept, nothing pruned")
    for name, scenario in GIT_FAULTS.items():
        began = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="git-fault-") as tmp:
            try:
                scenario(Path(tmp))
                verdict = "ok: lost 0, wrongly deleted 0"
            except AssertionError as exc:
                verdict = f"FAILED: {str(exc)[:200]}"
                bad += 1
        print(f"{name:<20} {verdict} ({time.monotonic() - began:.1f}s)", flush=True)
    print(f"done in {time.monotonic() - started:.0f}s; lost or wrongly deleted: {bad}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
