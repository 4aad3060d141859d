"""A simulated (recorded) controller is not offered again for its own writes: its record starts
after them, as a product controller's does. A write anyone else made while it ran still offers it
again, since it may have read what changed before the change. `run_until_settled` is the only
writer while a reconcile runs; the daemon's rounds learn who wrote from the queue driver, which
is told of every write on the thread that made it."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from reconciler.daemon.locked import LockedBackend
from reconciler.daemon.manager import QueueDriver
from reconciler.engine.runner import RoundDriver, run_until_settled
from reconciler.engine.tracking import TrackingBackend
from reconciler.model.objects import Obj
from simulator.environment import SimulatedEnvironment


def configmap(name: str, data: dict[str, str], mirror: bool = False) -> Obj:
    meta: dict[str, Any] = {"name": name, "namespace": "default"}
    if mirror:
        meta["labels"] = {"mirror": "yes"}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


class Mirror:
    """Copies ConfigMap `source`'s data into each ConfigMap labelled `mirror: "yes"`, reading
    the cluster directly as the simulated controllers do; a second pass with nothing else
    changed writes nothing. `meddle`, when set, runs once between its read and its write."""

    name = "mirror"

    def __init__(self, env: SimulatedEnvironment) -> None:
        self.cluster = env.cluster
        self.seen: list[str] = []
        self.meddle: Any = None

    def watches(self) -> Sequence[tuple[str, str]]:
        return [("v1", "ConfigMap")]

    def reconcile(self, obj: Obj) -> float | None:
        meta = obj["metadata"]
        if (meta.get("labels") or {}).get("mirror") != "yes":
            return None
        self.seen.append(meta["name"])
        source = self.cluster.get("v1", "ConfigMap", "default", "source")
        data = dict((source or {}).get("data") or {})
        meddle, self.meddle = self.meddle, None
        if meddle is not None:
            meddle()
        if obj.get("data") != data:
            self.cluster.apply(configmap(meta["name"], data, mirror=True))
        return None


def world() -> tuple[SimulatedEnvironment, Mirror]:
    env = SimulatedEnvironment()
    env.cluster.apply(configmap("source", {"v": "1"}))
    env.cluster.apply(configmap("m", {}, mirror=True))
    mirror = Mirror(env)
    env.controllers = (mirror,)  # the environment's own (recorded) controllers
    return env, mirror


def data_of(env: SimulatedEnvironment, name: str) -> Any:
    return (env.cluster.get("v1", "ConfigMap", "default", name) or {}).get("data")


def test_run_until_settled_does_not_offer_a_simulated_controller_its_own_write_again() -> None:
    env, mirror = world()
    report = run_until_settled(env, [mirror], lambda: True)
    assert report.settled
    assert data_of(env, "m") == {"v": "1"}
    assert mirror.seen == ["m"]  # it wrote its copy; that write alone does not offer it again


def test_a_daemons_rounds_tell_its_own_writes_from_anothers_during_its_reconcile() -> None:
    env, mirror = world()
    locked = LockedBackend(env.cluster)
    rounds = RoundDriver(env, [mirror])
    driver = QueueDriver(locked, TrackingBackend(locked), [], env.clock, rounds=rounds)
    driver.subscribe(env.cluster)  # the daemon's wiring: the driver witnesses every write
    assert driver.run_rounds(10) is not None
    assert data_of(env, "m") == {"v": "1"}
    assert mirror.seen == ["m"]

    # Another thread changes the source after the mirror read it and before it wrote: the
    # copy it writes is stale, and it must be offered again although it wrote too.
    def meddle() -> None:
        writer = threading.Thread(
            target=lambda: env.cluster.apply(configmap("source", {"v": "3"})))
        writer.start()
        writer.join()

    mirror.seen.clear()
    mirror.meddle = meddle
    env.cluster.apply(configmap("source", {"v": "2"}))
    report = driver.run_rounds(10)
    assert report is not None and report.fixed_point
    assert mirror.seen == ["m", "m"]
    assert data_of(env, "m") == {"v": "3"}


def test_an_event_it_emits_does_not_pass_a_foreign_write_for_its_own() -> None:
    # Events move no cluster revision: counted as writes, one would balance another thread's
    # write in the same window and the stale copy would stay.
    env, mirror = world()
    locked = LockedBackend(env.cluster)
    rounds = RoundDriver(env, [mirror])
    driver = QueueDriver(locked, TrackingBackend(locked), [], env.clock, rounds=rounds)
    driver.subscribe(env.cluster)
    assert driver.run_rounds(10) is not None

    def meddle() -> None:
        mine = env.cluster.get("v1", "ConfigMap", "default", "m")
        assert mine is not None
        env.cluster.emit_event(mine, "Normal", "Mirroring", "copying the source")
        writer = threading.Thread(
            target=lambda: env.cluster.apply(configmap("source", {"v": "3"})))
        writer.start()
        writer.join()

    mirror.meddle = meddle
    env.cluster.apply(configmap("source", {"v": "2"}))
    assert driver.run_rounds(10) is not None
    assert data_of(env, "m") == {"v": "3"}


def test_without_a_witness_every_write_while_it_ran_offers_it_again() -> None:
    env, mirror = world()
    rounds = RoundDriver(env, [mirror])  # nothing says who wrote
    assert rounds.run_to_fixed_point(10).fixed_point
    assert data_of(env, "m") == {"v": "1"}
    assert mirror.seen == ["m", "m"]


class Stepper:
    """Counts ConfigMap `steps`' `data.step` up to 3, one step per reconcile, and asks for its
    next step with a requeue (`requeue=None`: it does not)."""

    name = "stepper"

    def __init__(self, env: SimulatedEnvironment, requeue: float | None) -> None:
        self.cluster, self.requeue = env.cluster, requeue
        self.seen = 0

    def watches(self) -> Sequence[tuple[str, str]]:
        return [("v1", "Secret")]

    def reconcile(self, obj: Obj) -> float | None:
        self.seen += 1
        found = self.cluster.get("v1", "ConfigMap", "default", "steps")
        step = int(((found or {}).get("data") or {}).get("step", "0"))
        if step < 3:
            self.cluster.apply(configmap("steps", {"step": str(step + 1)}))
            return self.requeue
        return None


def test_a_controller_with_more_steps_asks_for_them_with_a_requeue() -> None:
    for requeue, steps, seen in ((0.0, "3", 4), (None, "1", 1)):
        env = SimulatedEnvironment()
        env.cluster.apply({"apiVersion": "v1", "kind": "Secret",
                           "metadata": {"name": "s", "namespace": "default"}})
        stepper = Stepper(env, requeue)
        env.controllers = (stepper,)
        assert run_until_settled(env, [stepper], lambda: True).settled
        assert data_of(env, "steps") == {"step": steps}
        assert stepper.seen == seen
