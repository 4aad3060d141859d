"""What the verbs rely on in the engine, run through `simulate`: a Workload annotated
`reconciler.dev/suspend: "true"` is not reconciled; an owner records the
`reconcile.fluxcd.io/requestedAt` it handled in `status.lastHandledReconcileAt`."""

from __future__ import annotations

from reconciler.loader import load_paths, load_text
from reconciler.model.objects import Obj
from reconciler.simulation import simulate
from tests.conftest import ROOT

CHAIN = str(ROOT / "examples" / "greeter" / "00-supply-chain.yaml")


def workload(name: str, annotations: dict[str, str]) -> str:
    shown = ", ".join(f'{k}: "{v}"' for k, v in annotations.items())
    return f"""apiVersion: carto.run/v1alpha1
kind: Workload
metadata:
  name: {name}
  labels: {{app.example.com/type: greeter}}
  annotations: {{{shown}}}
spec: {{}}
"""


def run(*workloads: str) -> dict[str, Obj]:
    objects = load_paths([CHAIN]) + load_text("---\n".join(workloads), "inline.yaml")
    result = simulate(objects)
    # A suspended Workload counts as settled: nothing will move it.
    assert result.report.reason == "settled"
    return {str(w["metadata"]["name"]): w for w in result.workloads}


def test_a_suspended_workload_is_left_alone_and_the_others_are_not() -> None:
    found = run(workload("paused", {"reconciler.dev/suspend": "true"}),
                workload("running", {"reconciler.dev/suspend": "false"}))
    assert found["paused"].get("status") in (None, {})
    assert found["running"]["status"]["observedGeneration"] == 1


def test_the_handled_request_is_recorded() -> None:
    requested = "2026-11-30T18:00:00.000000Z"
    found = run(workload("asked", {"reconcile.fluxcd.io/requestedAt": requested}),
                workload("quiet", {}))
    assert found["asked"]["status"]["lastHandledReconcileAt"] == requested
    assert "lastHandledReconcileAt" not in found["quiet"]["status"]
