"""How long `reconciler` takes to start: `--version`, `--help` and `version`, against the
interpreter's own start (`python -c pass`) measured in the same run, each the median of N runs
in a fresh process. Also prints how many modules `--version` imports beyond a bare interpreter.

Target (issue 13): `reconciler --version` under 0.2 s. The figures are printed, not judged.

    .venv/bin/python benchmarks/cli_start.py [N]     (default: 20)
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

SCRIPT = Path(sys.executable).with_name("reconciler")
CASES: list[tuple[str, list[str]]] = [
    ("python -c pass (baseline)", [sys.executable, "-c", "pass"]),
    ("reconciler --version", [str(SCRIPT), "--version"]),
    ("reconciler --help", [str(SCRIPT), "--help"]),
    ("reconciler version", [str(SCRIPT), "version"]),
    ("reconciler completion bash", [str(SCRIPT), "completion", "bash"]),
]
COUNT_MODULES = ("import sys; before = set(sys.modules); from reconciler.cli import main; "
                 "print(len(set(sys.modules) - before))")


def median_seconds(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    baseline = 0.0
    for label, argv in CASES:
        seconds = median_seconds(argv, runs)
        baseline = baseline or seconds
        print(f"{label:32} {seconds * 1000:7.1f} ms  (+{(seconds - baseline) * 1000:6.1f} ms "
              "over the baseline)")
    modules = subprocess.run([sys.executable, "-c", COUNT_MODULES], check=True,
                             capture_output=True, text=True).stdout.strip()
    print(f"modules `reconciler.cli` imports: {modules}")


if __name__ == "__main__":
    main()
