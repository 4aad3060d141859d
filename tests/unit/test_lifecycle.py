"""Immutable and tekton lifecycles: one object per distinct content, newest healthy wins,
retention policy prunes the rest."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.chains.blueprint import Template
from reconciler.chains.lifecycle import (
    ExaminedObject,
    ImmutableStamper,
    RetentionPolicy,
    generated_name,
    is_immutable,
    lifecycle_of,
    to_prune,
)
from reconciler.model.conditions import FALSE, TRUE, UNKNOWN, Condition
from reconciler.model.objects import Obj, name_of
from simulator.clock import VirtualClock
from simulator.cluster import InMemoryCluster

LABELS = {"carto.run/workload-name": "app", "carto.run/resource-name": "tests"}
SUCCEEDED = {"singleConditionType": "Succeeded"}


def _desired(revision: str) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"generateName": "run-", "namespace": "default",
                         "labels": {**LABELS, "carto.run/template-lifecycle": "tekton"}},
            "data": {"revision": revision}}


def _obj(name: str, created: str, version: int) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "creationTimestamp": created,
                         "resourceVersion": str(version)}}


@pytest.mark.parametrize(
    ("spec", "lifecycle", "immutable"),
    [({}, "mutable", False), ({"lifecycle": "mutable"}, "mutable", False),
     ({"lifecycle": "immutable"}, "immutable", True), ({"lifecycle": "tekton"}, "tekton", True)],
)
def test_lifecycle_of(spec: dict[str, Any], lifecycle: str, immutable: bool) -> None:
    assert lifecycle_of(spec) == lifecycle
    assert is_immutable(lifecycle) is immutable


@pytest.mark.parametrize(
    ("spec", "rule"),
    [({"lifecycle": "tekton"}, SUCCEEDED),
     ({"lifecycle": "tekton", "healthRule": {"alwaysHealthy": {}}}, {"alwaysHealthy": {}}),
     ({"lifecycle": "immutable"}, None)],
)
def test_tekton_defaults_to_succeeded_condition(spec: dict[str, Any], rule: Any) -> None:
    template = Template("ClusterSourceTemplate", "t", {"spec": spec})
    assert template.health_rule == rule


def test_generated_name_is_prefixed_stable_and_avoids_taken_names() -> None:
    first = generated_name("run-", "seed", set())
    assert first.startswith("run-") and len(first) == len("run-") + 5
    assert generated_name("run-", "seed", set()) == first
    assert generated_name("run-", "seed", {first}) != first


@pytest.mark.parametrize(
    ("healths", "policy", "pruned"),
    [
        # newest last in the input; statuses per object
        ([TRUE, TRUE, TRUE], RetentionPolicy(2, 2), ["o0"]),
        ([FALSE, FALSE, TRUE], RetentionPolicy(5, 1), ["o0"]),
        ([UNKNOWN, UNKNOWN, UNKNOWN], RetentionPolicy(0, 0), []),
        ([TRUE, FALSE, TRUE, FALSE], RetentionPolicy(1, 1), ["o0", "o1"]),
        ([TRUE, TRUE], RetentionPolicy(), []),
    ],
)
def test_to_prune_keeps_newest_per_outcome(healths: list[str], policy: RetentionPolicy,
                                           pruned: list[str]) -> None:
    examined = [ExaminedObject(_obj(f"o{i}", "2024-01-01T00:00:00Z", i),
                               Condition("Healthy", h, "r")) for i, h in enumerate(healths)]
    assert sorted(name_of(o) for o in to_prune(examined, policy)) == pruned


@pytest.mark.parametrize(
    ("raw", "policy"),
    [(None, RetentionPolicy(10, 10)),
     ({"maxSuccessfulRuns": 1, "maxFailedRuns": 3}, RetentionPolicy(1, 3))],
)
def test_retention_policy_defaults(raw: Any, policy: RetentionPolicy) -> None:
    assert RetentionPolicy.of(raw) == policy


def _succeed(cluster: InMemoryCluster, obj: Obj, status: str = "True") -> None:
    cluster.update_status({**obj, "status": {"conditions": [
        {"type": "Succeeded", "status": status, "reason": "", "message": ""}]}})


def test_same_content_is_not_stamped_twice_and_new_content_is() -> None:
    clock = VirtualClock()
    cluster = InMemoryCluster(clock)
    removed: list[Obj] = []
    stamper = ImmutableStamper(cluster, removed.append)

    first = stamper.ensure(_desired("a"), LABELS, SUCCEEDED, RetentionPolicy())
    assert first.created and name_of(first.current).startswith("run-")
    assert first.latest_healthy is None  # still running

    again = stamper.ensure(_desired("a"), LABELS, SUCCEEDED, RetentionPolicy())
    assert not again.created and name_of(again.current) == name_of(first.current)

    _succeed(cluster, first.current)
    clock.advance(10)
    second = stamper.ensure(_desired("b"), LABELS, SUCCEEDED, RetentionPolicy())
    assert second.created and name_of(second.current) != name_of(first.current)
    healthy = second.latest_healthy
    assert healthy is not None and healthy["data"] == {"revision": "a"}

    _succeed(cluster, second.current)
    newest = stamper.ensure(_desired("b"), LABELS, SUCCEEDED, RetentionPolicy())
    latest = newest.latest_healthy
    assert latest is not None and latest["data"] == {"revision": "b"}
    assert removed == []


def test_retention_policy_deletes_old_runs() -> None:
    clock = VirtualClock()
    cluster = InMemoryCluster(clock)
    removed: list[Obj] = []
    stamper = ImmutableStamper(cluster, removed.append)
    for revision in ("a", "b", "c"):
        result = stamper.ensure(_desired(revision), LABELS, SUCCEEDED, RetentionPolicy(1, 1))
        _succeed(cluster, result.current)
        clock.advance(10)
    final = stamper.ensure(_desired("c"), LABELS, SUCCEEDED, RetentionPolicy(1, 1))
    left = cluster.list("v1", "ConfigMap", "default", LABELS)
    assert [o["data"]["revision"] for o in left] == ["c"]
    assert sorted(o["data"]["revision"] for o in removed) == ["a", "b"]
    assert final.latest_healthy is not None
