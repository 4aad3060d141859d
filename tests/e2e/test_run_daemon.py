"""`reconciler run` as an operator runs it: the paved path on the real clock, artifacts over
HTTP, metrics, a second commit flowing through, and a graceful SIGTERM."""

from __future__ import annotations

import hashlib
import http.client
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import EXAMPLES, GitRepo
from tests.e2e.daemon_harness import (
    DaemonProcess,
    http_get,
    paved_path_copy,
    running_daemon,
    sample,
    wait_for,
)

pytestmark = pytest.mark.e2e

# 20 simulated seconds per real one: the simulated 30 s image build takes 1.5 s.
FAST = ["--listen", "127.0.0.1:0", "--artifacts-listen", "127.0.0.1:0", "--tick", "0.2",
        "--time-scale", "20"]


@pytest.fixture
def app_repo(make_repo: Callable[..., GitRepo]) -> GitRepo:
    app = EXAMPLES / "paved-path" / "developer" / "app"
    return make_repo("band-service", {p.name: p.read_text() for p in app.iterdir()})


@pytest.fixture
def app_url(app_repo: GitRepo, serve_repo: Callable[[GitRepo], str]) -> str:
    return serve_repo(app_repo)


def _workload_source_revision(daemon: DaemonProcess) -> str | None:
    """The source revision of a Ready band-service workload, else None."""
    for wl in daemon.objects("Workload"):
        status = wl.get("status") or {}
        ready = [c for c in status.get("conditions", []) if c["type"] == "Ready"]
        if (wl["metadata"]["name"] != "band-service" or not ready
                or ready[0]["status"] != "True"
                or status.get("observedGeneration") != wl["metadata"]["generation"]):
            return None
        for resource in status.get("resources", []):
            if resource["name"] == "source-provider":
                outputs = {o["name"]: o["preview"].strip() for o in resource.get("outputs", [])}
                return outputs.get("revision")
    return None


def _git_artifact(daemon: DaemonProcess) -> dict[str, Any]:
    repos = daemon.objects("GitRepository")
    assert [r["metadata"]["name"] for r in repos] == ["band-service"]
    return dict(repos[0]["status"]["artifact"])


def _raw_status(base_url: str, raw_path: str) -> int:
    # http.client sends the path verbatim, so `..` reaches the server unnormalized.
    conn = http.client.HTTPConnection(urlsplit(base_url).netloc, timeout=5)
    try:
        conn.request("GET", raw_path)
        return conn.getresponse().status
    finally:
        conn.close()


def test_run_reconciles_serves_artifacts_and_stops_gracefully(
    app_repo: GitRepo, app_url: str, tmp_path: Path
) -> None:
    inputs = paved_path_copy(tmp_path / "paved-path", poll_interval="2s")
    state = tmp_path / "state.json"
    args = [str(inputs), *FAST, "--state", str(state), "--data-dir", str(tmp_path / "data")]
    with running_daemon(args, tmp_path / "daemon.log", {"APP_REPO_URL": app_url}) as daemon:
        assert http_get(f"{daemon.ops_url}/healthz")[0] == 200

        # Ready is reported in the metrics an operator scrapes.
        wait_for("the workload to be Ready in /metrics", lambda: sample(
            daemon.metrics(), "reconciler_workloads", ready="True") == 1.0 or None)
        assert http_get(f"{daemon.ops_url}/readyz")[0] == 200
        sha1 = app_repo.git("rev-parse", "HEAD")
        assert wait_for("the workload's first revision",
                        lambda: _workload_source_revision(daemon)) == f"main@sha1:{sha1}"

        # status.artifact.url is fetchable and its bytes match status.artifact.digest.
        artifact = _git_artifact(daemon)
        assert artifact["revision"] == f"main@sha1:{sha1}"
        assert artifact["url"].startswith(daemon.artifacts_url + "/")
        status, body = http_get(artifact["url"])
        assert status == 200
        assert f"sha256:{hashlib.sha256(body).hexdigest()}" == artifact["digest"]

        # Nothing outside the store is served, however the path is spelled.
        for raw in ("/../state.json", "/%2e%2e/state.json", "/gitrepository/../../state.json"):
            assert _raw_status(daemon.artifacts_url, raw) == 403, raw

        # A new commit is picked up by polling and flows through the whole chain.
        sha2 = app_repo.commit({"VERSION": "1.1.0\n"}, "release 1.1.0")
        assert wait_for("the second revision to flow through",
                        lambda: _workload_source_revision(daemon)
                        if _workload_source_revision(daemon) == f"main@sha1:{sha2}" else None)
        second = _git_artifact(daemon)
        assert second["digest"] != artifact["digest"]
        status, body = http_get(second["url"])
        assert f"sha256:{hashlib.sha256(body).hexdigest()}" == second["digest"]

        metrics = daemon.metrics()
        for name, labels, at_least in [
            # A poll on the interval is a success, not a requeue (issue 10).
            ("reconciler_reconcile_total", {"controller": "source-controller",
                                            "result": "success"}, 2),
            ("reconciler_reconcile_duration_seconds_count",
             {"controller": "workload-controller"}, 1),
            ("reconciler_git_ls_remote_calls_total", {}, 2),
            ("reconciler_git_fetch_calls_total", {}, 2),
            ("reconciler_reconcile_skipped_total", {}, 1),
            ("reconciler_artifact_requests_total", {"outcome": "served"}, 2),
            ("reconciler_artifact_requests_total", {"outcome": "forbidden"}, 3),
            ("reconciler_objects", {"group": "carto.run", "kind": "Workload"}, 1),
            ("reconciler_ticks_total", {"result": "ok"}, 2),
        ]:
            value = sample(metrics, name, **labels)
            assert value is not None and value >= at_least, (name, labels, value)
        assert sample(metrics, "reconciler_workloads", ready="False") == 0.0
        # The work queues' metrics, under controller-runtime's names.
        for series in ('workqueue_adds_total{name="workload-controller"}',
                       'workqueue_work_duration_seconds_count{name="source-controller"}',
                       'workqueue_depth{name="kustomize-controller"}',
                       'workqueue_unfinished_work_seconds{name="workload-controller"}'):
            assert series in metrics, series

        assert daemon.stop() == 0, daemon.stderr_tail()

    events = [e["msg"] for e in daemon.log_events()]
    # Stopped in order, the state saved before the servers went (other lines, from work that
    # was finishing, may come between them).
    after = events[events.index("shutting down"):]
    steps = ["shutting down", "state saved", "operations server stopped",
             "artifact server stopped", "daemon stopped"]
    assert [e for e in after if e in steps] == steps, after
    assert events[-1] == "daemon stopped"
    saved = json.loads(state.read_text())
    assert f"main@sha1:{sha2}" in json.dumps(saved)


def test_run_refuses_local_repositories(app_repo: GitRepo, tmp_path: Path) -> None:
    """A tenant's GitRepository must not read the daemon's host: a local path or file:// URL
    stalls with URLSchemeNotAllowed, and the Workload over it is not Ready."""
    inputs = paved_path_copy(tmp_path / "paved-path", poll_interval="2s")
    for url in (app_repo.url, str(app_repo.path)):
        with running_daemon([str(inputs), *FAST], tmp_path / "daemon.log",
                            {"APP_REPO_URL": url}) as daemon:
            def stalled() -> dict[str, Any] | None:
                repos = daemon.objects("GitRepository")
                conditions = repos[0].get("status", {}).get("conditions", []) if repos else []
                return next((c for c in conditions if c["type"] == "Ready"
                             and c["reason"] == "URLSchemeNotAllowed"), None)

            ready = wait_for("the GitRepository to stall", stalled)
            assert ready["status"] == "False"
            assert "not allowed here" in ready["message"]
            workloads = daemon.objects("Workload")
            assert all(c["status"] != "True" for w in workloads
                       for c in w.get("status", {}).get("conditions", []) if c["type"] == "Ready")
            assert daemon.stop() == 0


def test_run_refuses_an_address_in_use(
    app_repo: GitRepo, app_url: str, tmp_path: Path, cli: Callable[..., Any],
) -> None:
    inputs = paved_path_copy(tmp_path / "paved-path", poll_interval="2s")
    with running_daemon([str(inputs), *FAST], tmp_path / "first.log",
                        {"APP_REPO_URL": app_url}) as first:
        taken = urlsplit(first.ops_url).netloc
        result = cli("run", str(inputs), "--listen", taken, "--artifacts-listen", "127.0.0.1:0",
                     env={"APP_REPO_URL": app_url})
        assert result.code == 2, result.stderr
        assert f"cannot serve metrics and health on {taken}" in result.stderr
        assert "--listen" in result.stderr
        assert first.stop() == 0
