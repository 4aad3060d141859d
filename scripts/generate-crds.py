"""Write the product's CustomResourceDefinitions to config/crds/, one YAML file per kind.

The CRDs are generated from `reconciler/model/schema.py`; a unit test checks the committed files
equal what this script writes, so run it after changing a schema:

    .venv/bin/python scripts/generate-crds.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from reconciler.model.crds import crd_files

OUT = Path(__file__).resolve().parent.parent / "config" / "crds"


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    wanted = crd_files()
    for stale in OUT.glob("*.yaml"):
        if stale.name not in wanted:
            stale.unlink()
    for name, text in wanted.items():
        (OUT / name).write_text(text)
    sys.stderr.write(f"wrote {len(wanted)} CRDs to {OUT}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
