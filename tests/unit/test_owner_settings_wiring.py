"""The tree's `owners` group reaches both owner controllers, through the wirings that build
them (the daemon's own, from a settings file: tests/chart)."""

from __future__ import annotations

from pathlib import Path

from reconciler.daemon import Daemon
from reconciler.daemon.inprocess import InProcessControllers
from reconciler.engine.owner import OwnerController
from reconciler.engine.wiring import product_controllers
from reconciler.runtime.clock import SystemClock
from reconciler.settings import DaemonSettings, ListenAddress, OwnerSettings, SourceSettings
from reconciler.settings.tree import resolve


def _owners(controllers: object) -> list[OwnerController]:
    assert isinstance(controllers, list)
    return [c for c in controllers if isinstance(c, OwnerController)]


def test_product_controllers_hand_the_group_to_both_owner_controllers(tmp_path: Path) -> None:
    sources = SourceSettings(artifact_root=tmp_path / "a", workdir=tmp_path / "g",
                             artifact_base_url="http://unused", allow_local_urls=False)
    settings = resolve(None, {"RECONCILER_OWNERS_FAST_PATH": "false",
                              "RECONCILER_OWNERS_FAST_PATH_MAX_AGE_SECONDS": "30"}, {})
    env_from = InProcessControllers([], product=False)
    with env_from:
        assert env_from.env is not None
        backend = env_from.env.backend
        owners = _owners(product_controllers(backend, SystemClock(), sources,
                                             owners=settings.settings.owners))
        defaults = _owners(product_controllers(backend, SystemClock(), sources))
    assert [o.kind.kind for o in owners] == ["Workload", "Deliverable"]
    assert [(o.fast_path, o.fast_path_max_age) for o in owners] == [(False, 30.0)] * 2
    assert [(o.fast_path, o.fast_path_max_age) for o in defaults] == [(True, 600.0)] * 2


def test_in_process_controllers_pass_the_group_to_the_queue_driver() -> None:
    with InProcessControllers([], owners=OwnerSettings(fast_path_max_age_seconds=5)) as wired:
        owners = _owners(wired.controllers)
    assert sorted(o.kind.kind for o in owners) == ["Deliverable", "Workload"]
    assert {(o.fast_path, o.fast_path_max_age) for o in owners} == {(True, 5.0)}


def test_the_daemon_passes_the_group_to_its_owner_controllers(tmp_path: Path) -> None:
    any_port = ListenAddress("127.0.0.1", 0)
    daemon_settings = DaemonSettings(listen=any_port, artifacts_listen=any_port,
                                     tick_seconds=3600.0, data_dir=tmp_path / "data")
    owners = OwnerSettings(fast_path=False, fast_path_max_age_seconds=7)
    with Daemon([], daemon_settings, owners=owners) as daemon:
        wired = _owners(daemon.controllers)
    assert sorted(o.kind.kind for o in wired) == ["Deliverable", "Workload"]
    assert {(o.fast_path, o.fast_path_max_age) for o in wired} == {(False, 7.0)}


def test_the_daemons_limits_reach_the_kustomization_controller(tmp_path: Path) -> None:
    from reconciler.engine.kustomization import KustomizationReconciler
    from reconciler.model.limits import Limits

    any_port = ListenAddress("127.0.0.1", 0)
    daemon_settings = DaemonSettings(listen=any_port, artifacts_listen=any_port,
                                     tick_seconds=3600.0, data_dir=tmp_path / "data")
    limits = Limits(artifact_bytes=12345)
    with Daemon([], daemon_settings, limits=limits) as daemon:
        found = [c for c in daemon.controllers if isinstance(c, KustomizationReconciler)]
    assert [c.limits.artifact_bytes for c in found] == [12345]
