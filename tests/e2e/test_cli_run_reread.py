"""`reconciler run` re-reads its input files: a saved change is applied again and reconciled;
a file that no longer loads is reported and the cluster keeps what it has."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import greeter_inputs
from tests.e2e.daemon_harness import DaemonProcess, running_daemon, wait_for


def _workload(daemon: DaemonProcess) -> dict[str, Any] | None:
    found = [o for o in daemon.objects("Workload") if o["metadata"]["name"] == "hello"]
    return found[0] if found else None


def _reconciled_generation(daemon: DaemonProcess) -> int | None:
    """The Workload's generation once the owner controller has observed it, else None."""
    live = _workload(daemon)
    if live is None:
        return None
    generation = int(live["metadata"]["generation"])
    return generation if live.get("status", {}).get("observedGeneration") == generation else None


def test_run_applies_changed_input_files(tmp_path: Path) -> None:
    inputs = greeter_inputs(tmp_path / "inputs")
    workload = inputs / "00-workload.yaml"
    args = [str(inputs), "--listen", "127.0.0.1:0", "--artifacts-listen", "127.0.0.1:0",
            "--tick", "0.1"]
    with running_daemon(args, tmp_path / "daemon.log") as daemon:
        first = wait_for("the first reconcile", lambda: _reconciled_generation(daemon))
        workload.write_text(workload.read_text().replace(
            "spec: {}", 'spec: {params: [{name: greeting, value: "hi"}]}'))
        wait_for("the edited workload reconciled",
                 lambda: (_reconciled_generation(daemon) or 0) > first or None)
        live = _workload(daemon)
        assert live is not None and live["spec"]["params"] == [{"name": "greeting",
                                                                 "value": "hi"}]
        assert any(e.get("msg") == "input files changed: applied again"
                   for e in daemon.log_events())
        workload.write_text("kind: [unclosed\n")
        wait_for("the refusal", lambda: next(
            (e for e in daemon.log_events() if "cannot be applied" in str(e.get("msg"))),
            None))
        kept = _workload(daemon)
        assert kept is not None and kept["spec"]["params"] == live["spec"]["params"]
        assert daemon.stop() == 0, daemon.stderr_tail()
