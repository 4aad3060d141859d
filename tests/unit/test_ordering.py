"""Apply order: sync waves, then Namespaces, CRDs, *Class kinds, then a stable kind order."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.apply.ordering import SYNC_WAVE, SyncWaveError, apply_order, delete_order


def _o(kind: str, name: str = "x", wave: str | None = None, ns: str = "") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if ns:
        meta["namespace"] = ns
    if wave is not None:
        meta["annotations"] = {SYNC_WAVE: wave}
    return {"apiVersion": "v1", "kind": kind, "metadata": meta}


def _names(waves: list[list[dict[str, Any]]]) -> list[list[str]]:
    return [[f"{o['kind']}/{o['metadata']['name']}" for o in wave] for wave in waves]


@pytest.mark.parametrize(("objects", "expected"), [
    ([_o("Deployment"), _o("Service"), _o("Namespace"), _o("CustomResourceDefinition"),
      _o("StorageClass"), _o("ConfigMap"), _o("Widget")],
     [["Namespace/x", "CustomResourceDefinition/x", "StorageClass/x", "ConfigMap/x",
       "Service/x", "Deployment/x", "Widget/x"]]),
    ([_o("ConfigMap", "b"), _o("ConfigMap", "a")], [["ConfigMap/a", "ConfigMap/b"]]),
    ([_o("Deployment", "late", "5"), _o("Job", "first", "-1"), _o("ConfigMap", "mid")],
     [["Job/first"], ["ConfigMap/mid"], ["Deployment/late"]]),
    ([_o("Zeta"), _o("Alpha")], [["Alpha/x", "Zeta/x"]]),
], ids=["kinds", "names", "waves", "unknown kinds by name"])
def test_apply_order(objects: list[dict[str, Any]], expected: list[list[str]]) -> None:
    assert _names(apply_order(objects)) == expected


def test_delete_order_is_the_reverse() -> None:
    order = delete_order([_o("Namespace"), _o("Deployment"), _o("ConfigMap")])
    assert [o["kind"] for o in order] == ["Deployment", "ConfigMap", "Namespace"]


def test_bad_wave_names_the_object() -> None:
    with pytest.raises(SyncWaveError, match=r"ConfigMap/x: .*'soon' is not an integer"):
        apply_order([_o("ConfigMap", wave="soon")])
