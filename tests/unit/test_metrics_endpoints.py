"""OperationsServer over real HTTP on 127.0.0.1: metrics, health, debug objects, 404s."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from reconciler.observability.endpoints import EndpointsError, OperationsServer
from reconciler.observability.health import HealthState
from reconciler.observability.metrics import ReconcilerMetrics


def get(url: str, accept: str | None = None) -> tuple[int, str, str]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


@pytest.fixture
def health() -> HealthState:
    return HealthState(stall_after=60)


@pytest.fixture
def server(health: HealthState) -> Iterator[OperationsServer]:
    metrics = ReconcilerMetrics()
    metrics.observe_reconcile("workload-controller", "success", 0.01)

    def debug(query: Mapping[str, str]) -> Any:
        return {"objects": [{"kind": query.get("kind", "all")}]}

    srv = OperationsServer(metrics.registry, health, debug_objects=debug)
    srv.start()
    yield srv
    srv.stop()


def test_metrics_are_served_in_the_prometheus_text_format(server: OperationsServer) -> None:
    status, content_type, body = get(f"{server.url}/metrics")
    assert status == 200
    assert content_type.startswith("text/plain; version=")
    assert ('reconciler_reconcile_total{controller="workload-controller",result="success"} 1.0'
            in body)
    assert 'reconciler_workloads{ready="Unknown"} 0.0' in body


def test_metrics_speak_openmetrics_when_asked(server: OperationsServer) -> None:
    # What Prometheus sends: OpenMetrics first, the classic text format as a fallback.
    accept = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
              "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
    status, content_type, body = get(f"{server.url}/metrics", accept)
    assert status == 200
    assert content_type.startswith("application/openmetrics-text")
    assert body.endswith("# EOF\n")


@pytest.mark.parametrize(("path", "ready", "status", "reason"), [
    ("/healthz", False, 200, "ok"),
    ("/readyz", False, 503, "first reconcile tick not finished yet"),
    ("/readyz", True, 200, "ok"),
])
def test_health_endpoints_report_the_health_state(
    server: OperationsServer, health: HealthState, path: str, ready: bool, status: int,
    reason: str,
) -> None:
    if ready:
        health.tick_started()
        health.tick_finished()
    got_status, _, body = get(f"{server.url}{path}")
    assert (got_status, body.strip()) == (status, reason)


def test_debug_objects_passes_the_query_and_serves_json(server: OperationsServer) -> None:
    status, content_type, body = get(f"{server.url}/debug/objects?kind=Workload")
    assert (status, content_type) == (200, "application/json")
    assert json.loads(body) == {"objects": [{"kind": "Workload"}]}


@pytest.mark.parametrize("path", ["/", "/metricsx", "/debug/objects/../metrics", "/debug"])
def test_unknown_paths_are_404(server: OperationsServer, path: str) -> None:
    status, _, body = get(f"{server.url}{path}")
    assert status == 404
    assert "/metrics" in body


def test_an_address_in_use_is_a_clear_error(health: HealthState) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        srv = OperationsServer(ReconcilerMetrics().registry, health, port=port)
        with pytest.raises(EndpointsError, match=f"127.0.0.1:{port}.*--listen"):
            srv.start()
    with pytest.raises(EndpointsError, match="not started"):
        _ = srv.url
