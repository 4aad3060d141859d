"""The simulated cluster's reads cost what they return: read-only views that cannot change the
store, label and namespace lookups from indexes kept current on every write (and kept sorted),
reads recorded per thread for the runner, and Events expired an hour after their last write."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from reconciler.model.errors import Rejected
from simulator.clock import VirtualClock
from simulator.cluster import EVENT_TTL_SECONDS, InMemoryCluster, ListView, ObjectView


@pytest.fixture
def cluster() -> InMemoryCluster:
    c = InMemoryCluster(VirtualClock())
    c.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    return c


def _cm(name: str, namespace: str = "default", labels: dict[str, str] | None = None,
        **data: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels is not None:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def test_a_view_cannot_change_the_store_by_any_path(cluster: InMemoryCluster) -> None:
    cluster.apply(_cm("a", labels={"app": "x"}, key="v"))
    cluster.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {
        "name": "s", "namespace": "default", "finalizers": ["keep"]}})
    view = cluster.view("v1", "ConfigMap", "default", "a")
    assert isinstance(view, ObjectView)
    with pytest.raises(TypeError):
        view["data"] = {}  # type: ignore[index]
    with pytest.raises(AttributeError):
        view["data"].pop("key")
    with pytest.raises(TypeError):
        view["metadata"]["labels"]["app"] = "y"
    with pytest.raises(AttributeError):
        view["metadata"]["managedFields"].append({})
    with pytest.raises(TypeError):
        view["metadata"]["managedFields"][0] = {}
    fin = cluster.view("v1", "Secret", "default", "s")
    assert fin is not None and isinstance(fin["metadata"]["finalizers"], ListView)
    # A copy is the caller's to change; the store keeps what it had.
    mine = view.copy()
    mine["data"]["key"] = "changed"
    mine["metadata"]["labels"]["app"] = "y"
    stored = cluster.get("v1", "ConfigMap", "default", "a")
    assert stored is not None
    assert stored["data"] == {"key": "v"} and stored["metadata"]["labels"] == {"app": "x"}
    assert view == stored and view["metadata"]["labels"] == {"app": "x"}
    assert cluster.view("v1", "ConfigMap", "default", "missing") is None


def test_a_get_returns_a_copy_that_cannot_reach_the_store(cluster: InMemoryCluster) -> None:
    cluster.apply(_cm("a", key="v"))
    got = cluster.get("v1", "ConfigMap", "default", "a")
    assert got is not None
    got["data"]["key"] = "changed"
    got["metadata"]["name"] = "other"
    again = cluster.get("v1", "ConfigMap", "default", "a")
    assert again is not None and again["data"] == {"key": "v"}
    assert [v["metadata"]["name"] for v in cluster.views("v1", "ConfigMap")] == ["a"]


def test_label_lists_follow_relabelling_and_deletion(cluster: InMemoryCluster) -> None:
    for name, ns, app in (("c", "default", "x"), ("a", "team", "x"), ("b", "default", "y"),
                          ("a", "default", "x")):
        cluster.apply(_cm(name, ns, labels={"app": app, "tier": "web"}))

    def names(labels: dict[str, str], namespace: str | None = None) -> list[str]:
        return [f"{o['metadata']['namespace']}/{o['metadata']['name']}"
                for o in cluster.list("v1", "ConfigMap", namespace, labels)]

    assert names({"app": "x"}) == ["default/a", "default/c", "team/a"]
    assert names({"app": "x", "tier": "web"}, "default") == ["default/a", "default/c"]
    assert names({"app": "nothing"}) == []
    cluster.edit("v1", "ConfigMap", "default", "c",
                 lambda o: o["metadata"]["labels"].update(app="y"))
    assert names({"app": "x"}) == ["default/a", "team/a"]
    assert names({"app": "y"}) == ["default/b", "default/c"]
    cluster.edit("v1", "ConfigMap", "default", "b",
                 lambda o: o["metadata"].pop("labels"))
    assert names({"app": "y"}) == ["default/c"]
    assert names({"tier": "web"}) == ["default/a", "default/c", "team/a"]
    cluster.delete("v1", "ConfigMap", "team", "a")
    assert names({"app": "x"}) == ["default/a"]
    # A refused write leaves the index as the store: unchanged.
    with pytest.raises(Rejected):
        cluster.apply(_cm("a", labels={"app": "bad value!"}))
    assert names({"app": "x"}) == ["default/a"]


def test_lists_are_sorted_and_a_namespace_is_its_own_slice(cluster: InMemoryCluster) -> None:
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-b"}})
    for ns, name in (("team-b", "z"), ("team", "b"), ("default", "m"), ("team", "a"),
                     ("team-b", "a")):
        cluster.apply(_cm(name, ns))
    everything = [(o["metadata"]["namespace"], o["metadata"]["name"])
                  for o in cluster.list("v1", "ConfigMap")]
    assert everything == sorted(everything)
    assert [o["metadata"]["name"] for o in cluster.list("v1", "ConfigMap", "team")] == ["a", "b"]
    assert [o["metadata"]["name"] for o in cluster.list("v1", "ConfigMap", "team-b")] == [
        "a", "z"]
    assert cluster.names("v1", "ConfigMap") == everything
    cluster.delete("v1", "ConfigMap", "team", "a")
    assert [o["metadata"]["name"] for o in cluster.views("v1", "ConfigMap", "team")] == ["b"]


def test_reads_are_recorded_per_thread_between_begin_and_end(cluster: InMemoryCluster) -> None:
    cluster.apply(_cm("a"))
    cluster.get("v1", "ConfigMap", "default", "a")  # not recording: nothing kept
    cluster.begin()
    other: list[set[Any]] = []

    def elsewhere() -> None:
        cluster.get("v1", "ConfigMap", "default", "a")
        cluster.begin()
        cluster.list("v1", "Secret", "default")
        other.append(set(cluster.end().dependencies))

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
    cluster.get("v1", "ConfigMap", "default", "missing")
    cluster.list("v1", "ConfigMap", labels={"app": "x"})
    cluster.get("v1", "Namespace", "ignored", "team")  # cluster-scoped: no namespace
    assert cluster.end().dependencies == {
        ("key", "", "ConfigMap", "default", "missing"),
        ("labels", "", "ConfigMap", "*", "app=x"),
        ("key", "", "Namespace", "", "team")}
    assert other == [{("kind", "", "Secret", "default", "")}]
    assert cluster.end().dependencies == set()


def test_events_count_up_and_expire_an_hour_after_their_last_write() -> None:
    clock = VirtualClock()
    cluster = InMemoryCluster(clock)
    seen: list[tuple[str, str]] = []
    cluster.add_listener(lambda t, o, b: seen.append((t, o["reason"])) if o.get("kind") ==
                         "Event" else None)
    cm = cluster.apply(_cm("a"))
    cluster.emit_event(cm, "Normal", "Once", "first")
    cluster.emit_event(cm, "Normal", "Again", "repeated")
    clock.advance(EVENT_TTL_SECONDS - 10)
    cluster.emit_event(cm, "Normal", "Again", "repeated")  # counts up, and lives on
    assert [(e["reason"], e["count"]) for e in cluster.events()] == [("Once", 1), ("Again", 2)]
    clock.advance(20)
    assert [(e["reason"], e["count"]) for e in cluster.events()] == [("Again", 2)]
    assert ("DELETED", "Once") in seen
    clock.advance(EVENT_TTL_SECONDS)
    assert cluster.events() == [] and cluster.stored_events() == []
    # A new one after expiry takes a fresh name, never an expired one's.
    cluster.emit_event(cm, "Normal", "Once", "first")
    names = [e["metadata"]["name"] for e in cluster.events()]
    assert names == ["a.000003"]


def test_restored_events_keep_their_age() -> None:
    clock = VirtualClock()
    cluster = InMemoryCluster(clock)
    cm = cluster.apply(_cm("a"))
    cluster.emit_event(cm, "Normal", "Old", "old")
    clock.advance(EVENT_TTL_SECONDS / 2)
    cluster.emit_event(cm, "Normal", "New", "new")
    snapshot = cluster.snapshot()
    later = VirtualClock()
    later.set(clock.now() + EVENT_TTL_SECONDS / 2 + 1)
    restored = InMemoryCluster(later)
    restored.restore(snapshot)
    assert [e["reason"] for e in restored.events()] == ["New"]
    restored.emit_event(cm, "Normal", "Other", "other")
    assert [e["metadata"]["name"] for e in restored.events()] == ["a.000002", "a.000003"]


def test_the_change_log_names_what_changed_since_a_revision(
    cluster: InMemoryCluster, monkeypatch: pytest.MonkeyPatch,
) -> None:
    start = cluster.revision
    cluster.apply(_cm("a"))
    cluster.apply(_cm("b"))
    middle = cluster.revision
    cluster.apply(_cm("a", key="v"))
    cluster.delete("v1", "ConfigMap", "default", "b")
    assert cluster.changes_since(start) == [("", "ConfigMap", "default", "a"),
                                            ("", "ConfigMap", "default", "b")]
    assert cluster.changes_since(middle) == [("", "ConfigMap", "default", "a"),
                                             ("", "ConfigMap", "default", "b")]
    assert cluster.changes_since(cluster.revision) == []
    # Compacted: a question from before what the log keeps gets None (look at everything).
    monkeypatch.setattr("simulator.cluster.CHANGE_LOG_ENTRIES", 2)
    for i in range(6):
        cluster.apply(_cm(f"c{i}"))
    assert cluster.changes_since(start) is None
    assert cluster.changes_since(cluster.revision - 1) == [("", "ConfigMap", "default", "c5")]
    # What a restore loads is no change the log can name.
    restored = InMemoryCluster(VirtualClock())
    restored.restore(cluster.snapshot())
    assert restored.changes_since(0) is None
    assert restored.changes_since(restored.revision) == []


def test_dependents_are_found_by_owner_uid_as_references_come_and_go(
        cluster: InMemoryCluster) -> None:
    owner = cluster.apply(_cm("owner"))
    other = cluster.apply(_cm("other"))
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
           "uid": owner["metadata"]["uid"]}
    child = _cm("child")
    child["metadata"]["ownerReferences"] = [ref]
    cluster.apply(child)
    moved = _cm("moved")
    moved["metadata"]["ownerReferences"] = [ref]
    cluster.apply(moved)
    # Re-owned by `other`: no longer a dependent of `owner`.
    moved["metadata"]["ownerReferences"] = [{**ref, "name": "other",
                                             "uid": other["metadata"]["uid"]}]
    cluster.apply(moved, force=True)
    cluster.delete("v1", "ConfigMap", "default", "owner")
    assert cluster.get("v1", "ConfigMap", "default", "child") is None
    assert cluster.get("v1", "ConfigMap", "default", "moved") is not None
    cluster.delete("v1", "ConfigMap", "default", "other")
    assert cluster.get("v1", "ConfigMap", "default", "moved") is None
