"""A real Prometheus server scrapes `reconciler run`'s /metrics and answers queries about it;
`promtool check metrics` finds nothing to complain about in a scrape; the JSON log has the keys
operators' pipelines expect."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from tests.conftest import EXAMPLES, GitRepo
from tests.e2e.daemon_harness import (
    http_get,
    paved_path_copy,
    running_daemon,
    sample,
    wait_for,
)

pytestmark = pytest.mark.e2e

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")


def _free_port() -> int:
    # Prometheus cannot report a port it chose itself; a just-freed one is good enough here.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def app_repo(make_repo: Callable[..., GitRepo]) -> GitRepo:
    app = EXAMPLES / "paved-path" / "developer" / "app"
    return make_repo("band-service", {p.name: p.read_text() for p in app.iterdir()})


@pytest.fixture
def app_url(app_repo: GitRepo, serve_repo: Callable[[GitRepo], str]) -> str:
    return serve_repo(app_repo)


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Starts Prometheus scraping one target every second; yields `start(target) -> api url`."""
    if PROMETHEUS is None:
        pytest.skip("the prometheus binary is not installed (Debian package `prometheus`; "
                    ".ci/run installs it)")
    procs: list[subprocess.Popen[bytes]] = []

    def start(target: str) -> str:
        config = tmp_path / "prometheus.yml"
        config.write_text(json.dumps({  # JSON is YAML, and needs no quoting care
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "reconciler",
                                "static_configs": [{"targets": [target]}]}],
        }))
        # The free port can be taken by someone else before Prometheus binds it; then
        # Prometheus exits, and another port is tried.
        for _attempt in range(3):
            port = _free_port()
            log_path = tmp_path / f"prometheus-{port}.log"
            with log_path.open("wb") as log:
                proc = subprocess.Popen(
                    [str(PROMETHEUS), f"--config.file={config}",
                     f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                     f"--web.listen-address=127.0.0.1:{port}"],
                    stdout=log, stderr=subprocess.STDOUT)
            procs.append(proc)
            api = f"http://127.0.0.1:{port}"

            def ready(proc: subprocess.Popen[bytes] = proc, api: str = api) -> str | None:
                if proc.poll() is not None:
                    return "exited"
                return "ready" if http_get(f"{api}/-/ready")[0] == 200 else None

            if wait_for("Prometheus to be ready", ready) == "ready":
                return api
        raise AssertionError(f"Prometheus did not start:\n{log_path.read_text()[-2000:]}")

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _query(api: str, promql: str) -> list[dict[str, Any]]:
    status, body = http_get(f"{api}/api/v1/query?query={quote(promql)}")
    assert status == 200, body
    doc = json.loads(body)
    assert doc["status"] == "success", doc
    return list(doc["data"]["result"])


def test_prometheus_scrapes_the_daemon(
    app_repo: GitRepo, app_url: str, tmp_path: Path, prometheus: Callable[[str], str]
) -> None:
    inputs = paved_path_copy(tmp_path / "paved-path", poll_interval="2s")
    args = [str(inputs), "--listen", "127.0.0.1:0", "--artifacts-listen", "127.0.0.1:0",
            "--tick", "0.2", "--time-scale", "20"]
    with running_daemon(args, tmp_path / "daemon.log", {"APP_REPO_URL": app_url}) as daemon:
        api = prometheus(urlsplit(daemon.ops_url).netloc)

        try:
            ready = wait_for("Prometheus to see the Ready workload", lambda: [
                r for r in _query(api, 'reconciler_workloads{ready="True"}')
                if r["value"][1] == "1"] or None)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nworkloads: {_query(api, 'reconciler_workloads')}\n"
                                 f"targets up: {_query(api, 'up')}\n"
                                 f"daemon log:\n{daemon.stderr_tail()}") from None
        assert ready[0]["metric"]["job"] == "reconciler"
        assert ready[0]["metric"]["__name__"] == "reconciler_workloads"

        targets = _query(api, "up")
        assert [t["value"][1] for t in targets] == ["1"]
        assert _query(api, 'reconciler_reconcile_total{controller="workload-controller"}')
        # The per-object info metric is what an alert is written on.
        info = wait_for("Prometheus to see the Ready workload's info series", lambda: _query(
            api, 'reconciler_resource_info{kind="Workload",ready="True"} == 1') or None)
        assert info[0]["metric"]["name"] == "band-service"
        assert not _query(api, 'reconciler_resource_info{kind="Workload",ready!="True"}')
        assert _query(api, "process_resident_memory_bytes")
        assert daemon.stop() == 0, daemon.stderr_tail()


def _promtool_problems(text: str) -> str:
    assert PROMTOOL is not None
    run = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(),
                         capture_output=True, timeout=60)
    problems = (run.stdout + run.stderr).decode().strip()
    return problems if run.returncode != 0 or problems else ""


def test_promtool_checks_the_daemons_metrics(
    app_repo: GitRepo, app_url: str, tmp_path: Path
) -> None:
    if PROMTOOL is None:
        pytest.skip("promtool is not installed (Debian package `prometheus` ships it; "
                    ".ci/run installs it)")
    inputs = paved_path_copy(tmp_path / "paved-path", poll_interval="2s")
    args = [str(inputs), "--listen", "127.0.0.1:0", "--artifacts-listen", "127.0.0.1:0",
            "--tick", "0.2", "--time-scale", "20"]
    with running_daemon(args, tmp_path / "daemon.log", {"APP_REPO_URL": app_url}) as daemon:
        # Once the workload is Ready every family has samples: reconciles of every controller,
        # queue histograms, Git calls, the info series with a revision.
        text = wait_for("the workload to be Ready", lambda: (
            m if sample(m := daemon.metrics(), "reconciler_resource_info", kind="Workload",
                        ready="True") == 1.0 else None), timeout=60)
        assert _promtool_problems(text) == "", text
        assert "_created" not in text
        for name in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                     "python_info", "reconciler_build_info"):
            assert sample(text, name) is not None, name
        git = [line for line in text.splitlines()
               if line.startswith('reconciler_resource_info{kind="GitRepository"')]
        assert len(git) == 1 and 'revision="main@sha1:' in git[0], git
        assert daemon.stop() == 0, daemon.stderr_tail()

    lines = daemon.log_events()
    assert lines and all(list(line)[:3] == ["ts", "level", "msg"] and "logger" in line
                         for line in lines), lines[:3]
    reconciles = [line for line in lines if "reconcileID" in line]
    assert reconciles, "no line logged during a reconcile"
    assert all(line["controller"] and line["name"] and "namespace" in line
               for line in reconciles)
