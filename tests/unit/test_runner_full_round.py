"""A full round (the first, and any after the change log stopped reaching back) decides from
each object's record and the reads its last reconcile made (kept in the scheduler's index)
whether to offer it again: a change to something it read does; an unrelated change does not."""

from __future__ import annotations

from reconciler.engine.runner import _Scheduler
from reconciler.engine.tracking import TrackingBackend
from simulator.environment import SimulatedEnvironment
from tests.unit.test_runner_tracking import CopyConfig, configmap, rounds_to_fixed_point, scheduler


def full_round(sched: _Scheduler, copier: CopyConfig) -> None:
    sched._seen = None  # as when the change log no longer reaches back
    sched.run_round([copier])


def test_a_full_round_offers_again_only_what_read_a_change() -> None:
    env = SimulatedEnvironment()
    tracker = TrackingBackend(env.cluster)
    copier = CopyConfig(tracker)
    sched = scheduler(env, tracker, copier)
    env.cluster.apply(configmap("source", {"a": "1"}))
    env.cluster.apply(configmap("one", copy=True))
    env.cluster.apply(configmap("other"))
    rounds_to_fixed_point(env, sched, copier)

    copier.seen.clear()
    env.cluster.apply(configmap("other", {"unrelated": "change"}))
    full_round(sched, copier)
    assert copier.seen == []

    env.cluster.apply(configmap("source", {"a": "2"}))
    full_round(sched, copier)
    assert copier.seen == ["one"]  # it read `source`, which changed
    assert env.cluster.get("v1", "ConfigMap", "default", "one")["data"] == {"a": "2"}  # type: ignore[index]
