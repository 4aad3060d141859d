"""Soak: `reconciler run` (kubernetes environment) against `reconciler serve` with N Workloads
for a long run, under a steady rate of changes and injected faults, sampling the daemon's
resident memory, open file descriptors, threads and work-queue depth over time.

    .venv/bin/python benchmarks/soak.py [--workloads 1000] [--minutes 12] [--rate 2]
        [--faults SPEC] [--every 30]

The changes: `--rate` Workloads a second get a new `greeting` param (each one re-renders and
re-applies that Workload's ConfigMap and writes its status), as a steady stream of commits
would. The faults (docs/faults.md) stay on for the whole run; at the end they go off and the
run waits until every Workload is Ready with its latest greeting, then checks that nothing was
lost and no ConfigMap was made again (same uid as at the start).

Prints one line per sample, then the first and last samples side by side. Exit 1 if anything
was lost or wrongly deleted, or the run did not converge.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.faults.matrix import Matrix, matrix, ready_at_generation

DEFAULT_FAULTS = ("429=0.02,500=0.01,503=0.01,slow=0.02,delay=200ms,timeout=0.002,hang=2s,"
                  "watch-cut=120s,outage=300s/3s,seed=7")


def proc_sample(pid: int) -> tuple[float, int, int]:
    """RSS in MiB, open fds, threads of `pid`."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    rss = int(fields["VmRSS"].split()[0]) / 1024
    threads = int(fields["Threads"])
    fds = len(list(Path(f"/proc/{pid}/fd").iterdir()))
    return rss, fds, threads


def queue_depth(run: Matrix) -> int:
    total = 0.0
    try:
        text = run.daemon.metrics()
    except (AssertionError, OSError):
        return -1
    for line in text.splitlines():
        if line.startswith("workqueue_depth{"):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def converged(run: Matrix, greetings: dict[str, str]) -> dict[tuple[str, str], Any] | None:
    objects = run.objects()
    for name, greeting in greetings.items():
        workload = objects.get(("Workload", name))
        config = objects.get(("ConfigMap", f"{name}-greeting"))
        if workload is None or config is None or not ready_at_generation(workload):
            return None
        if config.get("data") != {"greeting": greeting}:
            return None
    return objects


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", type=int, default=1000)
    parser.add_argument("--minutes", type=float, default=12.0)
    parser.add_argument("--rate", type=float, default=2.0, help="Workload changes per second")
    parser.add_argument("--faults", default=DEFAULT_FAULTS)
    parser.add_argument("--every", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        started = time.monotonic()
        with matrix(Path(tmp), args.workloads, via_api=True, settle_seconds=900) as run:
            settled = time.monotonic() - started
            pid = run.daemon.proc.pid
            start_uids = {key: obj["metadata"]["uid"] for key, obj in run.objects().items()}
            greetings = dict.fromkeys(run.names, "hello")
            run.faults(args.faults)
            print(f"{args.workloads} workloads settled in {settled:.1f}s; faults: {args.faults}; "
                  f"{args.rate:g} changes/s for {args.minutes:g} min", flush=True)
            print(f"{'t_s':>6} {'rss_mib':>8} {'fds':>5} {'threads':>8} {'queue':>6} "
                  f"{'changes':>8} {'injected':>9}", flush=True)
            samples: list[tuple[float, float, int, int, int]] = []
            begin = time.monotonic()
            end = begin + args.minutes * 60
            next_sample = begin
            changes = 0
            while time.monotonic() < end:
                now = time.monotonic()
                if now >= next_sample:
                    rss, fds, threads = proc_sample(pid)
                    depth = queue_depth(run)
                    injected = sum(run.counts().values())
                    samples.append((now - begin, rss, fds, threads, depth))
                    print(f"{now - begin:>6.0f} {rss:>8.1f} {fds:>5} {threads:>8} {depth:>6} "
                          f"{changes:>8} {injected:>9}", flush=True)
                    next_sample += args.every
                name = rng.choice(run.names)
                changes += 1
                greetings[name] = f"g{changes}"
                code, body = run.call(
                    "PATCH", f"/apis/carto.run/v1alpha1/namespaces/default/workloads/{name}",
                    {"spec": {"params": [{"name": "greeting", "value": greetings[name]}]}},
                    "application/merge-patch+json")
                assert code == 200, body
                time.sleep(max(0.0, 1.0 / args.rate - (time.monotonic() - now)))
            run.faults("off")
            off = time.monotonic()
            final = None
            while final is None and time.monotonic() - off < 600:
                final = converged(run, greetings)
                if final is None:
                    time.sleep(1.0)
            converge = time.monotonic() - off
            rss, fds, threads = proc_sample(pid)
            counts = run.counts()
    if final is None:
        print("did not converge within 600 s after the faults ended")
        return 1
    lost = [f"{k}/{n}" for (k, n) in start_uids if (k, n) not in final]
    remade = [f"{k}/{n}" for (k, n), uid in start_uids.items()
              if (k, n) in final and final[(k, n)]["metadata"]["uid"] != uid]
    first, last = samples[0], samples[-1]
    print(f"faults injected: {dict(sorted(counts.items()))}")
    print(f"changes: {changes}; converged {converge:.1f}s after the faults ended")
    print(f"objects lost: {len(lost)}; wrongly deleted (made again): {len(remade)}")
    print(f"first sample: rss {first[1]:.1f} MiB, fds {first[2]}, threads {first[3]}")
    print(f"last sample ({last[0]:.0f}s): rss {last[1]:.1f} MiB, fds {last[2]}, "
          f"threads {last[3]}")
    print(f"after converging: rss {rss:.1f} MiB, fds {fds}, threads {threads}")
    print(f"max over the run: rss {max(s[1] for s in samples):.1f} MiB, fds "
          f"{max(s[2] for s in samples)}, threads {max(s[3] for s in samples)}, queue "
          f"{max(s[4] for s in samples)}")
    return 1 if lost or remade else 0


if __name__ == "__main__":
    sys.exit(main())
