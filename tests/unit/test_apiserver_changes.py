"""The served API's watch history (`simulator.apiserver.changes.ChangeLog`): a scan wakes the
watches of the kinds written since the last scan, and only those (one condition per kind over
the store's lock), so a write does not wake every open watch."""

from __future__ import annotations

import threading
from typing import Any

from simulator.apiserver.changes import ChangeLog


class _Cluster:
    resource_version = 0

    def add_listener(self, listener: Any) -> None:
        self.listener = listener


def _counting(condition: threading.Condition) -> list[int]:
    calls = [0]
    notify_all = condition.notify_all

    def counted() -> None:
        calls[0] += 1
        notify_all()
    condition.notify_all = counted  # type: ignore[method-assign]
    return calls


def _cm(rv: int, kind: str = "ConfigMap", api_version: str = "v1") -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind,
            "metadata": {"namespace": "a", "name": "x", "resourceVersion": str(rv)}}


def test_a_scan_wakes_only_the_kinds_written() -> None:
    lock = threading.RLock()
    log = ChangeLog(_Cluster(), lock)
    with lock:
        configmaps = _counting(log.changed("", "ConfigMap"))
        deployments = _counting(log.changed("apps", "Deployment"))
        assert log.changed("", "ConfigMap") is log.changed("", "ConfigMap")
        log.scan()
        assert (configmaps, deployments) == ([0], [0]), "nothing written"
        log.record("ADDED", _cm(1), None)
        log.record("MODIFIED", _cm(2), _cm(1))
        log.record("ADDED", _cm(3, "Secret"), None)  # a kind nobody watches
        log.scan()
        assert (configmaps, deployments) == ([1], [0])
        log.scan()
        assert configmaps == [1], "each write wakes once"
        log.record("ADDED", _cm(4, "Deployment", "apps/v1"), None)
        log.scan()
        assert (configmaps, deployments) == ([1], [1])
        assert [e.revision for e in log.since(1)] == [2, 3, 4]


def test_a_waiting_watch_is_woken_by_its_kind() -> None:
    lock = threading.RLock()
    log = ChangeLog(_Cluster(), lock)
    woke = threading.Event()

    def watch() -> None:
        with lock:
            condition = log.changed("", "ConfigMap")
            ready.set()
            while not list(log.since(0)):
                condition.wait(timeout=60)
        woke.set()
    ready = threading.Event()
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    assert ready.wait(30)
    with lock:
        log.record("ADDED", _cm(1), None)
        log.scan()
    thread.join(30)
    assert woke.is_set()


def test_the_previous_state_is_kept_only_when_a_selector_could_tell_it_apart() -> None:
    lock = threading.RLock()
    log = ChangeLog(_Cluster(), lock)
    labelled = {**_cm(1), "metadata": {**_cm(1)["metadata"], "labels": {"shard": "a"}}}
    moved = {**labelled, "metadata": {**labelled["metadata"], "labels": {"shard": "b"},
                                      "resourceVersion": "3"}}
    with lock:
        log.record("MODIFIED", {**labelled, "data": {"k": "2"}}, labelled)
        log.record("MODIFIED", moved, labelled)
        log.record("DELETED", moved, moved)
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "a",
                                                               "resourceVersion": "5"}}
        log.record("MODIFIED", {**pod, "status": {"phase": "Running"}},
                   {**pod, "status": {"phase": "Pending"}})
        log.record("MODIFIED", {**pod, "status": {"phase": "Running", "podIP": "10.0.0.1"}},
                   {**pod, "status": {"phase": "Running"}})
    same, relabelled, deleted, phase, ip = list(log.since(0))
    assert same.before is None and same.alike, "a data change: labels as they were"
    assert relabelled.before == labelled and not relabelled.alike
    assert deleted.before is None and not deleted.alike
    assert phase.before is not None, "status.phase is a field selector of Pods"
    assert ip.before is None and ip.alike
