"""No-op polling cost: 100 GitRepositories on one repository, 10 intervals, no new commit.

Serves a real repository with `git daemon` on 127.0.0.1, reconciles 100 GitRepository objects
once (first artifacts), then advances a virtual clock by the interval 10 times and reconciles
every object each time. Prints the remote calls made during the 10 polls (expected: 10 ls-remote,
one shared per interval, and 0 fetches) and the wall time per poll of all 100 objects.

    .venv/bin/python benchmarks/git_polling.py [--objects 100] [--polls 10]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reconciler.sources.artifacts import ArtifactStore
from reconciler.sources.git import GitRepositoryController
from tests.gitservers import BareRepo, GitDaemon

INTERVAL = 60.0


class VirtualClock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def now(self) -> float:
        return self.t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=100)
    parser.add_argument("--polls", type=int, default=10)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        served = tmp / "served"
        served.mkdir()
        repo = BareRepo(served, "app")
        repo.commit({"deploy/app.yaml": "replicas: 1\n"}, "initial")
        clock = VirtualClock()
        controller = GitRepositoryController(
            ArtifactStore(tmp / "store", "http://artifacts.test"), clock, tmp / "work")
        with GitDaemon(served) as daemon:
            objs = [{
                "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                "metadata": {"name": f"app-{i}", "namespace": "default", "generation": 1,
                             "uid": f"u{i}"},
                "spec": {"url": daemon.url(repo), "interval": "1m", "ref": {"branch": "main"}},
            } for i in range(args.objects)]
            started = time.perf_counter()
            for obj in objs:
                obj["status"] = controller.reconcile(obj).status
            setup = time.perf_counter() - started
            print(f"first reconcile of {args.objects} objects: {setup:.3f}s "
                  f"(ls-remote {controller.ls_remote_calls}, fetch {controller.fetch_calls})")

            controller.ls_remote_calls = controller.fetch_calls = 0
            per_poll = []
            for _ in range(args.polls):
                clock.t += INTERVAL
                started = time.perf_counter()
                for obj in objs:
                    obj["status"] = controller.reconcile(obj).status
                per_poll.append(time.perf_counter() - started)
    print(f"{args.polls} polls x {args.objects} objects, no new commit: "
          f"ls-remote calls {controller.ls_remote_calls}, fetch calls {controller.fetch_calls}")
    print(f"wall time per poll: mean {sum(per_poll) / len(per_poll) * 1000:.1f} ms, "
          f"max {max(per_poll) * 1000:.1f} ms, per object "
          f"{sum(per_poll) / len(per_poll) / args.objects * 1e6:.0f} µs")


if __name__ == "__main__":
    main()
