"""The runner reconciles an object again only when it or a read changed, or it is due."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from reconciler.engine.runner import _Scheduler, run_until_settled
from reconciler.engine.tracking import TrackingBackend
from reconciler.model.objects import Obj
from simulator.environment import SimulatedEnvironment


class CopyConfig:
    """Copies ConfigMap `source`'s data into each watched ConfigMap labelled `copy: "yes"`."""

    name = "copier"

    def __init__(self, backend: Any, requeue: float | None = None) -> None:
        self.backend = backend
        self.requeue = requeue
        self.seen: list[str] = []

    def watches(self) -> Sequence[tuple[str, str]]:
        return [("v1", "ConfigMap")]

    def reconcile(self, obj: Obj) -> float | None:
        meta = obj["metadata"]
        if (meta.get("labels") or {}).get("copy") != "yes":
            return None
        self.seen.append(meta["name"])
        source = self.backend.get("v1", "ConfigMap", "default", "source")
        data = dict((source or {}).get("data") or {})
        if obj.get("data") != data:
            self.backend.apply({"apiVersion": "v1", "kind": "ConfigMap",
                                "metadata": {"name": meta["name"], "namespace": "default",
                                             "labels": {"copy": "yes"}},
                                "data": data})
        return self.requeue


def configmap(name: str, data: dict[str, str] | None = None, copy: bool = False) -> Obj:
    meta: dict[str, Any] = {"name": name, "namespace": "default"}
    if copy:
        meta["labels"] = {"copy": "yes"}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data or {}}


def scheduler(env: SimulatedEnvironment, tracker: TrackingBackend,
              copier: CopyConfig) -> _Scheduler:
    return _Scheduler(env.cluster, tracker, env.clock, frozenset([copier.name]))


def rounds_to_fixed_point(env: SimulatedEnvironment, sched: _Scheduler,
                          copier: CopyConfig) -> None:
    for _ in range(10):
        before = env.revision()
        sched.run_round([copier])
        if env.revision() == before:
            return
    raise AssertionError("no fixed point")


@pytest.fixture
def env() -> SimulatedEnvironment:
    return SimulatedEnvironment()


def test_unchanged_objects_are_not_reconciled_again(env: SimulatedEnvironment) -> None:
    tracker = TrackingBackend(env.cluster)
    copier = CopyConfig(tracker)
    sched = scheduler(env, tracker, copier)
    env.cluster.apply(configmap("source", {"a": "1"}))
    env.cluster.apply(configmap("one", copy=True))
    env.cluster.apply(configmap("two", copy=True))
    rounds_to_fixed_point(env, sched, copier)
    assert sorted(set(copier.seen)) == ["one", "two"]

    copier.seen.clear()
    sched.run_round([copier])
    assert copier.seen == []
    assert sched.skipped >= 3


@pytest.mark.parametrize("full", [False, True], ids=["changed-round", "full-round"])
def test_a_change_to_something_read_reconciles_the_readers(env: SimulatedEnvironment,
                                                           full: bool) -> None:
    """A changed round (what the change log says changed) and a full round (the first, and any
    after the change log stopped reaching back: each object's record and the reads its last
    reconcile made decide) both offer again what read a change, and only that."""
    tracker = TrackingBackend(env.cluster)
    copier = CopyConfig(tracker)
    sched = scheduler(env, tracker, copier)
    env.cluster.apply(configmap("source", {"a": "1"}))
    env.cluster.apply(configmap("one", copy=True))
    env.cluster.apply(configmap("other"))
    rounds_to_fixed_point(env, sched, copier)

    def one_round() -> None:
        if full:
            sched._seen = None  # as when the change log no longer reaches back
        sched.run_round([copier])

    copier.seen.clear()
    env.cluster.apply(configmap("other", {"unrelated": "change"}))
    one_round()
    assert copier.seen == []

    env.cluster.apply(configmap("source", {"a": "2"}))
    one_round()
    assert copier.seen == ["one"]  # it read `source`, which changed
    assert env.cluster.get("v1", "ConfigMap", "default", "one")["data"] == {"a": "2"}  # type: ignore[index]


def test_untracked_controllers_run_every_round(env: SimulatedEnvironment) -> None:
    tracker = TrackingBackend(env.cluster)
    copier = CopyConfig(tracker)
    env.cluster.apply(configmap("source", {"a": "1"}))
    env.cluster.apply(configmap("one", copy=True))
    run_until_settled(env, [copier], lambda: True, budget_seconds=0)
    copier.seen.clear()
    run_until_settled(env, [copier], lambda: True, budget_seconds=0)
    assert copier.seen == ["one"]


def test_a_due_wakeup_reconciles_without_any_change(env: SimulatedEnvironment) -> None:
    tracker = TrackingBackend(env.cluster)
    copier = CopyConfig(tracker, requeue=30.0)
    env.cluster.apply(configmap("source", {"a": "1"}))
    env.cluster.apply(configmap("one", copy=True))
    start = env.clock.now()
    run_until_settled(env, [copier], lambda: len(copier.seen) >= 3, budget_seconds=60,
                      tracker=tracker, tracked=[copier])
    # Reconciled when new (its own write does not make it dirty again), then only when the
    # wake-up it asked for is due: at 30 s and at 60 s of virtual time.
    assert copier.seen == ["one", "one", "one"]
    assert env.clock.now() - start == 60.0


def test_records_of_deleted_objects_are_forgotten(env: SimulatedEnvironment) -> None:
    tracker = TrackingBackend(env.cluster)
    copier = CopyConfig(tracker, requeue=30.0)
    sched = scheduler(env, tracker, copier)
    env.cluster.apply(configmap("source", {"a": "1"}))
    env.cluster.apply(configmap("one", copy=True))
    rounds_to_fixed_point(env, sched, copier)
    assert any(key[-1] == "one" for key in sched.records)
    env.cluster.delete("v1", "ConfigMap", "default", "one")
    sched.run_round([copier])
    assert not any(key[-1] == "one" for key in sched.records)
    assert sched.next_wakeup() is None
