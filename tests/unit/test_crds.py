"""The committed CRDs in config/crds/ and in the Helm chart's charts/reconciler/crds/ are exactly
what scripts/generate-crds.py writes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from reconciler.model.crds import crd_files
from reconciler.model.schema import ALL_KINDS

ROOT = Path(__file__).resolve().parents[2]
CRD_DIRS = (ROOT / "config" / "crds", ROOT / "charts" / "reconciler" / "crds")
REGENERATE = ("run `.venv/bin/python scripts/generate-crds.py` and commit config/crds/ and "
              "charts/reconciler/crds/")


@pytest.mark.parametrize("crd_dir", CRD_DIRS, ids=lambda d: str(d.relative_to(ROOT)))
def test_committed_crds_equal_generated(crd_dir: Path) -> None:
    wanted = crd_files()
    committed = {p.name: p.read_text() for p in crd_dir.glob("*.yaml")}
    assert sorted(committed) == sorted(wanted), REGENERATE
    stale = [name for name, text in wanted.items() if committed[name] != text]
    assert not stale, f"stale CRDs {stale}: {REGENERATE}"


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda k: k.kind)
def test_crd_names_scope_and_schema(kind: object) -> None:
    from reconciler.model.schema import KindSchema

    assert isinstance(kind, KindSchema)
    crd = yaml.safe_load(crd_files()[f"{kind.group}_{kind.plural}.yaml"])
    assert crd["metadata"]["name"] == f"{kind.plural}.{kind.group}"
    assert crd["spec"]["scope"] == ("Namespaced" if kind.namespaced else "Cluster")
    version = crd["spec"]["versions"][0]
    assert version["schema"]["openAPIV3Schema"]["properties"]["spec"] == kind.spec
    assert version["subresources"] == {"status": {}}
