"""A list by labels depends on its selector, not on its whole kind: a change of an object that
carried none of the selected labels before or after leaves the reader alone. Before, every
Build change re-offered every kpack Image that listed Builds by label in its namespace, which
made a first install of N workloads cost N^2 (issue 14)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reconciler.daemon.locked import LockedBackend
from reconciler.daemon.manager import QueueDriver, QueueSettings
from reconciler.engine.runner import _Scheduler
from reconciler.engine.tracking import DependencyIndex, TrackingBackend
from reconciler.model.labelsets import label_pairs, selector_pairs, selector_text
from reconciler.model.objects import Obj
from simulator.environment import SimulatedEnvironment


def cm(name: str, labels: dict[str, str], data: dict[str, str] | None = None) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default", "labels": labels},
            "data": data or {}}


def test_selector_text_is_canonical_and_round_trips() -> None:
    assert selector_text({"b": "2", "a": "1"}) == "a=1,b=2"
    assert selector_pairs("a=1,b=2") == {("a", "1"), ("b", "2")}
    assert selector_pairs("a=") == {("a", "")}
    assert label_pairs({"a": "1"}, None, {"a": "2"}) == {("a", "1"), ("a", "2")}


def test_index_finds_a_selector_only_from_a_change_that_carried_all_its_labels() -> None:
    index = DependencyIndex()
    index.record("one", [("labels", "", "ConfigMap", "default", "app=one,tier=web")])
    index.record("all", [("kind", "", "ConfigMap", "default", "")])
    index.record("anywhere", [("labels", "", "ConfigMap", "*", "app=one")])
    both = frozenset({("app", "one"), ("tier", "web"), ("x", "y")})
    assert index.readers_of_change("", "ConfigMap", "default", "c", both) == {
        "one", "all", "anywhere"}
    assert index.readers_of_change("", "ConfigMap", "default", "c",
                                   frozenset({("app", "one")})) == {"all", "anywhere"}
    assert index.readers_of_change("", "ConfigMap", "default", "c",
                                   frozenset({("app", "two")})) == {"all"}
    assert index.readers_of_change("", "ConfigMap", "other", "c", both) == {"anywhere"}
    assert index.readers_of_change("", "Secret", "default", "c", both) == set()
    # Labels not known (a backend whose changes carry none): every selector of the kind.
    assert index.readers_of_change("", "ConfigMap", "default", "c", None) == {
        "one", "all", "anywhere"}
    index.forget("one")
    index.forget("anywhere")
    assert index.readers_of_change("", "ConfigMap", "default", "c", both) == {"all"}
    assert index._selectors == {}


def test_the_cluster_reports_labels_carried_before_and_after_each_change() -> None:
    env = SimulatedEnvironment()
    cluster = env.cluster
    cluster.apply(cm("a", {"app": "one"}))
    start = cluster.revision
    relabelled = cm("a", {"app": "two"})
    cluster.apply(relabelled)
    cluster.apply(cm("b", {"app": "three"}))
    cluster.delete("v1", "ConfigMap", "default", "b")
    changes = dict(cluster.labelled_changes_since(start) or [])
    assert changes[("", "ConfigMap", "default", "a")] == frozenset({("app", "one"),
                                                                   ("app", "two")})
    assert changes[("", "ConfigMap", "default", "b")] == frozenset({("app", "three")})


class Follower:
    """Reads the cluster directly: each Secret lists the ConfigMaps labelled with its name."""

    name = "follower"

    def __init__(self, env: SimulatedEnvironment) -> None:
        self.cluster = env.cluster
        self.seen: list[str] = []

    def watches(self) -> Sequence[tuple[str, str]]:
        return [("v1", "Secret")]

    def reconcile(self, obj: Obj) -> float | None:
        name = obj["metadata"]["name"]
        self.seen.append(name)
        self.cluster.list("v1", "ConfigMap", "default", {"owner": name})
        return None


def test_a_round_offers_only_the_readers_whose_selector_a_change_matched() -> None:
    env = SimulatedEnvironment()
    for i in range(5):
        env.cluster.apply({"apiVersion": "v1", "kind": "Secret",
                           "metadata": {"name": f"s{i}", "namespace": "default"}})
        env.cluster.apply(cm(f"c{i}", {"owner": f"s{i}"}))
    follower = Follower(env)
    sched = _Scheduler(env.cluster, None, env.clock, recorded=frozenset([follower.name]))
    sched.run_round([follower])
    assert sorted(follower.seen) == [f"s{i}" for i in range(5)]
    follower.seen.clear()
    sched.run_round([follower])
    assert follower.seen == []
    env.cluster.apply(cm("c2", {"owner": "s2"}, {"x": "1"}))
    sched.run_round([follower])
    assert follower.seen == ["s2"]
    # Relabelled from s3 to s4: both the reader that saw it go and the one that sees it come.
    follower.seen.clear()
    env.cluster.apply(cm("c3", {"owner": "s4"}))
    sched.run_round([follower])
    assert sorted(follower.seen) == ["s3", "s4"]
    # A new object no selector matches: nobody.
    follower.seen.clear()
    env.cluster.apply(cm("stray", {"owner": "nobody"}))
    sched.run_round([follower])
    assert follower.seen == []
    # Deleted: the reader that listed it.
    env.cluster.delete("v1", "ConfigMap", "default", "c1")
    sched.run_round([follower])
    assert follower.seen == ["s1"]


class TrackedFollower(Follower):
    """`Follower` through the daemon's tracker."""

    def __init__(self, env: SimulatedEnvironment, backend: Any) -> None:
        super().__init__(env)
        self.cluster = backend


def test_the_daemon_queue_enqueues_only_the_readers_a_labelled_change_matched() -> None:
    env = SimulatedEnvironment()
    for i in range(4):
        env.cluster.apply({"apiVersion": "v1", "kind": "Secret",
                           "metadata": {"name": f"s{i}", "namespace": "default"}})
        env.cluster.apply(cm(f"c{i}", {"owner": f"s{i}"}))
    locked = LockedBackend(env.cluster)
    tracker = TrackingBackend(locked)
    follower = TrackedFollower(env, tracker)
    driver = QueueDriver(locked, tracker, [follower], env.clock, QueueSettings(concurrent=2))
    driver.subscribe(env.cluster)
    driver.enqueue_all()
    driver.start()
    try:
        assert driver.wait_idle(10)
        assert sorted(follower.seen) == [f"s{i}" for i in range(4)]
        follower.seen.clear()
        env.cluster.apply(cm("c2", {"owner": "s2"}, {"x": "1"}))
        assert driver.wait_idle(10)
        assert follower.seen == ["s2"]
        follower.seen.clear()
        env.cluster.apply(cm("c0", {"owner": "s1"}))  # relabelled: the old and new reader
        assert driver.wait_idle(10)
        assert sorted(follower.seen) == ["s0", "s1"]
        follower.seen.clear()
        # A change whose labels are not known (a key-only feed): every selector of the kind.
        driver.changed("", "ConfigMap", "default", "c3")
        assert driver.wait_idle(10)
        assert sorted(follower.seen) == [f"s{i}" for i in range(4)]
    finally:
        assert driver.shutdown(5)
