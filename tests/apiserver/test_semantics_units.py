"""Transport-free checks of the semantics the served API relies on: the cluster's create,
update, deletion and listeners; the protobuf request decoder; the events.k8s.io conversion."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from reconciler.model.errors import NotFound, Rejected
from reconciler.model.objects import Obj
from simulator.apiserver import events
from simulator.apiserver.protobuf import (
    KINDS,
    MESSAGES,
    REVIEW_KINDS,
    REVIEW_MESSAGES,
    ProtobufError,
    decode,
)
from simulator.clock import VirtualClock
from simulator.cluster import AlreadyExists, InMemoryCluster, StaleVersion


def cm(name: str, ns: str = "default", **meta: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns, **meta}, "data": {"a": "1"}}


@pytest.fixture
def cluster() -> InMemoryCluster:
    return InMemoryCluster(VirtualClock())


def ref(obj: Obj, block: bool = True) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "name": obj["metadata"]["name"],
            "uid": obj["metadata"]["uid"], "blockOwnerDeletion": block}


def test_create_update_and_managed_fields(cluster: InMemoryCluster) -> None:
    made = cluster.create(cm("a"), "maker")
    assert [(e["manager"], e["operation"]) for e in made["metadata"]["managedFields"]] == [
        ("maker", "Update")]
    assert "generation" not in made["metadata"]
    with pytest.raises(AlreadyExists):
        cluster.create(cm("a"), "maker")
    changed = {**made, "data": {"a": "2"}}
    updated = cluster.update(changed, "editor")
    assert updated["data"] == {"a": "2"}
    assert int(updated["metadata"]["resourceVersion"]) > int(made["metadata"]["resourceVersion"])
    with pytest.raises(StaleVersion):
        cluster.update(changed, "editor")  # made's resourceVersion is stale now
    applied = cluster.apply(cm("b"), "applier")
    assert applied["metadata"]["managedFields"][0]["operation"] == "Apply"
    deploy = cluster.create({"apiVersion": "apps/v1", "kind": "Deployment",
                             "metadata": {"name": "d", "namespace": "default"},
                             "spec": {"replicas": 1}})
    assert deploy["metadata"]["generation"] == 1
    bumped = cluster.update({**deploy, "spec": {"replicas": 2}})
    assert bumped["metadata"]["generation"] == 2


def test_listeners_see_every_write_with_the_state_before(cluster: InMemoryCluster) -> None:
    seen: list[tuple[str, str, str | None]] = []
    cluster.add_listener(lambda t, obj, before: seen.append(
        (t, obj["metadata"]["resourceVersion"],
         before["metadata"]["resourceVersion"] if before else None)))
    a = cluster.apply(cm("a"))
    cluster.apply({**cm("a"), "data": {"a": "2"}})
    cluster.apply({**cm("a"), "data": {"a": "3"}})
    cluster.delete("v1", "ConfigMap", "default", "a")
    rv = int(a["metadata"]["resourceVersion"])
    assert seen == [("ADDED", str(rv), None), ("MODIFIED", str(rv + 1), str(rv)),
                    ("MODIFIED", str(rv + 2), str(rv + 1)),
                    ("DELETED", str(rv + 3), str(rv + 2))]


def test_events_share_the_resource_version_sequence_but_not_the_revision(
        cluster: InMemoryCluster) -> None:
    a = cluster.apply(cm("a"))
    revision, version = cluster.revision, cluster.resource_version
    cluster.emit_event(a, "Normal", "Seen", "once")
    cluster.emit_event(a, "Normal", "Seen", "once")
    assert cluster.revision == revision and cluster.resource_version == version + 2
    event = cluster.events()[-1]
    assert event["count"] == 2 and event["series"]["count"] == 2
    assert event["metadata"]["resourceVersion"] == str(version + 2)
    converted = events.to_events_v1(event)
    assert converted["note"] == "once" and converted["deprecatedCount"] == 2
    assert converted["regarding"]["name"] == "a" and converted["reportingController"]
    assert events.to_core(converted)["message"] == "once"


def test_finalizers_and_propagation(cluster: InMemoryCluster) -> None:
    owner = cluster.apply(cm("owner"))
    held = cluster.apply(cm("held", ownerReferences=[ref(owner)], finalizers=["x.io/f"]))
    free = cluster.apply(cm("free", ownerReferences=[ref(owner, block=False)]))
    last, gone = cluster.delete_object("v1", "ConfigMap", "default", "owner",
                                       propagation="Foreground")
    assert not gone and last["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert cluster.get("v1", "ConfigMap", "default", "free") is None
    marked = cluster.get("v1", "ConfigMap", "default", "held")
    assert marked is not None and marked["metadata"]["deletionGracePeriodSeconds"] == 0
    with pytest.raises(Rejected, match="no new finalizers"):
        cluster.edit("v1", "ConfigMap", "default", "held",
                     lambda o: o["metadata"].update(finalizers=["x.io/f", "x.io/g"]))
    cluster.edit("v1", "ConfigMap", "default", "held",
                 lambda o: o["metadata"].pop("finalizers"))
    assert cluster.get("v1", "ConfigMap", "default", "held") is None
    assert cluster.get("v1", "ConfigMap", "default", "owner") is None
    del free, held


def test_background_keeps_dependents_with_another_owner_and_orphan_unlinks(
        cluster: InMemoryCluster) -> None:
    one, two = cluster.apply(cm("one")), cluster.apply(cm("two"))
    cluster.apply(cm("shared", ownerReferences=[ref(one), ref(two)]))
    cluster.apply(cm("only", ownerReferences=[ref(one)]))
    cluster.delete("v1", "ConfigMap", "default", "one")
    assert cluster.get("v1", "ConfigMap", "default", "only") is None
    assert cluster.get("v1", "ConfigMap", "default", "shared") is not None
    cluster.delete_object("v1", "ConfigMap", "default", "two", propagation="Orphan")
    shared = cluster.get("v1", "ConfigMap", "default", "shared")
    assert shared is not None and [r["name"] for r in shared["metadata"][
        "ownerReferences"]] == ["one"]  # only the reference to the deleted owner goes
    with pytest.raises(NotFound):
        cluster.delete("v1", "ConfigMap", "default", "two")
    with pytest.raises(StaleVersion, match="Precondition failed: UID"):
        cluster.delete_object("v1", "ConfigMap", "default", "shared",
                              preconditions={"uid": "other"})


def _varint(n: int) -> bytes:
    out = b""
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out += bytes([byte | 0x80])
        else:
            return out + bytes([byte])


def _field(number: int, payload: bytes | int) -> bytes:
    if isinstance(payload, int):
        return _varint(number << 3) + _varint(payload)
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = _field(1, api_version.encode()) + _field(2, kind.encode())
    return b"k8s\x00" + _field(1, type_meta) + _field(2, raw)


def test_protobuf_secret_as_client_go_writes_it() -> None:
    meta = (_field(1, b"s") + _field(2, b"") + _field(3, b"") + _field(7, 0)
            + _field(8, b"") + _field(11, _field(1, b"owner") + _field(2, b"helm")))
    secret = (_field(1, meta) + _field(2, _field(1, b"release") + _field(2, b"\x00\xffdata"))
              + _field(3, b"helm.sh/release.v1") + _field(5, 0))
    obj = decode(_envelope("v1", "Secret", secret))
    assert obj == {"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": "s", "labels": {"owner": "helm"}},
                   "data": {"release": base64.b64encode(b"\x00\xffdata").decode()},
                   "type": "helm.sh/release.v1", "immutable": False}


def test_protobuf_refuses_what_it_cannot_read() -> None:
    with pytest.raises(ProtobufError, match="magic"):
        decode(b"{}")
    with pytest.raises(ProtobufError, match="PodDisruptionBudget"):
        decode(_envelope("policy/v1", "PodDisruptionBudget", b""))
    probe = _field(10, b"")  # a livenessProbe: not in the decoder's Container table
    pod_spec = _field(2, _field(1, b"c") + probe)
    with pytest.raises(ProtobufError, match="field 10 of Container"):
        decode(_envelope("v1", "Pod", _field(2, pod_spec)))
    with pytest.raises(ProtobufError, match="past the end"):
        decode(_envelope("v1", "ConfigMap", _field(1, b"abc")[:-1]))
    with pytest.raises(ProtobufError, match="varint"):
        decode(b"k8s\x00" + b"\xff" * 11)
    with pytest.raises(ProtobufError, match="field 9 of ConfigMap is not known"):
        decode(_envelope("v1", "ConfigMap", _field(9, b"x")))
    with pytest.raises(ProtobufError, match="UTF-8"):
        decode(_envelope("v1", "ConfigMap", _field(1, _field(1, b"\xff"))))


def test_protobuf_tables_bound_the_decoding() -> None:
    """Every message type named resolves, and no message reaches itself: the nesting depth is
    fixed by the tables. The write path (`KINDS`) never reaches a review message, so it stays
    strict about unknown fields."""
    scalars = {"string", "bytes", "rawbytes", "int", "bool", "time", "microtime", "ignore",
               "intorstring", "quantity"}

    def children(name: str) -> set[str]:
        out: set[str] = set()
        for _, kind, _ in MESSAGES[name].values():
            kind = kind.removeprefix("map:")
            if kind in scalars:
                continue
            assert kind in MESSAGES, f"{name} names an unknown message {kind}"
            out.add(kind)
        return out

    def walk(name: str, path: tuple[str, ...]) -> set[str]:
        assert name not in path, f"a cycle: {' -> '.join((*path, name))}"
        seen = {name}
        for child in children(name):
            seen |= walk(child, (*path, name))
        return seen

    reached: set[str] = set()
    for table in {*KINDS.values(), "Unknown"}:
        reached |= walk(table, ())
    assert not reached & REVIEW_MESSAGES
    for kind in REVIEW_KINDS:
        assert walk(kind, ()) - {kind} <= REVIEW_MESSAGES
