"""The simulated cluster's uids are name-based (UUID version 5), so that a simulation gives the
same uids every run: an object's from its key and the resourceVersion sequence at its create,
an Event's from its namespace, name and that sequence. They are computed without `uuid.uuid5`
on the hot path; these pin them to what `uuid.uuid5` gives."""

from __future__ import annotations

import uuid

import pytest

from simulator.clock import VirtualClock
from simulator.cluster import _UID_NAMESPACE, InMemoryCluster, _uid


@pytest.mark.parametrize("name", [
    "", "a", "('', 'ConfigMap', 'default', 'c')/7", "event/default/app-1.00000f/123",
    "ünïcødé/名前/🙂", "x" * 1000,
])
def test_uid_is_uuid5_of_the_name(name: str) -> None:
    assert _uid(name) == str(uuid.uuid5(_UID_NAMESPACE, name))
    assert uuid.UUID(_uid(name)).version == 5


def test_created_objects_and_events_get_their_name_based_uids() -> None:
    cluster = InMemoryCluster(VirtualClock())
    sequence = cluster.resource_version
    created = cluster.apply({"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": "c", "namespace": "default"}})
    key = ("", "ConfigMap", "default", "c")
    assert created["metadata"]["uid"] == str(uuid.uuid5(_UID_NAMESPACE, f"{key}/{sequence}"))

    sequence = cluster.resource_version
    cluster.emit_event(created, "Normal", "Made", "made it")
    (event,) = cluster.events()
    name = event["metadata"]["name"]
    assert name.startswith("c.")
    assert event["metadata"]["uid"] == str(
        uuid.uuid5(_UID_NAMESPACE, f"event/default/{name}/{sequence}"))
