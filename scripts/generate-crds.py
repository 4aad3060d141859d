"""Write the product's CustomResourceDefinitions, one YAML file per kind, to config/crds/ and to
the Helm chart's charts/reconciler/crds/.

The CRDs are generated from `reconciler/model/schema.py`; unit tests check the committed files in
both folders equal what this script writes, so run it after changing a schema:

    .venv/bin/python scripts/generate-crds.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from reconciler.model.crds import crd_files

ROOT = Path(__file__).resolve().parent.parent
OUTS = (ROOT / "config" / "crds", ROOT / "charts" / "reconciler" / "crds")


def main() -> int:
    wanted = crd_files()
    for out in OUTS:
        out.mkdir(parents=True, exist_ok=True)
        for stale in out.glob("*.yaml"):
            if stale.name not in wanted:
                stale.unlink()
        for name, text in wanted.items():
            (out / name).write_text(text)
        sys.stderr.write(f"wrote {len(wanted)} CRDs to {out}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
