"""Crash consistency, long form: `reconciler run` killed with SIGKILL at seeded random moments
while its inputs change, restarted, N times; then the end state is compared with a daemon that
never crashed (see tests/faults/crashloop.py).

    .venv/bin/python benchmarks/crash_loop.py [--crashes 200] [--workloads 8] [--seed 11]

Exit 1 on any divergence, orphan or Workload made again.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.faults.crashloop import crash_loop


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crashes", type=int, default=200)
    parser.add_argument("--workloads", type=int, default=8)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="crash-loop-") as tmp:
        def progress(line: str) -> None:  # "crash N/TOTAL": every 25th
            if int(line.split()[1].split("/")[0]) % 25 == 0:
                print(line, flush=True)

        report = crash_loop(Path(tmp), args.crashes, args.workloads, args.seed, log=progress)
    print(f"crashes: {report.crashes} (of which in start-up: {report.killed_in_start_up})")
    print(f"divergent objects: {len(report.divergent)} {report.divergent}")
    print(f"orphans: {len(report.orphans)} {report.orphans}")
    print(f"workloads made again: {len(report.remade)} {report.remade}")
    print(f"daemons that ended before their kill: {len(report.exits)}")
    for line in report.exits:
        print(f"  {line[:400]}")
    print(f"seconds: {report.seconds:.0f}")
    return 1 if report.divergent or report.orphans or report.remade or report.exits else 0


if __name__ == "__main__":
    sys.exit(main())
