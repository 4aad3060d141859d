"""Writing small kuttl test folders for the `test_kuttl_*` tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.manifests import greeter_chain


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Write `{relative path: YAML}` under root (dedented) and return root."""
    for name, content in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(content).lstrip("\n"))
    return root


CONFIGMAP = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  colour: blue
"""

GREETER_CHAIN = greeter_chain()

GREETER_WORKLOAD = """
apiVersion: carto.run/v1alpha1
kind: Workload
metadata:
  name: hello
  labels:
    app.example.com/type: greeter
spec: {}
"""
