"""The simulated cluster refuses what kube-apiserver refuses, on every write path: create,
server-side apply of an update (judged on the merged object), `kubectl edit` and status updates;
a refused write changes nothing."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from reconciler.model.errors import Rejected
from reconciler.model.limits import DEFAULT_LIMITS
from simulator.clock import VirtualClock
from simulator.cluster import InMemoryCluster


@pytest.fixture
def cluster() -> InMemoryCluster:
    return InMemoryCluster(VirtualClock())


def _cm(name: str = "cfg", **fields: Any) -> dict[str, Any]:
    metadata = {"name": name, "namespace": "default", **fields.pop("metadata", {})}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, **fields}


def test_create_with_an_invalid_name_is_refused_in_kube_apiservers_words(
    cluster: InMemoryCluster,
) -> None:
    with pytest.raises(Rejected) as refused:
        cluster.apply(_cm("Bad_Name"))
    assert refused.value.field == "metadata.name"
    assert str(refused.value).startswith(
        'ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase '
        "RFC 1123 subdomain must consist of")
    assert cluster.get("v1", "ConfigMap", "default", "Bad_Name") is None


@pytest.mark.parametrize(("obj", "field"), [
    ({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a.b", "namespace": "default"}},
     "metadata.name"),
    ({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a.b"}}, "metadata.name"),
    ({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a" * 64}}, "metadata.name"),
    ({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
      "metadata": {"name": "a/b"}}, "metadata.name"),
    (_cm(metadata={"labels": {"app": "x" * 64}}), "metadata.labels"),
    (_cm(metadata={"annotations": {"a b": "x"}}), "metadata.annotations"),
    (_cm(data={"a b": "x"}), "data[a b]"),
    ({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"},
      "data": {"k": "not base64"}}, "data[k]"),
    ({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"},
      "stringData": {"a/b": "x"}}, "stringData[a/b]"),
])
def test_built_in_rules_on_create(cluster: InMemoryCluster, obj: dict[str, Any],
                                  field: str) -> None:
    with pytest.raises(Rejected) as refused:
        cluster.apply(obj)
    assert refused.value.field == field


def test_valid_objects_at_the_boundaries_are_accepted(cluster: InMemoryCluster) -> None:
    cluster.apply({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": "a" * 63, "namespace": "default"}})
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n" * 63}})
    cluster.apply(_cm("c" * 253, metadata={"labels": {"k" * 63: "v" * 63}}))
    cluster.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                   "metadata": {"name": "system:controller:x"}})
    secret = cluster.apply({"apiVersion": "v1", "kind": "Secret",
                            "metadata": {"name": "s", "namespace": "default"},
                            "data": {"a": base64.b64encode(b"x").decode()},
                            "stringData": {"b": "y"}})
    assert secret["data"] == {"a": "eA==", "b": "eQ=="}


def test_a_custom_resource_name_must_be_a_subdomain(cluster: InMemoryCluster) -> None:
    cluster.apply({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"kind": "Widget", "plural": "widgets"},
                 "versions": [{"name": "v1", "served": True, "storage": True}]}})
    widget = {"apiVersion": "example.com/v1", "kind": "Widget",
              "metadata": {"name": "a.b", "namespace": "default"}}
    cluster.apply(widget)
    with pytest.raises(Rejected) as refused:
        cluster.apply({**widget, "metadata": {"name": "a%b", "namespace": "default"}})
    assert str(refused.value).startswith('Widget.example.com "a%b" is invalid: metadata.name: ')


def test_an_update_is_judged_on_the_merged_object_and_refused_whole(
    cluster: InMemoryCluster,
) -> None:
    cluster.apply(_cm(data={"k": "text"}), "one")
    before = cluster.get("v1", "ConfigMap", "default", "cfg")
    # Each manager's apply is valid alone; together they put "k" in data and binaryData.
    with pytest.raises(Rejected) as refused:
        cluster.apply(_cm(binaryData={"k": base64.b64encode(b"x").decode()}), "two")
    assert refused.value.field == "data[k]"
    assert 'duplicate of key present in binaryData' in str(refused.value)
    assert cluster.get("v1", "ConfigMap", "default", "cfg") == before


def test_annotations_growing_past_the_limit_across_managers_are_refused(
    cluster: InMemoryCluster,
) -> None:
    half = "x" * (128 * 1024)
    cluster.apply(_cm(metadata={"annotations": {"a": half}}), "one")
    revision = cluster.revision
    with pytest.raises(Rejected) as refused:
        cluster.apply(_cm(metadata={"annotations": {"b": half}}), "two")
    assert str(refused.value) == ('ConfigMap "cfg" is invalid: metadata.annotations: Too long: '
                                  "may not be more than 262144 bytes")
    assert cluster.revision == revision


def test_an_update_with_an_invalid_label_is_refused(cluster: InMemoryCluster) -> None:
    cluster.apply(_cm(metadata={"labels": {"app": "web"}}))
    with pytest.raises(Rejected):
        cluster.apply(_cm(metadata={"labels": {"app": "not valid"}}))
    live = cluster.get("v1", "ConfigMap", "default", "cfg")
    assert live is not None
    assert live["metadata"]["labels"] == {"app": "web"}


def test_kubectl_edit_is_validated(cluster: InMemoryCluster) -> None:
    cluster.apply(_cm(data={"a": "1"}))

    def bad(obj: dict[str, Any]) -> None:
        obj["metadata"]["labels"] = {"app": "-bad"}

    with pytest.raises(Rejected) as refused:
        cluster.edit("v1", "ConfigMap", "default", "cfg", bad)
    assert refused.value.field == "metadata.labels"
    live = cluster.get("v1", "ConfigMap", "default", "cfg")
    assert live is not None
    assert "labels" not in live["metadata"]


def test_an_object_over_the_storage_limit_is_refused(cluster: InMemoryCluster) -> None:
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "blobs.example.com"},
           "spec": {"group": "example.com", "scope": "Namespaced",
                    "names": {"kind": "Blob", "plural": "blobs"},
                    "versions": [{"name": "v1", "served": True, "storage": True}]}}
    cluster.apply(crd)
    blob = {"apiVersion": "example.com/v1", "kind": "Blob",
            "metadata": {"name": "b", "namespace": "default"},
            "spec": {"data": "x" * DEFAULT_LIMITS.object_bytes}}
    with pytest.raises(Rejected) as refused:
        cluster.apply(blob)
    assert str(refused.value).startswith("etcdserver: request is too large")
    assert cluster.get("example.com/v1", "Blob", "default", "b") is None


def test_a_status_that_makes_the_object_too_large_is_refused(cluster: InMemoryCluster) -> None:
    live = cluster.apply(_cm())
    live["status"] = {"log": "x" * DEFAULT_LIMITS.object_bytes}
    with pytest.raises(Rejected) as refused:
        cluster.update_status(live)
    assert str(refused.value).startswith("etcdserver: request is too large")
    stored = cluster.get("v1", "ConfigMap", "default", "cfg")
    assert stored is not None
    assert "status" not in stored
    live["status"] = {"phase": "ok"}
    assert cluster.update_status(live)["status"] == {"phase": "ok"}


BLOBS = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
         "metadata": {"name": "blobs.example.com"},
         "spec": {"group": "example.com", "scope": "Namespaced",
                  "names": {"kind": "Blob", "plural": "blobs"},
                  "versions": [{"name": "v1", "served": True, "storage": True}]}}


def _blob(name: str = "b", data: str = "") -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Blob",
            "metadata": {"name": name, "namespace": "default"}, "spec": {"data": data}}


def test_a_status_write_is_sized_with_what_other_writes_added_since(
        cluster: InMemoryCluster) -> None:
    """A status write bounds the object's size by its parts (the object without status as of
    its resourceVersion, plus the new status): an apply that grew the object in between is
    counted, whatever status writes came before it."""
    cluster.apply(BLOBS)
    live = cluster.apply(_blob())
    live["status"] = {"phase": "one"}
    cluster.update_status(live)
    live["status"] = {"phase": "two"}
    cluster.update_status(live)  # the object's size without status known for this version
    cluster.apply(_blob(data="x" * (DEFAULT_LIMITS.object_bytes - 2_000)))  # still fits
    grown = cluster.get("example.com/v1", "Blob", "default", "b")
    assert grown is not None
    live = grown
    live["status"] = {"log": "y" * 4_000}
    with pytest.raises(Rejected) as refused:
        cluster.update_status(live)
    assert str(refused.value).startswith("etcdserver: request is too large")
    live["status"] = {"phase": "three"}
    assert cluster.update_status(live)["status"] == {"phase": "three"}


def test_status_writes_of_a_new_object_count_its_resource_version(
        cluster: InMemoryCluster) -> None:
    """Sized at its create before it had a resourceVersion, an object near the limit still
    refuses the status that takes it over, and takes the one that keeps it within."""
    cluster.apply(BLOBS)
    probe = cluster.apply(_blob("probe"))
    filler = DEFAULT_LIMITS.object_bytes - len(json.dumps(probe, separators=(",", ":"))) - 200
    live = cluster.apply(_blob(data="x" * filler))
    room = (DEFAULT_LIMITS.object_bytes - len(json.dumps(live, separators=(",", ":")))
            - len(',"status":{"log":""}'))
    live["status"] = {"log": "y" * (room + 1)}
    with pytest.raises(Rejected):
        cluster.update_status(live)
    live["status"] = {"log": "y" * room}
    assert cluster.update_status(live)["status"] == {"log": "y" * room}


GIT = "source.toolkit.fluxcd.io/v1"


def _with_product_crds(cluster: InMemoryCluster) -> InMemoryCluster:
    from reconciler.model.crds import product_crds

    for crd in product_crds():
        cluster.apply(crd)
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
    return cluster


def _gitrepository(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": GIT, "kind": "GitRepository",
            "metadata": {"name": "app", "namespace": "default"}, "spec": spec}


def test_an_apply_to_an_existing_object_is_judged_merged(cluster: InMemoryCluster) -> None:
    """An apply configuration holds only its manager's fields: the CRD schema (spec required)
    judges the merged object, as kube-apiserver does, not the partial configuration."""
    _with_product_crds(cluster)
    cluster.apply(_gitrepository(url="https://example.com/a.git", interval="1m"))
    annotated = cluster.apply({"apiVersion": GIT, "kind": "GitRepository", "metadata": {
        "name": "app", "namespace": "default", "annotations": {"a": "b"}}}, "another-manager")
    assert annotated["metadata"]["annotations"] == {"a": "b"}
    assert annotated["spec"]["url"] == "https://example.com/a.git"


def test_a_partial_apply_that_creates_is_judged_as_it_is(cluster: InMemoryCluster) -> None:
    _with_product_crds(cluster)
    with pytest.raises(Rejected, match="spec"):
        cluster.apply({"apiVersion": GIT, "kind": "GitRepository",
                       "metadata": {"name": "new", "namespace": "default"}})


def test_a_merged_object_the_schema_refuses_is_not_stored(cluster: InMemoryCluster) -> None:
    _with_product_crds(cluster)
    before = cluster.apply(_gitrepository(url="https://example.com/a.git", interval="1m"))
    with pytest.raises(Rejected, match="interval"):
        cluster.apply(_gitrepository(url="https://example.com/a.git", interval=5))
    after = cluster.get(GIT, "GitRepository", "default", "app")
    assert after == before


def _custom_kind(cluster: InMemoryCluster) -> None:
    cluster.apply({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                   "metadata": {"name": "blobs.example.com"},
                   "spec": {"group": "example.com", "scope": "Namespaced",
                            "names": {"kind": "Blob", "plural": "blobs"},
                            "versions": [{"name": "v1", "served": True, "storage": True}]}})


def _custom(metadata: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Blob",
            "metadata": {"name": "b", "namespace": "default", **(metadata or {})},
            "spec": spec}


def test_two_managers_halves_over_the_storage_limit_are_refused(cluster: InMemoryCluster) -> None:
    """The merged object's metadata is the configuration's (only its size is left to check):
    its size is still judged whole."""
    _custom_kind(cluster)
    part = "x" * (DEFAULT_LIMITS.object_bytes * 6 // 10)
    before = cluster.apply(_custom(a=part), "one")
    with pytest.raises(Rejected) as refused:
        cluster.apply(_custom(b=part), "two")
    assert str(refused.value).startswith("etcdserver: request is too large")
    assert cluster.get("example.com/v1", "Blob", "default", "b") == before


def test_custom_resource_annotations_past_the_limit_across_managers_are_refused(
    cluster: InMemoryCluster,
) -> None:
    """Another manager's metadata merged with the configuration's is judged whole."""
    _custom_kind(cluster)
    half = "x" * (128 * 1024)
    before = cluster.apply(_custom({"annotations": {"a": half}}), "one")
    with pytest.raises(Rejected) as refused:
        cluster.apply(_custom({"annotations": {"b": half}}), "two")
    assert str(refused.value) == ('Blob.example.com "b" is invalid: metadata.annotations: '
                                  "Too long: may not be more than 262144 bytes")
    assert cluster.get("example.com/v1", "Blob", "default", "b") == before
