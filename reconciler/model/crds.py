"""CustomResourceDefinitions for every kind the product serves, generated from `schema.py`."""

from __future__ import annotations

import yaml

from reconciler.model.objects import Obj
from reconciler.model.schema import ALL_KINDS, KindSchema


def crd_for(kind: KindSchema) -> Obj:
    names: dict[str, object] = {
        "kind": kind.kind,
        "listKind": f"{kind.kind}List",
        "plural": kind.plural,
        "singular": kind.kind.lower(),
    }
    if kind.short_names:
        names["shortNames"] = list(kind.short_names)
    if kind.categories:
        names["categories"] = list(kind.categories)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{kind.plural}.{kind.group}"},
        "spec": {
            "group": kind.group,
            "names": names,
            "scope": "Namespaced" if kind.namespaced else "Cluster",
            "versions": [{
                "name": kind.version,
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": kind.openapi},
                "subresources": {"status": {}},
            }],
        },
    }


def product_crds() -> list[Obj]:
    return [crd_for(kind) for kind in ALL_KINDS]


_HEADER = ("# Generated from reconciler/model/schema.py by scripts/generate-crds.py; do not edit.\n"
           "---\n")


def crd_files() -> dict[str, str]:
    """File name (`<group>_<plural>.yaml`, as controller-gen names them) to YAML text."""
    return {
        f"{kind.group}_{kind.plural}.yaml":
            _HEADER + yaml.safe_dump(crd_for(kind), sort_keys=False, width=100)
        for kind in ALL_KINDS
    }
