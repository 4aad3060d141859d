"""Daemon in-process: start, first tick, tracking across ticks, state saved, failed starts
undone, and the debug document (Secrets masked)."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from pathlib import Path

import pytest

from reconciler.daemon import Daemon, DaemonStartError
from reconciler.daemon.debug import debug_document
from reconciler.loader import LoadedObject, load_text
from reconciler.observability.endpoints import EndpointsError
from reconciler.settings import DaemonSettings, ListenAddress
from reconciler.sources.server import ArtifactServerError
from simulator.environment import SimulatedEnvironment
from tests.unit.kuttl_helpers import GREETER_CHAIN, GREETER_WORKLOAD

GREETER = GREETER_CHAIN + "---" + GREETER_WORKLOAD

ANY_PORT = ListenAddress("127.0.0.1", 0)


def greeter() -> list[LoadedObject]:
    return load_text(GREETER, "greeter.yaml")


def settings(tmp_path: Path, **overrides: object) -> DaemonSettings:
    # An hour between ticks: the scheduler runs the first tick at once and the test runs the
    # others itself, so what each tick did is known.
    base: dict[str, object] = {"listen": ANY_PORT, "artifacts_listen": ANY_PORT,
                               "tick_seconds": 3600.0, "data_dir": tmp_path / "data"}
    return DaemonSettings(**{**base, **overrides})  # type: ignore[arg-type]


def wait_ready(daemon: Daemon, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not daemon.health.readiness().ok:
        assert time.monotonic() < deadline, daemon.health.readiness().reason
        time.sleep(0.02)


def test_first_tick_reconciles_and_later_ticks_skip_what_did_not_change(
    tmp_path: Path,
) -> None:
    started = time.time()
    with Daemon(greeter(), settings(tmp_path)) as daemon:
        wait_ready(daemon)
        assert daemon.env is not None and daemon.loop is not None
        assert daemon.env.clock.now() >= started  # the simulator's clock follows the real one
        get = daemon.metrics.registry.get_sample_value
        assert get("reconciler_workloads", {"ready": "True"}) == 1.0
        assert get("reconciler_objects", {"group": "carto.run", "kind": "Workload"}) == 1.0
        reconciled = get("reconciler_reconcile_total",
                         {"controller": "workload-controller", "result": "success"})
        skipped = get("reconciler_reconcile_skipped_total")
        assert reconciled is not None and skipped is not None

        daemon.loop.tick()
        assert get("reconciler_reconcile_total",
                   {"controller": "workload-controller", "result": "success"}) == reconciled
        assert (get("reconciler_reconcile_skipped_total") or 0) > skipped
        assert get("reconciler_ticks_total", {"result": "ok"}) == 2.0
    assert daemon.health.readiness().reason == "shutting down"


def test_state_is_saved_at_shutdown_and_loaded_at_start(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with Daemon(greeter(), settings(tmp_path, state=state)) as daemon:
        wait_ready(daemon)
    saved = json.loads(state.read_text())
    assert "hello-greeting" in json.dumps(saved)

    with Daemon([], settings(tmp_path, state=state)) as daemon:
        wait_ready(daemon)
        assert daemon.metrics.registry.get_sample_value(
            "reconciler_workloads", {"ready": "True"}) == 1.0


def test_operations_endpoints_serve_the_running_daemon(tmp_path: Path) -> None:
    with Daemon(greeter(), settings(tmp_path)) as daemon:
        wait_ready(daemon)
        assert daemon.operations is not None
        with urllib.request.urlopen(f"{daemon.operations.url}/debug/objects?kind=Workload",
                                    timeout=5) as resp:
            doc = json.load(resp)
        assert [o["metadata"]["name"] for o in doc["objects"]] == ["hello"]
        with urllib.request.urlopen(f"{daemon.operations.url}/readyz", timeout=5) as resp:
            assert resp.status == 200


def test_a_failed_start_stops_what_it_started(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = ListenAddress("127.0.0.1", taken.getsockname()[1])
        daemon = Daemon(greeter(), settings(tmp_path, listen=busy))
        with pytest.raises(EndpointsError, match="--listen"), daemon:
            pass
    assert daemon.artifacts is not None
    with pytest.raises(ArtifactServerError, match="not started"):
        _ = daemon.artifacts.base_url


def test_artifacts_listen_in_use_is_a_start_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = ListenAddress("127.0.0.1", taken.getsockname()[1])
        with pytest.raises(DaemonStartError, match="--artifacts-listen"), \
                Daemon(greeter(), settings(tmp_path, artifacts_listen=busy)):
            pass


def test_debug_document_masks_secret_values() -> None:
    env = SimulatedEnvironment()
    env.cluster.apply({"apiVersion": "v1", "kind": "Secret",
                       "metadata": {"name": "creds", "namespace": "default"},
                       "data": {"password": "aHVudGVyMg=="}})
    env.cluster.apply({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "plain", "namespace": "kube-system"},
                       "data": {"k": "v"}})
    kinds = [("v1", "ConfigMap"), ("v1", "Secret")]
    doc = debug_document(env.cluster, kinds, {})
    by_name = {o["metadata"]["name"]: o for o in doc["objects"]}
    assert by_name["creds"]["data"] == {"password": "++++++++"}
    assert by_name["plain"]["data"] == {"k": "v"}
    assert "aHVudGVyMg" not in json.dumps(doc)
    only = debug_document(env.cluster, kinds, {"kind": "ConfigMap", "namespace": "default"})
    assert only["objects"] == []


class _RealClusterLike(SimulatedEnvironment):
    """An environment that, like a real cluster, keeps no state files."""

    stateful = False
    virtual_clock = False


def test_time_scale_refused_at_start_for_an_environment_on_real_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import reconciler.daemon.service as service

    monkeypatch.setattr(service, "load_environment",
                        lambda name, kubernetes=None: _RealClusterLike())
    daemon = Daemon(greeter(), settings(tmp_path, time_scale=20.0))
    with pytest.raises(DaemonStartError, match=r"runs on real time.*run without --time-scale"), \
            daemon:
        pass


def test_state_file_refused_at_start_for_an_environment_without_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import reconciler.daemon.service as service

    monkeypatch.setattr(service, "load_environment",
                        lambda name, kubernetes=None: _RealClusterLike())
    daemon = Daemon(greeter(), settings(tmp_path, state=tmp_path / "state.json"))
    with pytest.raises(DaemonStartError, match="run without --state"), daemon:
        pass
    assert not (tmp_path / "state.json").exists()
