"""HealthState: live unless a tick is stuck; ready after the first full tick, until stopping."""

from __future__ import annotations

from reconciler.observability.health import HealthState


class Ticking:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_readiness_follows_the_first_full_tick_and_shutdown() -> None:
    health = HealthState(stall_after=60)
    assert not health.readiness().ok
    health.tick_started()
    health.tick_finished("BackendError: boom")
    verdict = health.readiness()
    assert not verdict.ok
    assert "last tick failed: BackendError: boom" in verdict.reason
    health.tick_started()
    health.tick_finished()
    assert health.readiness().ok
    health.tick_started()
    health.tick_finished("BackendError: again")
    assert health.readiness().ok  # ready once; a later failed tick is a metric, not a restart
    health.stopping()
    assert health.readiness().reason == "shutting down"


def test_liveness_fails_only_for_a_tick_running_past_the_limit() -> None:
    clock = Ticking()
    health = HealthState(stall_after=60, now=clock)
    assert health.liveness().ok
    health.tick_started()
    clock.now = 60
    assert health.liveness().ok
    clock.now = 61
    verdict = health.liveness()
    assert not verdict.ok
    assert "running for 61s (limit 60s)" in verdict.reason
    health.tick_finished()
    clock.now = 1000
    assert health.liveness().ok
