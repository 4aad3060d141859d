"""Controllers that read the simulated cluster directly (the simulated kpack, Knative, Tekton
...) are scheduled by the reads the cluster records for them: an object none of whose reads
changed is not offered again. Where the scheduler cannot tell the reconcile's own writes from
anyone else's (no `serial` driver, no witness: these tests), one whose reconcile wrote is offered
once more; `test_runner_own_writes` covers the drivers that can tell."""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.engine.runner import _Scheduler
from reconciler.model.objects import Obj
from simulator.environment import SimulatedEnvironment
from tests.unit.test_runner_tracking import CopyConfig, configmap


class Stepper:
    """Takes one step per reconcile: counts ConfigMap `data.step` up to 3, one write each."""

    name = "stepper"

    def __init__(self, env: SimulatedEnvironment) -> None:
        self.cluster = env.cluster
        self.seen: list[str] = []

    def watches(self) -> Sequence[tuple[str, str]]:
        return [("v1", "Secret")]

    def reconcile(self, obj: Obj) -> float | None:
        name = obj["metadata"]["name"]
        self.seen.append(name)
        found = self.cluster.get("v1", "ConfigMap", "default", f"{name}-steps")
        step = int(((found or {}).get("data") or {}).get("step", "0"))
        if step < 3:
            self.cluster.apply(configmap(f"{name}-steps", {"step": str(step + 1)}))
        return None


def _rounds(env: SimulatedEnvironment, sched: _Scheduler, controllers: list[object]) -> int:
    for rounds in range(1, 20):
        before = env.revision()
        sched.run_round(controllers)  # type: ignore[arg-type]
        if env.revision() == before:
            return rounds
    raise AssertionError("no fixed point")


def test_an_untracked_controller_is_offered_only_what_changed_or_what_it_read() -> None:
    env = SimulatedEnvironment()
    env.cluster.apply(configmap("source", {"a": "1"}))
    for i in range(5):
        env.cluster.apply(configmap(f"c{i}", copy=True))
    copier = CopyConfig(env.cluster)  # reads the cluster itself, not through a tracker
    sched = _Scheduler(env.cluster, None, env.clock, recorded=frozenset([copier.name]))
    assert sched.recorder is env.cluster
    _rounds(env, sched, [copier])
    assert sorted(set(copier.seen)) == [f"c{i}" for i in range(5)]
    copier.seen.clear()
    sched.run_round([copier])
    assert copier.seen == []  # nothing changed: nothing offered, nothing read
    env.cluster.apply(configmap("source", {"a": "2"}))
    _rounds(env, sched, [copier])
    assert sorted(set(copier.seen)) == [f"c{i}" for i in range(5)]
    assert all((env.cluster.get("v1", "ConfigMap", "default", f"c{i}") or {}).get("data") ==
               {"a": "2"} for i in range(5))
    copier.seen.clear()
    env.cluster.apply(configmap("c3", {"a": "2", "b": "x"}, copy=True))
    _rounds(env, sched, [copier])
    assert set(copier.seen) == {"c3"}


def test_a_controller_that_writes_is_offered_again_until_it_writes_nothing() -> None:
    env = SimulatedEnvironment()
    env.cluster.apply({"apiVersion": "v1", "kind": "Secret",
                       "metadata": {"name": "s", "namespace": "default"}})
    stepper = Stepper(env)
    sched = _Scheduler(env.cluster, None, env.clock, recorded=frozenset([stepper.name]))
    _rounds(env, sched, [stepper])
    steps = env.cluster.get("v1", "ConfigMap", "default", "s-steps")
    assert steps is not None and steps["data"] == {"step": "3"}
    assert stepper.seen == ["s"] * 4  # three steps, then one that wrote nothing


def test_an_untracked_controller_not_named_recorded_is_offered_everything_every_round() -> None:
    env = SimulatedEnvironment()
    env.cluster.apply(configmap("source", {"a": "1"}))
    env.cluster.apply(configmap("c0", copy=True))
    copier = CopyConfig(env.cluster)
    sched = _Scheduler(env.cluster, None, env.clock)
    _rounds(env, sched, [copier])
    copier.seen.clear()
    sched.run_round([copier])
    assert copier.seen == ["c0"]
