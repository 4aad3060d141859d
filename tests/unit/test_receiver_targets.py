"""Which objects a Receiver's resources select, and the requestedAt write on them."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from reconciler.model.errors import Rejected
from reconciler.notification.receiver import Receiver, ResourceRef
from reconciler.notification.requests import FIELD_MANAGER, ReconcileRequester, rfc3339_nano
from reconciler.notification.targets import Target, TargetError, resolve_targets
from simulator.cluster import InMemoryCluster
from tests.unit.receiver_helpers import gitrepository, new_cluster, receiver

GIT = "source.toolkit.fluxcd.io/v1"


def names(targets: list[Target]) -> list[str]:
    return [str(t) for t in targets]


@pytest.fixture
def cluster() -> InMemoryCluster:
    c, _ = new_cluster(namespaces=("default", "team-b"))
    c.apply(gitrepository("app", labels={"team": "a"}))
    c.apply(gitrepository("api", labels={"team": "a", "tier": "back"}))
    c.apply(gitrepository("web", labels={"team": "c"}))
    c.apply(gitrepository("other", "team-b", labels={"team": "a"}))
    return c


def resolve(cluster: InMemoryCluster, ref: Mapping[str, object], *, block: bool = False,
            ) -> list[str]:
    rcv = Receiver.parse(receiver(resources=[dict(ref)]))
    return names(resolve_targets(cluster, rcv, rcv.resources[0], no_cross_namespace_refs=block))


def test_by_name_in_the_receivers_namespace_with_the_default_api_version(
        cluster: InMemoryCluster) -> None:
    assert resolve(cluster, {"kind": "GitRepository", "name": "app"}) == [
        "GitRepository/default/app"]
    targets = resolve_targets(cluster, Receiver.parse(receiver()),
                              ResourceRef("GitRepository", "app"))
    assert targets[0].api_version == GIT


def test_name_wins_over_match_labels(cluster: InMemoryCluster) -> None:
    assert resolve(cluster, {"kind": "GitRepository", "name": "web",
                             "matchLabels": {"team": "a"}}) == ["GitRepository/default/web"]


def test_star_selects_by_labels_in_one_namespace(cluster: InMemoryCluster) -> None:
    assert resolve(cluster, {"kind": "GitRepository", "name": "*",
                             "matchLabels": {"team": "a"}}) == [
        "GitRepository/default/api", "GitRepository/default/app"]
    assert resolve(cluster, {"kind": "GitRepository", "name": "*",
                             "matchLabels": {"team": "a", "tier": "back"}}) == [
        "GitRepository/default/api"]
    assert resolve(cluster, {"kind": "GitRepository", "name": "*",
                             "matchLabels": {"team": "none"}}) == []


def test_star_without_labels_is_an_error(cluster: InMemoryCluster) -> None:
    with pytest.raises(TargetError, match="matchLabels field not set"):
        resolve(cluster, {"kind": "GitRepository", "name": "*"})


def test_cross_namespace_allowed_unless_blocked(cluster: InMemoryCluster) -> None:
    ref = {"kind": "GitRepository", "name": "*", "namespace": "team-b",
           "matchLabels": {"team": "a"}}
    assert resolve(cluster, ref) == ["GitRepository/team-b/other"]
    with pytest.raises(TargetError, match="cross-namespace references have been blocked"):
        resolve(cluster, ref, block=True)
    # Naming its own namespace is not a cross-namespace reference.
    assert resolve(cluster, {"kind": "GitRepository", "name": "app", "namespace": "default"},
                   block=True) == ["GitRepository/default/app"]


def test_missing_object_and_kind_without_default_version(cluster: InMemoryCluster) -> None:
    with pytest.raises(TargetError, match="unable to read GitRepository 'default/gone'"):
        resolve(cluster, {"kind": "GitRepository", "name": "gone"})
    with pytest.raises(TargetError, match="apiVersion must be specified for kind 'Kustomization'"):
        resolve(cluster, {"kind": "Kustomization", "name": "apps"})
    assert resolve(cluster, {"apiVersion": "kustomize.toolkit.fluxcd.io/v1",
                             "kind": "Kustomization", "name": "*",
                             "matchLabels": {"a": "b"}}) == []


def test_requested_at_is_set_by_its_own_field_manager_and_always_new(
        cluster: InMemoryCluster) -> None:
    clock = cluster.clock
    requester = ReconcileRequester(cluster, clock)
    target = Target(GIT, "GitRepository", "default", "app")
    first = requester.request(target)
    second = requester.request(target)
    assert first != second and first < second
    assert first == rfc3339_nano(round(clock.now() * 1e9))
    live = cluster.get(GIT, "GitRepository", "default", "app")
    assert live is not None
    assert live["metadata"]["annotations"] == {"reconcile.fluxcd.io/requestedAt": second}
    assert live["metadata"]["labels"] == {"team": "a"}
    assert live["spec"] == gitrepository()["spec"]
    managers = {e["manager"] for e in live["metadata"]["managedFields"]}
    assert FIELD_MANAGER in managers


def test_requested_at_on_a_deleted_object_creates_nothing(cluster: InMemoryCluster) -> None:
    requester = ReconcileRequester(cluster, cluster.clock)
    with pytest.raises(Rejected):
        requester.request(Target(GIT, "GitRepository", "default", "gone"))
    assert cluster.get(GIT, "GitRepository", "default", "gone") is None


def test_the_simulated_cluster_takes_an_annotation_only_apply() -> None:
    """kube-apiserver validates the merged object, so an apply of only metadata to an existing
    object is allowed although the apply configuration alone lacks the required spec."""
    cluster, clock = new_cluster()
    cluster.apply(gitrepository())
    ReconcileRequester(cluster, clock).request(Target(GIT, "GitRepository", "default", "app"))
