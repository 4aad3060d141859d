"""`reconciler run` driven by its work queues: at rest nothing is reconciled, a change
reconciles the object that changed (and what read it), and `--concurrent` is a flag."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler.daemon import Daemon
from reconciler.loader import load_text
from reconciler.settings import DaemonSettings, ListenAddress
from tests.conftest import CliResult
from tests.unit.kuttl_helpers import GREETER_CHAIN, GREETER_WORKLOAD

pytestmark = pytest.mark.e2e

ANY = ListenAddress("127.0.0.1", 0)


def workloads(n: int) -> str:
    return "---".join(GREETER_WORKLOAD.replace("name: hello", f"name: hello-{i}")
                      for i in range(n))


def wait(what: str, probe: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def reconciles(daemon: Daemon, controller: str) -> float:
    return sum(daemon.metrics.registry.get_sample_value(
        "reconciler_reconcile_total", {"controller": controller, "result": r}) or 0.0
        for r in ("success", "requeue", "error", "stalled", "waiting", "crash"))


def test_at_rest_nothing_is_reconciled_and_a_change_reconciles_only_what_it_touches(
    tmp_path: Path,
) -> None:
    objects = load_text(GREETER_CHAIN + "---" + workloads(3), "greeter.yaml")
    settings = DaemonSettings(listen=ANY, artifacts_listen=ANY, tick_seconds=0.05,
                              data_dir=tmp_path / "data", concurrent=2)
    with Daemon(objects, settings) as daemon:
        get = daemon.metrics.registry.get_sample_value
        wait("three Ready workloads", lambda: get("reconciler_workloads", {"ready": "True"}) == 3)
        assert daemon.loop is not None and daemon.env is not None
        loop = daemon.loop
        assert loop.driver.wait_idle(10)
        settled = reconciles(daemon, "workload-controller")
        ticks = loop.ticks
        wait("ten ticks", lambda: loop.ticks >= ticks + 10)
        assert reconciles(daemon, "workload-controller") == settled  # at rest: none

        # One workload changes: it is reconciled, the others are not.
        def touch() -> Any:
            backend = daemon.env.backend if daemon.env is not None else None
            assert backend is not None
            live = backend.get("carto.run/v1alpha1", "Workload", "default", "hello-1")
            assert live is not None
            live["metadata"].setdefault("labels", {})["touched"] = "yes"
            return backend.apply({k: live[k] for k in ("apiVersion", "kind", "metadata",
                                                       "spec")}, field_manager="tester")

        loop.read(touch)
        wait("the touched workload reconciled",
             lambda: reconciles(daemon, "workload-controller") > settled)
        assert loop.driver.wait_idle(10)
        assert reconciles(daemon, "workload-controller") - settled <= 2  # it, and its own write
        adds = get("workqueue_adds_total", {"name": "workload-controller"}) or 0
        ticks = loop.ticks
        wait("ten more ticks", lambda: loop.ticks >= ticks + 10)
        assert get("workqueue_adds_total", {"name": "workload-controller"}) == adds


def test_concurrent_is_a_flag_of_run(cli: Callable[..., CliResult]) -> None:
    assert "--concurrent" in cli("run", "--help").stdout
    refused = cli("run", "nothing.yaml", "--concurrent", "0")
    assert refused.code == 2 and "--concurrent" in refused.stderr
