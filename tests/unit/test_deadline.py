"""The per-reconcile deadline and the stop request, in the runner, the controllers and the daemon.

Real but tiny times: a reconcile sleeps past a deadline of a few hundredths of a second. No
elapsed time is asserted except as an upper bound that only a hang would break.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import pytest

import reconciler.chains.realizer as realizer_module
from reconciler.chains.render import render
from reconciler.daemon import Daemon
from reconciler.engine.runner import Environment, RoundDriver, backoff, run_until_settled
from reconciler.loader import load_paths, load_text
from reconciler.model.errors import Transient
from reconciler.model.limits import DeadlineExceeded, Limits, check_deadline
from reconciler.model.objects import Obj, name_of
from reconciler.runtime.controller import RECONCILE_TIMEOUT, ReconcileFailure, Resync
from reconciler.settings import DaemonSettings, ListenAddress, SimulateSettings
from reconciler.simulation import simulate
from simulator.cluster import InMemoryCluster
from simulator.environment import SimulatedEnvironment
from tests.conftest import GitRepo
from tests.manifests import git_kustomization
from tests.unit.kuttl_helpers import GREETER_CHAIN, GREETER_WORKLOAD

TINY = Limits(reconcile_seconds=0.05)


class Sleeper:
    """Sleeps in its reconcile of the ConfigMaps named in `slow`; records every call."""

    def __init__(self, slow: set[str], checks: bool, seconds: float = 0.1) -> None:
        self.name = "sleeper"
        self.slow, self.checks, self.seconds = slow, checks, seconds
        self.calls: list[str] = []

    def watches(self) -> Sequence[tuple[str, str]]:
        return [("v1", "ConfigMap")]

    def reconcile(self, obj: Obj) -> float | None:
        self.calls.append(name_of(obj))
        if name_of(obj) in self.slow:
            time.sleep(self.seconds)
            if self.checks:
                check_deadline("sleeping")
        return None


def _env(*names: str) -> Environment:
    env = SimulatedEnvironment()
    for name in names:
        env.cluster.apply({"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": name, "namespace": "default"}})
    return cast(Environment, env)


@pytest.mark.parametrize("checks", [True, False], ids=["checks-its-deadline", "never-checks"])
def test_a_reconcile_past_its_deadline_is_a_failure_retried_with_backoff(checks: bool) -> None:
    env = _env("fast", "slow")
    sleeper = Sleeper({"slow"}, checks)
    started = time.monotonic()
    report = run_until_settled(env, [sleeper], lambda: True, budget_seconds=60, limits=TINY)
    assert time.monotonic() - started < 10  # bounded: no hang
    assert not report.settled  # a failed reconcile waiting for its retry is in flight
    assert "budget" in report.reason
    assert len(report.failing) == 1 and "ConfigMap default/slow" in report.failing[0]
    assert RECONCILE_TIMEOUT in report.failing[0]
    assert not report.crashed
    # Retried with backoff: 0, 5, 15 and 35 s into a 60 s budget. The fast one, reconciled in
    # the same rounds (an untracked controller is offered every object), never failed.
    assert sleeper.calls.count("slow") == 4
    assert sleeper.calls.count("fast") >= 1


def test_the_deadline_is_per_reconcile_not_per_round() -> None:
    env = _env(*(f"cm-{i}" for i in range(6)))
    # Each sleeps a little under the deadline; a round of six takes longer than one deadline.
    sleeper = Sleeper({f"cm-{i}" for i in range(6)}, checks=True, seconds=0.02)
    report = run_until_settled(env, [sleeper], lambda: True, budget_seconds=60,
                               limits=Limits(reconcile_seconds=0.5))
    assert report.settled and not report.failing


def test_backoff_doubles_up_to_a_cap() -> None:
    assert [backoff(n) for n in (1, 2, 3, 4)] == [5.0, 10.0, 20.0, 40.0]
    assert backoff(100) == 300.0


def test_failure_classes() -> None:
    timeout = ReconcileFailure.of(DeadlineExceeded(0.05, "rendering"))
    assert (timeout.status, timeout.reason, timeout.crashed) == ("False", RECONCILE_TIMEOUT,
                                                                   False)
    assert "0.05s" in timeout.message and "rendering" in timeout.message
    transient = ReconcileFailure.of(Transient("SourceUnavailable", "connection reset"))
    assert (transient.reason, transient.message) == ("SourceUnavailable", "connection reset")
    crash = ReconcileFailure.of(ZeroDivisionError("division by zero"))
    assert crash.crashed and crash.reason == "ReconcileError"
    assert "ZeroDivisionError: division by zero" in crash.message
    assert isinstance(Resync(3.0), float)


def test_a_workload_whose_render_runs_past_the_deadline_is_not_ready(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_render = render

    def slow_render(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.1)
        check_deadline("rendering")  # as the rendering code does at its loop heads
        return real_render(*args, **kwargs)

    monkeypatch.setattr(realizer_module, "render", slow_render)
    (tmp_path / "in.yaml").write_text(GREETER_CHAIN + "---" + GREETER_WORKLOAD)
    result = simulate(load_paths([tmp_path / "in.yaml"], {}),
                      settings=SimulateSettings(budget_seconds=30), limits=TINY)
    ready = next(c for c in result.workloads[0]["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", RECONCILE_TIMEOUT)
    assert "deadline" in ready["message"] and "rendering" in ready["message"]
    assert not result.ready and not result.report.settled


def test_a_stop_request_ends_the_round_after_the_current_reconcile() -> None:
    env = _env("a", "b", "c")
    driver: RoundDriver

    class StopsOnFirst(Sleeper):
        def reconcile(self, obj: Obj) -> float | None:
            self.calls.append(name_of(obj))
            driver.request_stop()  # SIGTERM arrives while this reconcile runs
            return None

    controller = StopsOnFirst(set(), checks=False)
    driver = RoundDriver(env, [controller])
    report = driver.run_to_fixed_point(100)
    assert report.stopped and not report.fixed_point
    assert len(controller.calls) == 1  # it finished; no other reconcile started
    assert driver.run_to_fixed_point(100).rounds == 0


def test_a_daemon_asked_to_stop_starts_no_more_reconciles(tmp_path: Path) -> None:
    settings = DaemonSettings(listen=ListenAddress("127.0.0.1", 0),
                              artifacts_listen=ListenAddress("127.0.0.1", 0),
                              tick_seconds=3600.0, data_dir=tmp_path / "data")
    objects = load_text(GREETER_CHAIN + "---" + GREETER_WORKLOAD, "greeter.yaml")
    started = time.monotonic()
    with Daemon(objects, settings, limits=TINY) as daemon:
        assert daemon.loop is not None
        deadline = time.monotonic() + 10
        while daemon.loop.ticks < 1:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        before = daemon.loop.driver.reconciles
        daemon.loop.request_stop()
        assert daemon.loop.stopping
        # Something changed, but a stopping daemon reconciles nothing more.
        assert daemon.env is not None
        daemon.env.backend.apply({"apiVersion": "v1", "kind": "ConfigMap",
                                  "metadata": {"name": "late", "namespace": "default"}})
        daemon.loop.tick()
        assert daemon.loop.driver.reconciles == before
    assert time.monotonic() - started < 30  # shutdown did not hang


def test_a_large_apply_stops_between_objects_at_the_deadline(
    make_repo: Callable[..., GitRepo], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {f"deploy/cm-{i}.yaml": (f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                                     f"  name: cm-{i}\ndata:\n  a: \"1\"\n") for i in range(20)}
    repo = make_repo("config", files)
    (tmp_path / "ks.yaml").write_text(git_kustomization(repo.url))
    real_apply = InMemoryCluster.apply

    def slow_apply(self: InMemoryCluster, obj: Obj, *args: Any, **kwargs: Any) -> Obj:
        if obj.get("kind") == "ConfigMap":
            time.sleep(0.1)
        return real_apply(self, obj, *args, **kwargs)

    monkeypatch.setattr(InMemoryCluster, "apply", slow_apply)
    # A deadline of five applies: what comes before the first apply (fetch, build, plan) has
    # half a second even on a loaded machine, and the three attempts of the 20 s budget (at
    # 0, 5 and 15 s) apply at most 15 of the 20.
    result = simulate(load_paths([tmp_path / "ks.yaml"], {}),
                      settings=SimulateSettings(budget_seconds=20),
                      limits=Limits(reconcile_seconds=0.5))
    ks = next(o for o in result.objects if o["kind"] == "Kustomization")
    ready = next(c for c in ks["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", RECONCILE_TIMEOUT)
    assert "applying ConfigMap" in ready["message"]
    assert "lastAppliedRevision" not in ks["status"]
    applied = [o for o in result.objects if o["kind"] == "ConfigMap"
               and o["metadata"]["name"].startswith("cm-")]
    assert 0 < len(applied) < 20  # cut short between objects
    # What was applied before the deadline is in the inventory: never forgotten.
    inventory = {e["id"] for e in ks["status"]["inventory"]["entries"]}
    assert all(any(o["metadata"]["name"] in i for i in inventory) for o in applied)
