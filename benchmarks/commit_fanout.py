"""One commit shared by N workloads: remote calls and wall time until all N have moved to it.

Serves one real Git repository with `git daemon` on 127.0.0.1 and installs N paved-path
Workloads (`examples/paved-path/platform`: GitRepository -> kpack Image -> Knative Service) in
the simulator, driven by the same runner `simulate` uses (`engine/runner.run_until_settled`, read
tracking on, the Git source controller polling). Once everything has settled, one new commit is
pushed and the runner goes on (in virtual time, to the GitRepositories' next poll); from the
start of the first GitRepository reconcile that lists the remote after the push (the controller
noticing the new revision) the wall time is measured until every GitRepository reports the new
revision in `status.artifact` and every Workload has moved to it downstream (its Image's source
URL is the new artifact, built; its Knative Service runs the Image's new `latestImage`; every
Workload settled again; the time spent checking that is left out). Counted: `git ls-remote`
and fetch subprocess runs of the source controller, and the archives it built. "sources s" is
the part until the last GitRepository reconcile of the fan-out ended; "in collector" the share
of "all moved" spent in Python's cycle collector; "moved cpu" the process's CPU seconds over
the same span (what to compare on a loaded machine; git's subprocesses are not in it).

The cycle collector is tuned once the inputs are applied, as `simulate` tunes it
(`runtime.gctuning.tune_after_load`; the daemon and `serve` tune it too): a fan-out runs in one
of those, never with Python's default thresholds (`RECONCILER_GC_TUNING=off` measures those).

Baseline in the same run: the same N workloads, each on its own spelling of the repository's
URL (N symbolic links to the one bare repository, served by the same daemon), so nothing can be
shared: what every object costs when it polls, fetches and archives alone. The ratio is the
figure; the target (issue 14) is one fetch and under 3 s for N = 1,000.

    .venv/bin/python benchmarks/commit_fanout.py [N] [--profile FILE] [--no-baseline]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simulate_scale import PLATFORM, WORKLOAD, CollectorTime  # the same paved-path Workloads

from reconciler.engine.runner import Environment, run_until_settled
from reconciler.engine.sources import GitRepositoryReconciler
from reconciler.engine.tracking import TrackingBackend
from reconciler.engine.wiring import load_environment, product_controllers
from reconciler.loader import load_paths, load_text
from reconciler.model.objects import Obj, name_of, status_of
from reconciler.observability.logging import configure_logging
from reconciler.runtime.controller import Controller, Polling
from reconciler.runtime.gctuning import tune_after_load
from reconciler.settings import SourceSettings
from reconciler.simulation import all_settled, apply_inputs
from reconciler.sources.git import GitRepositoryController
from tests.gitservers import BareRepo, GitDaemon

GIT_API = "source.toolkit.fluxcd.io/v1"


class Phase:
    """N workloads applied to a fresh simulated cluster, with the product's controllers wired as
    `simulate` wires them; `git` is their Git source controller (its counters are read)."""

    def __init__(self, n: int, urls: list[str], scratch: Path) -> None:
        self.n = n
        self.env: Environment = load_environment("simulator")
        objects = [*load_paths([PLATFORM]), *load_text(
            "".join(WORKLOAD.format(i=i, url=url) for i, url in enumerate(urls)), "<generated>")]
        apply_inputs(self.env.backend, objects)
        tune_after_load()  # as `simulate` does once its inputs are applied
        sources = SourceSettings(artifact_root=scratch / "artifacts", workdir=scratch / "git")
        self.tracker = TrackingBackend(self.env.backend)
        self.product: list[Controller] = []
        self.git: GitRepositoryController | None = None
        for c in product_controllers(self.tracker, self.env.clock, sources):
            if isinstance(c, GitRepositoryReconciler):
                self.git = c.git
                self.product.append(Polling(c))
            else:
                self.product.append(c)
        assert self.git is not None

    def git_repositories(self) -> list[Obj]:
        return self.env.backend.list(GIT_API, "GitRepository", "default")

    def revisions(self) -> set[str]:
        return {str((status_of(r).get("artifact") or {}).get("revision", ""))
                for r in self.git_repositories()}

    def moved(self, commit: str) -> bool:
        """Every GitRepository at `commit`, and every Workload moved to it downstream."""
        backend = self.env.backend
        repos = {name_of(r): r for r in self.git_repositories()}
        if len(repos) != self.n:
            return False
        images = {name_of(i): i for i in backend.list("kpack.io/v1alpha2", "Image", "default")}
        services = {name_of(s): s
                    for s in backend.list("serving.knative.dev/v1", "Service", "default")}
        for name, repo in repos.items():
            artifact = status_of(repo).get("artifact") or {}
            if not str(artifact.get("revision", "")).endswith(commit):
                return False
            image = images.get(name)
            if image is None or image["spec"]["source"]["blob"]["url"] != artifact.get("url"):
                return False
            latest = status_of(image).get("latestImage")
            if not latest or _ready(image) != "True" or image_built_from(image) != artifact.get(
                    "url"):
                return False
            service = services.get(name)
            if service is None or _container_image(service) != latest:
                return False
        return all_settled(backend)


def image_built_from(image: Obj) -> Any:
    """The source URL of the Image's latest build: its spec's, once the build of its current
    generation is the one the status reports (the simulated kpack's
    `latestBuildImageGeneration`)."""
    status = status_of(image)
    current = image["metadata"].get("generation")
    if status.get("observedGeneration") != current or (
            status.get("latestBuildImageGeneration") != current):
        return None
    return image["spec"]["source"]["blob"]["url"]


def _ready(obj: Obj) -> str:
    for cond in status_of(obj).get("conditions") or []:
        if cond.get("type") == "Ready":
            return str(cond.get("status"))
    return ""


def _container_image(service: Obj) -> Any:
    containers = service["spec"]["template"]["spec"].get("containers") or [{}]
    return containers[0].get("image")


def measure(label: str, n: int, repo: BareRepo, urls: list[str], scratch: Path,
            profile: Path | None) -> dict[str, float]:
    """Install, settle, push one commit, and run on until every workload moved to it: one run
    of the runner, as `reconciler simulate` drives it, so the push is seen by the scheduler
    that settled the install (a second run would start with a round over every object)."""
    phase = Phase(n, urls, scratch)
    git = phase.git
    assert git is not None
    profiler = cProfile.Profile() if profile is not None else None
    marks: dict[str, float] = {}
    pushed: list[str] = []
    before: set[str] = set()
    git_runs: list[tuple[float, float]] = []
    collector = CollectorTime()
    inner = git.reconcile

    def timed(*args: Any, **kwargs: Any) -> Any:
        began, cpu_began = time.perf_counter(), time.process_time()
        result = inner(*args, **kwargs)
        # Counted from the first reconcile that listed the remote after the push.
        if pushed and (git_runs or git.ls_remote_calls):
            if not git_runs:
                marks["cpu_noticed"] = cpu_began
            git_runs.append((began, time.perf_counter()))
        return result

    git.reconcile = timed  # type: ignore[method-assign]

    def done() -> bool:
        if pushed:
            # This check lists every object: its time is the benchmark's, not the reconciler's.
            began, cpu_began = time.perf_counter(), time.process_time()
            moved = phase.moved(pushed[0])
            marks["checking"] = marks.get("checking", 0.0) + time.perf_counter() - began
            marks["cpu_checking"] = (marks.get("cpu_checking", 0.0) + time.process_time()
                                     - cpu_began)
            return moved
        if not all_settled(phase.env.backend):
            return False
        marks["installed"] = time.perf_counter()
        before.update(phase.revisions())
        pushed.append(repo.commit({"app.py": f"print('hello from {label}')\n"},
                                  f"change for {label}"))
        git.ls_remote_calls = git.fetch_calls = 0
        marks["built_before"] = git.archives_built
        gc.collect()
        gc.callbacks.append(collector)
        if profiler is not None:
            profiler.enable()
        return False  # the runner waits for the next poll, in virtual time

    started = time.perf_counter()
    report = run_until_settled(phase.env, [*phase.product, *phase.env.controllers], done,
                               tracker=phase.tracker, tracked=phase.product)
    ended, cpu_ended = time.perf_counter(), time.process_time()
    if collector in gc.callbacks:
        gc.callbacks.remove(collector)
    if profiler is not None:
        profiler.disable()
        assert profile is not None
        profiler.dump_stats(str(profile))
    if not report.settled or not pushed:
        raise SystemExit(f"{label}: did not settle: {report.reason}")
    after = phase.revisions()
    assert len(after) == 1 and after != before, (before, after)
    noticed = git_runs[0][0]
    figures = {
        "install_s": marks["installed"] - started,
        "sources_s": max(end for _, end in git_runs) - noticed,
        "fanout_s": ended - noticed - marks.get("checking", 0.0),
        "fanout_cpu_s": cpu_ended - marks["cpu_noticed"] - marks.get("cpu_checking", 0.0),
        "ls_remote": git.ls_remote_calls, "fetch": git.fetch_calls,
        "archives": git.archives_built - marks["built_before"],
        "git_reconciles": len(git_runs),
        "collector": collector.seconds,
    }
    print(f"{label:>9} {n:>6} {figures['install_s']:>10.2f} {figures['sources_s']:>10.2f} "
          f"{figures['fanout_s']:>11.2f} {git.ls_remote_calls:>9} {git.fetch_calls:>6} "
          f"{figures['archives']:>9} {len(git_runs):>10} "
          f"{collector.seconds / figures['fanout_s']:>12.0%} {figures['fanout_cpu_s']:>9.2f}",
          flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=1000)
    parser.add_argument("--profile", type=Path, help="write cProfile stats of the shared run")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the unshared baseline (it costs N fetches)")
    args = parser.parse_args()
    configure_logging("warning")
    n = args.n
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        served = tmp / "served"
        served.mkdir()
        repo = BareRepo(served, "app")
        repo.commit({"VERSION": "1.0.0\n", "requirements.txt": "flask\n",
                     "app.py": "print('hello')\n"}, "v1")
        for i in range(n):
            os.symlink(repo.path.name, served / f"app-{i}.git")
        with GitDaemon(served) as daemon:
            shared_url = daemon.url(repo)
            print(f"N={n}, git daemon on 127.0.0.1, load: {os.getloadavg()[0]:.2f}")
            print(f"{'sharing':>9} {'N':>6} {'install s':>10} {'sources s':>10} "
                  f"{'all moved s':>11} {'ls-remote':>9} {'fetch':>6} {'archives':>9} "
                  f"{'git recs':>10} {'in collector':>12} {'moved cpu':>9}")
            shared = measure("shared", n, repo, [shared_url] * n, tmp / "shared", args.profile)
            if args.no_baseline:
                return
            base = shared_url.rsplit("/", 1)[0]
            unshared = measure("unshared", n, repo, [f"{base}/app-{i}.git" for i in range(n)],
                               tmp / "unshared", None)
    print(f"all moved, shared vs unshared: {shared['fanout_s']:.2f}s vs "
          f"{unshared['fanout_s']:.2f}s ({unshared['fanout_s'] / shared['fanout_s']:.1f}x); "
          f"sources at the new revision: {shared['sources_s']:.2f}s vs "
          f"{unshared['sources_s']:.2f}s ({unshared['sources_s'] / shared['sources_s']:.1f}x); "
          f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
