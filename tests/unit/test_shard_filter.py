"""`ShardFilter`: which owners a replica reconciles, and the same rule as a label selector
(checked against the served API's own selector parser)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from reconciler.ha.shard import SHARD_LABEL, SHARDED_KINDS, ShardFilter, lease_name
from simulator.apiserver.selectors import label_matcher

WORKLOAD = ("carto.run/v1alpha1", "Workload")
DELIVERABLE = ("carto.run/v1alpha1", "Deliverable")
RUNNABLE = ("carto.run/v1alpha1", "Runnable")
KUSTOMIZATION = ("kustomize.toolkit.fluxcd.io/v1", "Kustomization")
GIT_REPOSITORY = ("source.toolkit.fluxcd.io/v1", "GitRepository")
SUPPLY_CHAIN = ("carto.run/v1alpha1", "ClusterSupplyChain")
OWNERS = (WORKLOAD, DELIVERABLE, RUNNABLE, KUSTOMIZATION, GIT_REPOSITORY)


def _obj(kind: tuple[str, str], labels: dict[str, str] | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "x", "namespace": "team"}
    if labels is not None:
        meta["labels"] = labels
    return {"apiVersion": kind[0], "kind": kind[1], "metadata": meta}


# (replica's key, the object's labels, whether that replica reconciles an owner so labelled)
TABLE: list[tuple[str | None, dict[str, str] | None, bool]] = [
    (None, None, True),
    (None, {}, True),
    (None, {"app": "web"}, True),
    (None, {SHARD_LABEL: "shard1"}, False),
    (None, {SHARD_LABEL: ""}, False),  # the label is there, even empty: a shard's
    ("shard1", None, False),
    ("shard1", {"app": "web"}, False),
    ("shard1", {SHARD_LABEL: "shard1"}, True),
    ("shard1", {SHARD_LABEL: "shard1", "app": "web"}, True),
    ("shard1", {SHARD_LABEL: "shard2"}, False),
    ("shard1", {SHARD_LABEL: "Shard1"}, False),  # label values are case-sensitive
    ("shard1", {"other.io/key": "shard1"}, False),
]


@pytest.mark.parametrize("kind", OWNERS, ids=lambda k: k[1])
@pytest.mark.parametrize(("key", "labels", "owned"), TABLE)
def test_owners_by_their_label(kind: tuple[str, str], key: str | None,
                               labels: dict[str, str] | None, owned: bool) -> None:
    shard = ShardFilter(key)
    obj = _obj(kind, labels)
    assert shard.owns(obj) is owned
    assert shard.matches(labels) is owned
    # The selector for list and watch means the same as `owns`, as the API server reads it.
    selector = shard.selector_for(*kind)
    assert selector is not None and label_matcher(selector)(obj) is owned


@pytest.mark.parametrize(("key", "labels", "owned"), [
    (None, None, True),
    (None, {SHARD_LABEL: "shard1"}, True),
    ("shard1", None, False),
    ("shard1", {SHARD_LABEL: "shard1"}, False),
])
def test_blueprints_are_the_unsharded_replicas(key: str | None, labels: dict[str, str] | None,
                                               owned: bool) -> None:
    shard = ShardFilter(key)
    assert shard.owns(_obj(SUPPLY_CHAIN, labels)) is owned
    assert shard.selector_for(*SUPPLY_CHAIN) is None  # read by every replica: watched whole


@pytest.mark.parametrize("kind", [("v1", "ConfigMap"), ("apps/v1", "Deployment"),
                                  ("kpack.io/v1alpha2", "Image"), ("v1", "Secret"),
                                  ("tekton.dev/v1", "PipelineRun")], ids=lambda k: k[1])
def test_stamped_and_read_kinds_are_not_filtered(kind: tuple[str, str]) -> None:
    assert not ShardFilter.sharded(*kind)
    assert ShardFilter("shard1").selector_for(*kind) is None


def test_selectors() -> None:
    assert ShardFilter().selector == "!sharding.fluxcd.io/key"
    assert ShardFilter("shard1").selector == "sharding.fluxcd.io/key=shard1"


def test_sharded_kinds_are_the_owners() -> None:
    expected = {("carto.run", "Workload"), ("carto.run", "Deliverable"),
                ("carto.run", "Runnable"), ("kustomize.toolkit.fluxcd.io", "Kustomization"),
                ("source.toolkit.fluxcd.io", "GitRepository")}
    assert expected == SHARDED_KINDS
    assert all(ShardFilter.sharded(*kind) for kind in OWNERS)
    assert ShardFilter.sharded("source.toolkit.fluxcd.io/v1beta2", "GitRepository")


@pytest.mark.parametrize("key", ["", "has space", "a" * 64, "-leading", "trailing-", "a/b"])
def test_invalid_keys_are_refused(key: str) -> None:
    with pytest.raises(ValueError, match="shard key"):
        ShardFilter(key)


@pytest.mark.parametrize(("shard", "name"), [
    (None, "reconciler-leader-election"),
    ("shard1", "reconciler-leader-election-shard-shard1"),
    ("Shard_1", "reconciler-leader-election-shard-" + hashlib.sha256(b"Shard_1").hexdigest()[:10]),
])
def test_each_shard_has_its_own_lease(shard: str | None, name: str) -> None:
    assert lease_name("reconciler-leader-election", shard) == name
