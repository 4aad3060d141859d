"""`LeaderGatedBackend`: writes only while the elector says this replica leads."""

from __future__ import annotations

import pytest

from reconciler.backends.base import Backend
from reconciler.ha.gate import LeaderGatedBackend, NotLeader
from reconciler.model.errors import Transient
from simulator.clock import VirtualClock
from simulator.cluster import InMemoryCluster

CM = {"apiVersion": "v1", "kind": "ConfigMap",
      "metadata": {"name": "cfg", "namespace": "team"}, "data": {"a": "1"}}


def _cluster() -> InMemoryCluster:
    cluster = InMemoryCluster(VirtualClock())
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    return cluster


def test_writes_pass_while_leading_and_are_refused_otherwise() -> None:
    cluster = _cluster()
    leading = [True]
    gated: Backend = LeaderGatedBackend(cluster, lambda: leading[0])
    live = gated.apply(CM)
    gated.emit_event(live, "Normal", "Applied", "ok")
    leading[0] = False
    for write in (lambda: gated.apply(CM),
                  lambda: gated.update_status({**CM, "status": {}}),
                  lambda: gated.delete("v1", "ConfigMap", "team", "cfg"),
                  lambda: gated.emit_event(live, "Normal", "Applied", "again")):
        with pytest.raises(NotLeader, match="not the leader: refusing to"):
            write()
    # Reads still answer: a standby keeps its caches warm.
    assert gated.get("v1", "ConfigMap", "team", "cfg") is not None
    assert len(gated.list("v1", "ConfigMap", "team")) == 1
    assert gated.kind_info("v1", "ConfigMap").plural == "configmaps"
    assert len(gated.events()) == 1
    assert cluster.get("v1", "ConfigMap", "team", "cfg") is not None  # nothing deleted


def test_not_leader_is_transient_and_names_the_write() -> None:
    gated = LeaderGatedBackend(_cluster(), lambda: False)
    with pytest.raises(Transient) as raised:
        gated.delete("v1", "ConfigMap", "team", "cfg")
    assert isinstance(raised.value, NotLeader) and raised.value.reason == "NotLeader"
    assert "delete ConfigMap/team/cfg" in str(raised.value)


def test_everything_else_is_the_wrapped_backends() -> None:
    cluster = _cluster()
    gated = LeaderGatedBackend(cluster, lambda: True)
    assert gated.registry is cluster.registry
