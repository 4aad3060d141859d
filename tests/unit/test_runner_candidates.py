"""After the first round the runner offers only candidates: objects that changed, objects whose
last reconcile read a changed object (by name, by listing its kind, or by a selector the object
matched), and wake-ups due. A candidate is offered when what made it one changed after its last
reconcile. A list by labels counts only the changes of objects its selector matched: a change
of another object of the kind, even one made after the reader's last reconcile, leaves it
alone (it was judged by the kind's last change before, and offered again for nothing)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reconciler.engine.runner import _Scheduler
from reconciler.engine.tracking import TrackingBackend
from reconciler.model.objects import Obj
from simulator.environment import SimulatedEnvironment


def cm(name: str, labels: dict[str, str], data: dict[str, str] | None = None) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default", "labels": labels},
            "data": data or {}}


class Follower:
    """For each ConfigMap labelled `follow: "yes"`, writes into it the data of the ConfigMaps
    labelled `owner: <its name>` (a list by labels)."""

    name = "follower"

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.seen: list[str] = []

    def watches(self) -> Sequence[tuple[str, str]]:
        return [("v1", "ConfigMap")]

    def reconcile(self, obj: Obj) -> float | None:
        meta = obj["metadata"]
        if (meta.get("labels") or {}).get("follow") != "yes":
            return None
        self.seen.append(meta["name"])
        data: dict[str, str] = {}
        for owned in self.backend.list("v1", "ConfigMap", "default",
                                       labels={"owner": meta["name"]}):
            data.update(owned.get("data") or {})
        if obj.get("data") != data:
            self.backend.apply(cm(meta["name"], {"follow": "yes"}, data))
        return None


class Poker:
    """For each Secret, writes ConfigMap `lb` (owned by `b`) with the Secret's name."""

    name = "poker"

    def __init__(self, backend: Any) -> None:
        self.backend = backend

    def watches(self) -> Sequence[tuple[str, str]]:
        return [("v1", "Secret")]

    def reconcile(self, obj: Obj) -> float | None:
        self.backend.apply(cm("lb", {"owner": "b"}, {"poked": obj["metadata"]["name"]}))
        return None


def test_a_reader_by_labels_is_not_offered_for_a_change_its_selector_did_not_match() -> None:
    env = SimulatedEnvironment()
    cluster = env.cluster
    for name in ("a", "b"):
        cluster.apply(cm(name, {"follow": "yes"}))
        cluster.apply(cm(f"l{name}", {"owner": name}, {name: "1"}))
    tracker = TrackingBackend(cluster)
    follower, poker = Follower(tracker), Poker(tracker)
    sched = _Scheduler(cluster, tracker, env.clock, frozenset([follower.name, poker.name]))
    controllers: list[Any] = [follower, poker]
    for _ in range(5):
        sched.run_round(controllers)
    assert sorted(follower.seen) == ["a", "b"]
    follower.seen.clear()

    # One round: `a` follows its changed `la` (writing itself), then the poker changes `lb`,
    # after `a`'s reconcile. The next round has `a` as a candidate (it changed since the round
    # began: its own write) and `lb`'s change, which only `b`'s selector matches.
    cluster.apply(cm("la", {"owner": "a"}, {"a": "2"}))
    cluster.apply({"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": "poke", "namespace": "default"}})
    sched.run_round(controllers)
    assert follower.seen == ["a"]
    sched.run_round(controllers)
    assert follower.seen == ["a", "b"]  # not `a` again: nothing it read changed since
    before = env.revision()
    sched.run_round(controllers)
    assert env.revision() == before and follower.seen == ["a", "b"]
    assert (cluster.get("v1", "ConfigMap", "default", "b") or {}).get("data") == {
        "poked": "poke"}
