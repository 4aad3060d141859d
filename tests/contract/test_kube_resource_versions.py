"""`KubernetesBackend.resource_versions` and `kind_version` against `reconciler serve`: the
resourceVersions the owner controller's no-op fast path compares, read from the informer caches
without a request (and without copying an object), equal to what `get` and `list` say, moving
with every write (the backend's own, at once; another client's, once its watch event arrives),
and asked of the API server where there is no cache to read or the cache is filtered.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.backends.kubernetes import KubernetesBackend, connect
from reconciler.settings import KubernetesSettings
from tests.apiserver.conftest import wait_for

CM = ("v1", "ConfigMap")


def _cm(namespace: str, name: str, value: str, **labels: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"namespace": namespace, "name": name, "labels": labels},
            "data": {"v": value}}


def _rv(obj: object) -> str:
    assert isinstance(obj, dict)
    return str(obj["metadata"]["resourceVersion"])


@pytest.fixture
def kube(served_kubeconfig: Path) -> Iterator[KubernetesBackend]:
    backend = connect(served_kubeconfig)
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture
def namespace(kube: KubernetesBackend) -> Iterator[str]:
    name = f"rv-{uuid.uuid4().hex[:10]}"
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    kube.delete("v1", "Namespace", "", name)


def _reads(backend: KubernetesBackend) -> int:
    """Gets and lists sent (not watches: an informer's starts on its own thread)."""
    return backend.requests.by_verb["get"] + backend.requests.by_verb["list"]


def _mine(versions: tuple[tuple[str, str, str], ...], namespace: str
          ) -> list[tuple[str, str, str]]:
    return [v for v in versions if v[0] == namespace]


def test_resource_versions_come_from_the_cache_and_follow_writes(
        kube: KubernetesBackend, namespace: str, served_kubeconfig: Path) -> None:
    a = kube.apply(_cm(namespace, "a", "1"))
    kube.apply(_cm(namespace, "b", "1"))
    refs = [(*CM, namespace, "a"), (*CM, namespace, "b"), (*CM, namespace, "absent"),
            (*CM, "", "a"), ("v1", "Namespace", "", namespace)]
    kube.get("v1", "Namespace", "", namespace)  # both kinds cached from here on
    kube.get(*CM, namespace, "a")
    reads = _reads(kube)
    versions = kube.resource_versions(refs)
    assert _reads(kube) == reads, "answered by the informer caches"
    assert versions == (
        _rv(kube.get(*CM, namespace, "a")), _rv(kube.get(*CM, namespace, "b")), None, None,
        _rv(kube.get("v1", "Namespace", "", namespace)))
    assert versions[0] == _rv(a)

    # The backend's own write: the response goes into the cache, the version moves at once.
    changed = kube.apply(_cm(namespace, "a", "2"))
    after = kube.resource_versions(refs)
    assert after[0] == _rv(changed) != versions[0]
    assert after[1:] == versions[1:]
    # An apply that changes nothing keeps the version.
    kube.apply(_cm(namespace, "a", "2"))
    assert kube.resource_versions(refs[:1]) == (_rv(changed),)

    # Another client's write arrives through the watch.
    other = connect(served_kubeconfig, settings=KubernetesSettings(informers=False))
    moved = _rv(other.apply(_cm(namespace, "b", "2")))
    wait_for(lambda: kube.resource_versions(refs[1:2]) == (moved,))
    assert _rv(kube.get(*CM, namespace, "b")) == moved
    other.delete(*CM, namespace, "b")
    wait_for(lambda: kube.resource_versions(refs[1:2]) == (None,))
    assert kube.get(*CM, namespace, "b") is None
    assert _reads(kube) == reads, "still no request of the backend's own"


def test_kind_version_is_the_sorted_list_without_copies(
        kube: KubernetesBackend, namespace: str) -> None:
    for name in ("c", "a", "b"):
        kube.apply(_cm(namespace, name, "1"))
    kube.list(*CM, namespace)
    reads = _reads(kube)
    versions = _mine(kube.kind_version(*CM), namespace)
    assert _reads(kube) == reads, "answered by the informer cache"
    assert versions == [(namespace, o["metadata"]["name"], _rv(o))
                        for o in kube.list(*CM, namespace)]
    assert [name for _, name, _ in versions] == ["a", "b", "c"]
    everything = kube.kind_version(*CM)
    assert list(everything) == sorted(everything)

    written = kube.apply(_cm(namespace, "b", "2"))
    kube.delete(*CM, namespace, "c")
    kube.apply(_cm(namespace, "aa", "1"))
    after = _mine(kube.kind_version(*CM), namespace)
    assert [name for _, name, _ in after] == ["a", "aa", "b"]
    assert after[0] == versions[0]
    assert after[2] == (namespace, "b", _rv(written)) != versions[1]
    assert after == [(namespace, o["metadata"]["name"], _rv(o))
                     for o in kube.list(*CM, namespace)]


def test_without_informers_they_are_gets_and_lists(served_kubeconfig: Path) -> None:
    plain = connect(served_kubeconfig, settings=KubernetesSettings(informers=False,
                                                                   list_page_size=2))
    namespace = f"rv-{uuid.uuid4().hex[:10]}"
    plain.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    try:
        objs = [plain.apply(_cm(namespace, name, "1")) for name in ("x", "y", "z")]
        before = plain.requests.by_verb.copy()
        assert plain.resource_versions([(*CM, namespace, "x"), (*CM, namespace, "gone")]) == (
            _rv(objs[0]), None)
        assert plain.requests.by_verb["get"] - before["get"] == 2
        versions = _mine(plain.kind_version(*CM), namespace)
        assert plain.requests.by_verb["list"] > before["list"]
        assert versions == [(namespace, o["metadata"]["name"], _rv(o)) for o in objs]
    finally:
        plain.delete("v1", "Namespace", "", namespace)


def test_a_filtered_cache_asks_the_api_server_for_what_it_misses(
        served_kubeconfig: Path, kube: KubernetesBackend, namespace: str) -> None:
    shard = connect(served_kubeconfig)
    try:
        shard.select_informers(
            lambda api_version, kind: "shard=a" if kind == "ConfigMap" else None)
        mine = kube.apply(_cm(namespace, "mine", "1", shard="a"))
        theirs = kube.apply(_cm(namespace, "theirs", "1", shard="b"))
        assert shard.get(*CM, namespace, "mine") is not None  # starts the filtered informer
        gets = shard.requests.by_verb["get"]
        assert shard.resource_versions([(*CM, namespace, "mine")]) == (_rv(mine),)
        assert shard.requests.by_verb["get"] == gets, "in the shard's cache"
        assert shard.resource_versions([(*CM, namespace, "theirs"),
                                        (*CM, namespace, "nobody")]) == (_rv(theirs), None)
        assert shard.requests.by_verb["get"] == gets + 2, "outside the selector: asked"
        lists = shard.requests.by_verb["list"]
        assert _mine(shard.kind_version(*CM), namespace) == [
            (namespace, "mine", _rv(mine)), (namespace, "theirs", _rv(theirs))]
        assert shard.requests.by_verb["list"] > lists, "a filtered kind is listed whole"
    finally:
        shard.close()
