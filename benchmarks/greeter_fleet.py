"""What the API and daemon benchmarks share: N greeter workloads (no Git) and a served cluster.

`objects(n)` is the greeter supply chain from `examples/greeter/` plus N Workloads it selects;
`serve(tmp)` starts `reconciler serve --controllers ecosystem` on a free port and returns the
process and the kubeconfig it wrote.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from reconciler.loader import LoadedObject, load_paths, load_text

ROOT = Path(__file__).resolve().parent.parent
CHAIN = ROOT / "examples" / "greeter" / "00-supply-chain.yaml"
RECONCILER = Path(sys.executable).parent / "reconciler"

WORKLOAD = """\
apiVersion: carto.run/v1alpha1
kind: Workload
metadata:
  name: hello-{i}
  namespace: default
  labels:
    app.example.com/type: greeter
spec: {{}}
"""


def objects(n: int) -> list[LoadedObject]:
    return [*load_paths([CHAIN]),
            *[o for i in range(n) for o in load_text(WORKLOAD.format(i=i), f"w{i}.yaml")]]


def serve(tmp: Path) -> tuple[subprocess.Popen[str], Path]:
    kubeconfig = tmp / "kubeconfig"
    log = (tmp / "serve.log").open("w")
    process = subprocess.Popen(
        [str(RECONCILER), "serve", "--controllers", "ecosystem", "--kubeconfig",
         str(kubeconfig), "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=log, text=True, cwd=ROOT)
    assert process.stdout is not None
    if not process.stdout.readline():
        raise SystemExit(f"reconciler serve did not start:\n{(tmp / 'serve.log').read_text()}")
    return process, kubeconfig
