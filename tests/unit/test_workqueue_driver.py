"""The daemon's queue driver over the simulated cluster: what a change enqueues (watchers and
the keys that read it, never the writer itself), and how each outcome steers the key: success,
requeue-after, Transient backoff, Waiting's own delay, Stalled until a change, a crash logged
with its traceback once. Time is the simulator's virtual clock; tests wait only for the queues
to go idle."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import structlog

from reconciler.daemon.locked import LockedBackend
from reconciler.daemon.manager import QueueDriver, QueueSettings
from reconciler.engine.tracking import TrackingBackend
from reconciler.model.errors import Stalled, Transient, Waiting
from reconciler.model.objects import Obj
from reconciler.runtime.outcome import Result
from simulator.environment import SimulatedEnvironment


class Copier:
    """Copies ConfigMap `source`'s data into each ConfigMap labelled `copy: "yes"`; raises or
    returns what `script` says for a name."""

    name = "copier"

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.seen: list[str] = []
        self.script: dict[str, list[float | Exception | None]] = {}

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
        steps = self.script.get(meta["name"])
        if steps:
            step = steps.pop(0)
            if isinstance(step, Exception):
                raise step
            return step
        return None


def configmap(name: str, data: dict[str, str] | None = None, copy: bool = False) -> Obj:
    meta: dict[str, Any] = {"name": name, "namespace": "default"}
    if copy:
        meta["labels"] = {"copy": "yes"}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data or {}}


class World:
    def __init__(self, names: Sequence[str] = ("a", "b")) -> None:
        self.env = SimulatedEnvironment()
        self.cluster = self.env.cluster
        self.cluster.apply(configmap("source", {"v": "1"}))
        for name in names:
            self.cluster.apply(configmap(name, copy=True))
        self.locked = LockedBackend(self.cluster)
        tracker = TrackingBackend(self.locked)
        self.copier = Copier(tracker)
        self.results: list[tuple[str, Result]] = []
        self.driver = QueueDriver(
            self.locked, tracker, [self.copier], self.env.clock,
            QueueSettings(concurrent=2, retry_base_seconds=5, retry_max_seconds=40),
            observe=lambda c, r, s: self.results.append((c, r)))
        self.driver.subscribe(self.cluster)
        self.driver.enqueue_all()
        self.driver.start()
        self.settle()

    def settle(self) -> None:
        assert self.driver.wait_idle(10)

    def advance(self, seconds: float) -> None:
        self.env.advance(seconds)
        self.driver.pump()
        self.settle()

    def reset(self) -> None:
        self.copier.seen.clear()
        self.results.clear()

    def close(self) -> None:
        assert self.driver.shutdown(5)


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    yield w
    w.close()


def test_each_object_is_reconciled_once_at_start_and_then_only_on_change(world: World) -> None:
    assert sorted(world.copier.seen) == ["a", "b"]
    copied = world.cluster.get("v1", "ConfigMap", "default", "a")
    assert copied is not None and copied["data"] == {"v": "1"}
    world.reset()
    world.advance(3600)  # nothing changed, nothing due: nothing runs
    assert world.copier.seen == []
    # The source both read changed: both run again (and their own copies do not wake them).
    world.cluster.apply(configmap("source", {"v": "2"}))
    world.settle()
    assert sorted(world.copier.seen) == ["a", "b"]
    assert world.driver.own_changes >= 2
    world.reset()
    # One of them changed by someone else: only that one.
    world.cluster.apply(configmap("a", {"v": "2", "extra": "x"}, copy=True))
    world.settle()
    assert world.copier.seen == ["a"]


def test_a_deleted_object_is_forgotten(world: World) -> None:
    world.cluster.delete("v1", "ConfigMap", "default", "a")
    world.settle()
    world.reset()
    world.cluster.apply(configmap("source", {"v": "3"}))
    world.settle()
    assert world.copier.seen == ["b"]


def test_requeue_after_runs_again_when_due_on_the_virtual_clock(world: World) -> None:
    world.copier.script["a"] = [30.0]
    world.cluster.apply(configmap("a", {"poke": "1"}, copy=True))
    world.settle()
    world.reset()
    world.advance(29)
    assert world.copier.seen == []
    world.advance(1)
    assert world.copier.seen == ["a"]
    assert world.results == [("copier", Result.SUCCESS)]


def test_a_transient_error_backs_off_exponentially_and_success_forgets(world: World) -> None:
    boom = Transient("Unreachable", "connection reset")
    world.copier.script["a"] = [boom, boom, boom, None]
    world.cluster.apply(configmap("a", {"poke": "1"}, copy=True))
    world.settle()
    runs = [len(world.copier.seen)]
    for step in (5, 10, 20, 40):
        world.advance(step - 0.5)
        assert len(world.copier.seen) == runs[-1], f"ran before its {step}s backoff"
        world.advance(0.5)
        runs.append(len(world.copier.seen))
    assert [r - runs[0] for r in runs[1:]] == [1, 2, 3, 3]  # succeeded at the 4th: no more
    assert [r for c, r in world.results if c == "copier"][-4:] == [
        Result.ERROR, Result.ERROR, Result.ERROR, Result.SUCCESS]
    assert world.driver.queues[0].num_requeues(("", "ConfigMap", "default", "a")) == 0


def test_waiting_retries_after_its_own_delay(world: World) -> None:
    world.copier.script["a"] = [Waiting("DependencyNotReady", "later", retry_after=12)]
    world.cluster.apply(configmap("a", {"poke": "1"}, copy=True))
    world.settle()
    world.reset()
    world.advance(11)
    assert world.copier.seen == []
    world.advance(1)
    assert world.copier.seen == ["a"]


def test_stalled_waits_for_a_change_and_never_retries_by_itself(world: World) -> None:
    world.copier.script["a"] = [Stalled("URLSchemeNotAllowed", "no")]
    world.cluster.apply(configmap("a", {"poke": "1"}, copy=True))
    world.settle()
    assert world.results[-1] == ("copier", Result.STALLED)
    world.reset()
    world.advance(10_000)
    assert world.copier.seen == []
    world.cluster.apply(configmap("source", {"v": "9"}))  # something it read changed
    world.settle()
    assert "a" in world.copier.seen


def test_a_crash_is_logged_with_its_traceback_once_and_backs_off(world: World) -> None:
    world.copier.script["a"] = [KeyError("bug"), KeyError("bug"), None]
    with structlog.testing.capture_logs() as logs:
        world.cluster.apply(configmap("a", {"poke": "1"}, copy=True))
        world.settle()
        world.advance(5)
        world.advance(10)
    crashes = [e for e in logs if e["event"].startswith("reconcile crashed")]
    assert [e["event"] for e in crashes] == ["reconcile crashed", "reconcile crashed again"]
    assert "Traceback" in crashes[0]["traceback"] and "traceback" not in crashes[1]
    assert [r for _, r in world.results][-3:] == [Result.CRASH, Result.CRASH, Result.SUCCESS]


def test_a_failing_object_does_not_starve_the_others() -> None:
    world = World(names=[f"cm-{i}" for i in range(20)])
    try:
        world.copier.script["cm-0"] = [Transient("Boom", "x")] * 50
        world.cluster.apply(configmap("cm-0", {"poke": "1"}, copy=True))
        world.settle()
        world.reset()
        world.cluster.apply(configmap("source", {"v": "2"}))
        for _ in range(5):
            world.advance(1)
        assert sorted(set(world.copier.seen)) == sorted(f"cm-{i}" for i in range(20))
        assert world.copier.seen.count("cm-0") <= 2
    finally:
        world.close()


def test_shutdown_hands_out_no_more_keys(world: World) -> None:
    world.driver.request_stop()
    world.reset()
    world.cluster.apply(configmap("source", {"v": "4"}))
    assert world.driver.shutdown(5)
    assert world.copier.seen == []
