"""`reconciler serve --controllers all` runs the product's controllers on `reconciler run`'s
work queues: a change made over HTTP wakes the keys that watch or read the changed object, and
no other. Seen in the server's debug log, one `reconciled` line per reconcile."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.apiserver.conftest import GREETER_SUPPLY_CHAIN, Served, needs_kubectl, serving, wait_for
from tests.manifests import greeter_workload

pytestmark = needs_kubectl



@pytest.fixture(scope="module")
def debug_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("serve-queues")
    with serving(tmp, str(GREETER_SUPPLY_CHAIN),
                 debug=True) as server:
        yield server


def workload_reconciles(log: Path, namespace: str, start: int = 0) -> list[str]:
    """The names of the Workloads in `namespace` reconciled in the log after offset `start`."""
    names = []
    for line in log.read_text()[start:].splitlines():
        if " reconciled " not in line or "kind=Workload" not in line:
            continue
        if re.search(rf"\bnamespace={namespace}\b", line):
            found = re.search(r"\bname=(\S+)", line)
            if found:
                names.append(found.group(1))
    return names


def test_an_http_change_wakes_only_the_owner_it_touched(debug_served: Served) -> None:
    served, ns = debug_served, "queues"
    served.kubectl("create", "namespace", ns)
    for name in ("hello", "other"):
        served.kubectl("apply", "-f", "-", stdin=greeter_workload(name, ns))
    served.kubectl("wait", "-n", ns, "--for=condition=Ready", "workload/hello",
                   "workload/other", "--timeout=30s")
    log = debug_served.stderr_path
    assert {"hello", "other"} <= set(workload_reconciles(log, ns))

    # At rest: no Workload is reconciled any more (no poll, no round over every object).
    def settled() -> int | None:
        before = len(log.read_text())
        time.sleep(1.0)
        return before if not workload_reconciles(log, ns, before) else None

    start = wait_for(settled, seconds=20)
    served.kubectl("label", "-n", ns, "workload/hello", "touched=yes")
    wait_for(lambda: "hello" in workload_reconciles(log, ns, start))
    time.sleep(2.0)  # ten ticks: time for any wrongly woken key to show
    woken = workload_reconciles(log, ns, start)
    assert set(woken) == {"hello"}, woken
