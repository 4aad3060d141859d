"""`promtool check metrics` on every family the daemon can export, each with samples (the e2e
test checks a live daemon's scrape; this one also covers the webhook receiver's counter)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from prometheus_client.exposition import generate_latest

from reconciler.model.conditions import Condition, merge_conditions
from reconciler.notification.metrics import ReceiverMetrics
from reconciler.observability.metrics import CallbackCounter, CallbackCounters, ReconcilerMetrics

PROMTOOL = shutil.which("promtool")


def test_promtool_finds_no_problem_in_the_exposition() -> None:
    if PROMTOOL is None:
        pytest.skip("promtool is not installed (Debian package `prometheus` ships it; "
                    ".ci/run installs it)")
    metrics = ReconcilerMetrics()
    metrics.observe_reconcile("workload-controller", "success", 0.01)
    metrics.ticks_total.labels(result="ok").inc()
    metrics.tick_duration.observe(0.1)
    metrics.rounds_total.inc()
    metrics.objects.labels(group="carto.run", kind="Workload").set(1)
    metrics.artifact_requests.labels(outcome="served").inc()
    sink = metrics.workqueues.for_queue("workload-controller")
    sink.added()
    sink.queued_for(0.01)
    sink.worked_for(0.02)
    sink.retried()
    ReceiverMetrics(metrics.registry).count("accepted")
    metrics.registry.register(CallbackCounters([
        CallbackCounter("reconciler_git_fetch_calls", "git fetches.", lambda: 2)]))
    metrics.resource_info.observe({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"name": "app", "namespace": "default"},
        "status": {"artifact": {"revision": "main@sha1:abc"}, "conditions": merge_conditions(
            [], [Condition("Ready", "True", "Succeeded", "")], "2026-01-01T00:00:00Z")}})
    text = generate_latest(metrics.registry)
    run = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                         timeout=60)
    assert (run.returncode, run.stdout + run.stderr) == (0, b""), text.decode()
