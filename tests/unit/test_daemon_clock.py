"""ClockFollower: the environment's clock follows real time, scaled, and never goes back."""

from __future__ import annotations

import pytest

from reconciler.daemon.clock import ClockFollower
from simulator.environment import SimulatedEnvironment


class Ticking:
    """A hand-moved time source, so the test controls what 'real time' passed."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("scale", "real_steps", "expected"), [
    (1.0, [1.0, 0.5], 1.5),
    (20.0, [0.2, 0.2], 8.0),
    (1.0, [0.0], 0.0),
])
def test_catch_up_advances_by_scaled_real_time(
    scale: float, real_steps: list[float], expected: float
) -> None:
    env = SimulatedEnvironment()
    monotonic = Ticking(100.0)
    follower = ClockFollower(env, scale, monotonic=monotonic, wall=lambda: 0.0)
    start = env.clock.now()
    for step in real_steps:
        monotonic.now += step
        follower.catch_up()
    assert env.clock.now() - start == pytest.approx(expected)


def test_align_brings_a_clock_behind_up_to_the_wall_clock() -> None:
    env = SimulatedEnvironment()
    wall = env.clock.now() + 86_400
    ClockFollower(env, wall=lambda: wall).align()
    assert env.clock.now() == wall


def test_align_leaves_a_clock_ahead_alone() -> None:
    env = SimulatedEnvironment()
    ahead = env.clock.now()
    ClockFollower(env, wall=lambda: ahead - 60).align()
    assert env.clock.now() == ahead


def test_align_restarts_the_real_time_count() -> None:
    env = SimulatedEnvironment()
    monotonic = Ticking(0.0)
    follower = ClockFollower(env, monotonic=monotonic, wall=lambda: 0.0)
    monotonic.now = 30.0  # startup work before the first tick is not environment time
    follower.align()
    before = env.clock.now()
    monotonic.now += 1.0
    assert follower.catch_up() == 1.0
    assert env.clock.now() == before + 1.0


def test_scale_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        ClockFollower(SimulatedEnvironment(), 0.0)
