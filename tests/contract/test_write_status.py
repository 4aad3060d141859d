"""`backends.base.write_status`, run against every backend as the rest of the contract is: the
simulated cluster (its own `write_status`, which makes no copy), and `KubernetesBackend` over
`reconciler serve` with and without informers (no `write_status` of its own: the answer is
taken from what `update_status` returns).

A status write returns the object's new resourceVersion (what a `get` right after it shows)
and whether the object is otherwise the one sent; someone else's change between the caller's
read and its write (spec, labels, annotations) makes that False.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from reconciler.backends.base import Backend, StatusWritten, write_status
from reconciler.model.errors import NotFound

GROUP = "writestatus.reconciler.dev"
@pytest.fixture
def kind(backend: Backend) -> Iterator[tuple[str, str, str]]:
    """(apiVersion, kind, namespace): a custom kind with a status subresource (so writes keep
    `metadata.generation`), served for the test, and a namespace of the test's own."""
    plural = f"w{uuid.uuid4().hex[:8]}s"
    crd: dict[str, Any] = {"apiVersion": "apiextensions.k8s.io/v1",
                           "kind": "CustomResourceDefinition",
                           "metadata": {"name": f"{plural}.{GROUP}"},
                           "spec": {"group": GROUP, "scope": "Namespaced",
                                    "names": {"plural": plural, "singular": plural[:-1],
                                              "kind": plural[:-1].capitalize()},
                                    "versions": [{"name": "v1", "served": True,
                                                  "storage": True,
                                                  "subresources": {"status": {}},
                                                  "schema": {"openAPIV3Schema": {
                                                      "type": "object",
                                                      "x-kubernetes-preserve-unknown-fields":
                                                          True}}}]}}
    namespace = f"ws-{uuid.uuid4().hex[:10]}"
    backend.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    backend.apply(crd)
    try:
        yield f"{GROUP}/v1", plural[:-1].capitalize(), namespace
    finally:
        with contextlib.suppress(NotFound):
            backend.delete("apiextensions.k8s.io/v1", "CustomResourceDefinition", "",
                           crd["metadata"]["name"])
        with contextlib.suppress(NotFound):
            backend.delete("v1", "Namespace", "", namespace)


def _widget(kind: tuple[str, str, str], **labels: str) -> dict[str, Any]:
    api_version, kind_name, namespace = kind
    return {"apiVersion": api_version, "kind": kind_name,
            "metadata": {"name": "one", "namespace": namespace, "labels": labels},
            "spec": {"size": 1}}


def _version(backend: Backend, kind: tuple[str, str, str]) -> str:
    live = backend.get(kind[0], kind[1], kind[2], "one")
    assert live is not None
    return str(live["metadata"]["resourceVersion"])


def test_the_version_written_is_the_one_a_get_shows(
        backend: Backend, kind: tuple[str, str, str]) -> None:
    read = backend.apply(_widget(kind, app="web"))
    written = write_status(backend, {**read, "status": {"phase": "Ready"}})
    assert isinstance(written, StatusWritten)
    assert written.same_apart_from_status is True
    assert written.resource_version != read["metadata"]["resourceVersion"]
    assert written.resource_version == _version(backend, kind)
    live = backend.get(kind[0], kind[1], kind[2], "one")
    assert live is not None and live["status"] == {"phase": "Ready"}
    assert live["metadata"]["generation"] == read["metadata"]["generation"]

    # The same status again changes nothing: the version stays the live one.
    again = write_status(backend, {**read, "status": {"phase": "Ready"}})
    assert again == StatusWritten(written.resource_version, True)
    assert again.resource_version == _version(backend, kind)


@pytest.mark.parametrize("change", ["spec", "labels", "annotations"])
def test_a_change_since_the_read_is_reported(
        backend: Backend, kind: tuple[str, str, str], change: str) -> None:
    read = backend.apply(_widget(kind, app="web"))
    changed = _widget(kind, app="web")
    if change == "spec":
        changed["spec"] = {"size": 2}
    elif change == "labels":
        changed["metadata"]["labels"] = {"app": "web", "tier": "front"}
    else:
        changed["metadata"]["annotations"] = {"note": "edited"}
    backend.apply(changed)

    written = write_status(backend, {**read, "status": {"phase": "Ready"}})
    assert written.same_apart_from_status is False
    assert written.resource_version == _version(backend, kind)

    # Sent again as it is now, the object is the one written.
    now = backend.get(kind[0], kind[1], kind[2], "one")
    assert now is not None
    assert write_status(backend, {**now, "status": {"phase": "Done"}}).same_apart_from_status


def test_a_refused_write_raises_as_update_status_does(
        backend: Backend, kind: tuple[str, str, str]) -> None:
    missing = {**_widget(kind), "metadata": {"name": "absent", "namespace": kind[2]},
               "status": {"phase": "Ready"}}
    with pytest.raises(NotFound):
        backend.update_status(missing)
    with pytest.raises(NotFound):
        write_status(backend, missing)
