"""Edit-to-result of `reconciler simulate --watch` on the greeter example: the real script
watches a copy of the example; each sample saves the supply chain with a new greeting and times
until the watch has printed the run's summary line. Baseline in the same run: a one-shot
`reconciler simulate` of the same files (interpreter start, imports and the run).

Target (issue 13): under 1 s. The figures are printed, not judged.

    .venv/bin/python benchmarks/simulate_watch.py [N]     (default: 10)
"""

from __future__ import annotations

import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).with_name("reconciler")
SUMMARY = "workloads Ready after"


def read_until_summary(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    while SUMMARY not in (line := process.stdout.readline()):
        if not line:
            raise SystemExit("the watch ended early")


def main() -> None:
    samples = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp)
        for name in ("00-supply-chain.yaml", "00-workload.yaml"):
            shutil.copy(ROOT / "examples" / "greeter" / name, inputs / name)
        chain = inputs / "00-supply-chain.yaml"
        text = chain.read_text()

        one_shot = []
        for _ in range(3):
            started = time.perf_counter()
            subprocess.run([str(SCRIPT), "simulate", str(inputs)], check=True,
                           stdout=subprocess.DEVNULL)
            one_shot.append(time.perf_counter() - started)

        process = subprocess.Popen([str(SCRIPT), "simulate", "--watch", "-q", str(inputs)],
                                   stdout=subprocess.PIPE, text=True)
        try:
            read_until_summary(process)
            times = []
            for i in range(samples):
                started = time.perf_counter()
                chain.write_text(text.replace("greeting: hello", f"greeting: hello {i}"))
                read_until_summary(process)
                times.append(time.perf_counter() - started)
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)
    print(f"one-shot `reconciler simulate` (baseline): median {statistics.median(one_shot):.3f} s")
    print(f"simulate --watch edit-to-result over {samples} saves: median "
          f"{statistics.median(times):.3f} s, max {max(times):.3f} s")


if __name__ == "__main__":
    main()
