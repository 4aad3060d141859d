"""Replicas of `reconciler run --environment kubernetes --leader-elect` against one served
cluster: only the leader writes, a standby takes over within the lease duration when the leader
is killed (-9), nothing is lost or stamped twice; and shards split the Workloads by label.

Real processes throughout (`reconciler serve --controllers ecosystem` and the replicas); every
wait polls with a bound.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from reconciler.backends.kubernetes import KubernetesBackend, connect
from reconciler.settings import KubernetesSettings
from tests.apiserver.conftest import Served, serving
from tests.e2e.daemon_harness import DaemonProcess, running_daemon, wait_for
from tests.manifests import settings_chain

LEASE = ["--lease-duration", "2", "--renew-deadline", "1.5", "--retry-period", "0.2"]

CHAIN = settings_chain()


def workload(name: str, shard: str | None = None) -> str:
    labels = "    app.example.com/kind: settings\n"
    if shard is not None:
        labels += f"    sharding.fluxcd.io/key: {shard}\n"
    return (f"---\napiVersion: carto.run/v1alpha1\nkind: Workload\nmetadata:\n  name: {name}\n"
            f"  namespace: default\n  labels:\n{labels}spec:\n  params:\n"
            f"    - name: value\n      value: v-{name}\n")


@pytest.fixture
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("ha"), "--controllers", "ecosystem") as server:
        yield server


@pytest.fixture
def reader(served: Served) -> Iterator[KubernetesBackend]:
    backend = connect(served.kubeconfig, settings=KubernetesSettings(informers=False))
    try:
        yield backend
    finally:
        backend.close()


def _ready(obj: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


def _master_status(daemon: DaemonProcess, lease: str) -> float | None:
    # `sample` takes its metric's name as `name`, so the label of that name is matched here.
    wanted = f'reconciler_leader_election_master_status{{name="{lease}"}} '
    for line in daemon.metrics().splitlines():
        if line.startswith(wanted):
            return float(line.removeprefix(wanted))
    return None


def _leading(daemon: DaemonProcess, lease: str) -> bool:
    return _master_status(daemon, lease) == 1


def _reconciles(daemon: DaemonProcess) -> float:
    total = 0.0
    for line in daemon.metrics().splitlines():
        if line.startswith("reconciler_reconcile_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _owners_written(daemon: DaemonProcess) -> set[str]:
    return {str(e.get("owner")) for e in daemon.log_events()
            if (e.get("msg") or e.get("event")) == "owner status written"}


def _all_ready(reader: KubernetesBackend, names: set[str]) -> bool | None:
    workloads = {w["metadata"]["name"]: w for w in reader.list(
        "carto.run/v1alpha1", "Workload", "default")}
    return True if set(workloads) >= names and all(
        _ready(workloads[n]) for n in names) else None


def _stamped_once(reader: KubernetesBackend, names: set[str]) -> None:
    stamped = [c for c in reader.list("v1", "ConfigMap", "default")
               if (c["metadata"].get("labels") or {}).get("carto.run/workload-name")]
    assert sorted(c["metadata"]["name"] for c in stamped) == sorted(
        f"{n}-settings" for n in names)
    for cm in stamped:
        name = cm["metadata"]["name"].removesuffix("-settings")
        assert cm["data"] == {"value": f"v-{name}"}
        managers = [m["manager"] for m in cm["metadata"].get("managedFields") or []]
        assert managers == ["reconciler"], managers


def _replica(stack: ExitStack, inputs: Path, served: Served, log: Path,
             *extra: str) -> DaemonProcess:
    args = [str(inputs), "--environment", "kubernetes", "--listen", "127.0.0.1:0",
            "--artifacts-listen", "127.0.0.1:0", "--tick", "0.2", "--leader-elect",
            "--leader-election-namespace", "default", *LEASE, *extra]
    return stack.enter_context(running_daemon(
        args, log, env={"RECONCILER_KUBECONFIG": str(served.kubeconfig)}))


def test_only_the_leader_writes_and_a_standby_takes_over(served: Served,
                                                          reader: KubernetesBackend,
                                                          tmp_path: Path) -> None:
    names = {f"app-{i}" for i in range(4)}
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "chain.yaml").write_text(CHAIN + "".join(workload(n) for n in sorted(names)))
    lease = "reconciler-leader-election"
    with ExitStack() as stack:
        first = _replica(stack, inputs, served, tmp_path / "first.log")
        wait_for("the first replica to lead", lambda: _leading(first, lease) or None)
        second = _replica(stack, inputs, served, tmp_path / "second.log")
        wait_for("every Workload Ready", lambda: _all_ready(reader, names), timeout=60)
        _stamped_once(reader, names)
        # The standby: warm, not leading, not one reconcile, not one owner status written.
        assert _master_status(second, lease) == 0
        assert _reconciles(first) > 0
        assert _reconciles(second) == 0
        assert _owners_written(second) == set()

        # kill -9 the leader: the standby takes the Lease once it expires.
        first.proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        first.proc.wait(timeout=10)
        # A change made while nobody leads is not lost.
        reader.apply({"apiVersion": "carto.run/v1alpha1", "kind": "Workload",
                      "metadata": {"name": "app-late", "namespace": "default",
                                   "labels": {"app.example.com/kind": "settings"}},
                      "spec": {"params": [{"name": "value", "value": "v-app-late"}]}},
                     "tester")
        wait_for("the standby to lead", lambda: _leading(second, lease) or None, timeout=10,
                 every=0.05)
        took_over = time.monotonic() - killed
        print(f"\ntakeover after kill -9: {took_over:.2f}s (lease duration 2s)")
        # The lease duration (2 s, whole seconds on the Lease), a retry period with jitter,
        # and the metrics scrape's own interval.
        assert took_over < 2 + 1 + 1.5, took_over
        wait_for("every Workload Ready", lambda: _all_ready(reader, names | {"app-late"}),
                 timeout=60)
        _stamped_once(reader, names | {"app-late"})
        assert "default/app-late" in _owners_written(second)
        # SIGTERM: workers drain, then the Lease is released (holder cleared).
        assert second.stop() == 0, second.stderr_tail()
        held = reader.get("coordination.k8s.io/v1", "Lease", "default", lease)
        assert held is not None
        assert not held["spec"].get("holderIdentity"), held["spec"]


def test_two_shards_split_the_workloads_by_label(served: Served, reader: KubernetesBackend,
                                                 tmp_path: Path) -> None:
    shard_of = {"a-1": "a", "a-2": "a", "b-1": "b", "b-2": "b"}
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "chain.yaml").write_text(
        CHAIN + "".join(workload(n, s) for n, s in sorted(shard_of.items())))
    with ExitStack() as stack:
        # The unsharded replica reconciles the cluster-scoped blueprints (and unlabelled
        # owners: none here); each shard its own Workloads, under a Lease of its own.
        main = _replica(stack, inputs, served, tmp_path / "main.log")
        shards = {key: _replica(stack, inputs, served, tmp_path / f"shard-{key}.log",
                                "--shard", key) for key in ("a", "b")}
        wait_for("every Workload Ready", lambda: _all_ready(reader, set(shard_of)), timeout=60)
        _stamped_once(reader, set(shard_of))
        for key, daemon in shards.items():
            assert _leading(daemon, f"reconciler-leader-election-shard-{key}")
            mine = {f"default/{n}" for n, s in shard_of.items() if s == key}
            assert _owners_written(daemon) == mine, key
        assert _leading(main, "reconciler-leader-election")
        assert _owners_written(main) == set()
        for daemon in (main, *shards.values()):
            assert daemon.stop() == 0, daemon.stderr_tail()
