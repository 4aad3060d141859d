"""Sharding at the watch: `KubernetesBackend.select_informers(ShardFilter.selector_for)` (what
`reconciler run --shard` passes) lists and watches the owners with the shard's label selector
against `reconciler serve`, so a shard's cache holds only its own Workloads; relabelling one
moves it out (the served watch sends DELETED) and nothing is deleted for it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from reconciler.backends.kubernetes import KubernetesBackend, connect
from reconciler.ha.shard import SHARD_LABEL, ShardFilter
from reconciler.model.errors import BackendError
from reconciler.settings import KubernetesSettings
from tests.apiserver.conftest import Served, serving, wait_for

API, KIND = "carto.run/v1alpha1", "Workload"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("shard-informers"),
                 "--controllers", "ecosystem") as server:
        yield server


def _workload(namespace: str, name: str, shard: str | None) -> dict[str, object]:
    labels = {SHARD_LABEL: shard} if shard is not None else {"app": name}
    return {"apiVersion": API, "kind": KIND,
            "metadata": {"name": name, "namespace": namespace, "labels": labels}, "spec": {}}


def _names(backend: KubernetesBackend, namespace: str) -> set[str]:
    return {name for ns, name in backend.names(API, KIND) if ns == namespace}


def test_a_shards_informers_hold_only_its_owners(served: Served) -> None:
    writer = connect(served.kubeconfig, settings=KubernetesSettings(informers=False))
    shard_a, main = connect(served.kubeconfig), connect(served.kubeconfig)
    namespace = f"shard-{uuid.uuid4().hex[:8]}"
    try:
        shard_a.select_informers(ShardFilter("a").selector_for)
        main.select_informers(ShardFilter(None).selector_for)
        writer.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        for name, shard in (("wa", "a"), ("wb", "b"), ("wmain", None)):
            writer.apply(_workload(namespace, name, shard))
        changed: list[tuple[str, str, str, str]] = []
        shard_a.add_change_listener(lambda *key: changed.append(key))
        assert _names(shard_a, namespace) == {"wa"}
        assert _names(main, namespace) == {"wmain"}
        informer = shard_a.informers[(API, KIND)]
        # Kinds other than the owners' are watched whole.
        assert shard_a.get("v1", "Namespace", "", namespace) is not None
        assert (("v1", "Namespace") in shard_a.informers)
        # A selected kind cannot be started unfiltered and then narrowed.
        with pytest.raises(BackendError, match="already watched"):
            main.select_informers(ShardFilter("a").selector_for)

        # Relabel wa to shard b: shard a's watch sees it leave (DELETED), main never sees it.
        events = informer.stats.events
        writes = shard_a.requests.writes
        writer.apply(_workload(namespace, "wa", "b"))
        wait_for(lambda: "wa" not in _names(shard_a, namespace))
        assert informer.stats.events > events
        assert ("carto.run", KIND, namespace, "wa") in changed
        assert shard_a.requests.writes == writes  # nothing deleted or pruned for it
        assert writer.get(API, KIND, namespace, "wa") is not None  # still in the cluster
        # Read by name, the other shard's owner is asked of the API server (not cached).
        other = shard_a.get(API, KIND, namespace, "wa")
        assert other is not None and other["metadata"]["labels"] == {SHARD_LABEL: "b"}
        assert "wa" not in _names(shard_a, namespace)
        assert _names(main, namespace) == {"wmain"}

        # Relabelled back: it enters shard a's cache again (ADDED).
        writer.apply(_workload(namespace, "wa", "a"))
        wait_for(lambda: "wa" in _names(shard_a, namespace))
    finally:
        writer.delete("v1", "Namespace", "", namespace)
        for backend in (writer, shard_a, main):
            backend.close()
