"""Metrics: each reconcile recorded by result, cluster gauges, counters read at scrape time."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from reconciler.model.conditions import Condition, merge_conditions
from reconciler.model.errors import Stalled, Transient, Waiting
from reconciler.model.objects import Obj
from reconciler.observability.metrics import (
    CallbackCounter,
    CallbackCounters,
    InstrumentedController,
    ReconcilerMetrics,
    record_cluster,
    watched_kinds,
)
from reconciler.runtime.controller import Resync
from simulator.environment import SimulatedEnvironment


class Scripted:
    """A controller whose reconcile returns or raises what it is given."""

    name = "scripted"

    def __init__(self, outcome: float | Exception | None) -> None:
        self.outcome = outcome

    def watches(self) -> Sequence[tuple[str, str]]:
        return [("v1", "ConfigMap")]

    def reconcile(self, obj: Obj) -> float | None:
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


@pytest.mark.parametrize(("outcome", "result"), [
    (None, "success"),
    (5.0, "requeue"),
    (Resync(60.0), "success"),  # a periodic re-check (a Git poll) is not a requeue
    (Stalled("TemplateStampFailure", "no such template"), "stalled"),
    (Waiting("DependencyNotReady", "later"), "waiting"),
    (Transient("Unreachable", "reset"), "error"),
    (KeyError("bug"), "crash"),
])
def test_instrumented_controller_records_result_and_duration(
    outcome: float | Exception | None, result: str
) -> None:
    metrics = ReconcilerMetrics()
    wrapped = InstrumentedController(Scripted(outcome), metrics)
    assert wrapped.name == "scripted"
    assert wrapped.watches() == [("v1", "ConfigMap")]
    if isinstance(outcome, Exception):
        with pytest.raises(type(outcome)):
            wrapped.reconcile({})
    else:
        assert wrapped.reconcile({}) == outcome
    get = metrics.registry.get_sample_value
    assert get("reconciler_reconcile_total",
               {"controller": "scripted", "result": result}) == 1.0
    assert get("reconciler_reconcile_duration_seconds_count", {"controller": "scripted"}) == 1.0


def _workload(name: str, ready: str | None) -> Obj:
    wl: Obj = {"apiVersion": "carto.run/v1alpha1", "kind": "Workload",
               "metadata": {"name": name, "namespace": "default"}, "spec": {}}
    return wl if ready is None else {**wl, "status": {"conditions": merge_conditions(
        [], [Condition("Ready", ready, "Test", "")], "2026-01-01T00:00:00Z")}}


def test_record_cluster_counts_objects_and_workloads_by_ready() -> None:
    env = SimulatedEnvironment()
    for name, ready in [("a", "True"), ("b", "True"), ("c", "False"), ("d", None)]:
        created = env.cluster.apply(_workload(name, None))
        if ready is not None:
            env.cluster.update_status({**created, **_workload(name, ready)})
    metrics = ReconcilerMetrics()
    kinds = [("carto.run/v1alpha1", "Workload"), ("kpack.io/v1alpha2", "Image")]
    record_cluster(metrics, env.cluster, kinds)
    get = metrics.registry.get_sample_value
    assert {s: get("reconciler_workloads", {"ready": s}) for s in ("True", "False", "Unknown")} \
        == {"True": 2.0, "False": 1.0, "Unknown": 1.0}
    assert get("reconciler_deliverables", {"ready": "True"}) == 0.0
    assert get("reconciler_objects", {"group": "carto.run", "kind": "Workload"}) == 4.0
    assert get("reconciler_objects", {"group": "kpack.io", "kind": "Image"}) == 0.0


def test_every_ready_state_is_exported_before_the_first_tick() -> None:
    get = ReconcilerMetrics().registry.get_sample_value
    assert [get("reconciler_workloads", {"ready": s}) for s in ("True", "False", "Unknown")] \
        == [0.0, 0.0, 0.0]


def test_callback_counters_are_read_at_scrape_time() -> None:
    metrics = ReconcilerMetrics()
    calls = [0]
    metrics.registry.register(CallbackCounters([
        CallbackCounter("reconciler_git_fetch_calls", "fetches", lambda: calls[0])]))
    get = metrics.registry.get_sample_value
    assert get("reconciler_git_fetch_calls_total") == 0.0
    calls[0] = 3
    assert get("reconciler_git_fetch_calls_total") == 3.0


def test_watched_kinds_keeps_one_version_per_group_and_kind() -> None:
    class Watcher(Scripted):
        def __init__(self, watches: list[tuple[str, str]]) -> None:
            super().__init__(None)
            self._watches = watches

        def watches(self) -> Sequence[tuple[str, str]]:
            return self._watches

    kinds = watched_kinds([
        Watcher([("kpack.io/v1alpha2", "Image"), ("v1", "ConfigMap")]),
        Watcher([("kpack.io/v1alpha1", "Image"), ("serving.knative.dev/v1", "Service"),
                 ("v1", "Service")]),
    ])
    assert kinds == [("v1", "ConfigMap"), ("v1", "Service"), ("kpack.io/v1alpha2", "Image"),
                     ("serving.knative.dev/v1", "Service")]


def test_work_queue_metrics_have_controller_runtime_names() -> None:
    from reconciler.runtime.ratelimit import ExponentialBackoff
    from reconciler.runtime.workqueue import WorkQueue

    metrics = ReconcilerMetrics()
    ticks = iter(float(t) for t in range(100))
    queue: WorkQueue[str] = WorkQueue("workload-controller", lambda: 0.0, ExponentialBackoff(),
                                      metrics.workqueues.for_queue("workload-controller"),
                                      monotonic=lambda: next(ticks))
    metrics.workqueues.watch(queue)
    queue.add("a")
    queue.add("b")
    assert queue.get(timeout=0) == "a"
    queue.add_rate_limited("c")
    get = metrics.registry.get_sample_value
    name = {"name": "workload-controller"}
    assert get("workqueue_adds_total", name) == 2.0
    assert get("workqueue_depth", name) == 1.0
    assert get("workqueue_retries_total", name) == 1.0
    assert get("workqueue_queue_duration_seconds_count", name) == 1.0
    assert (get("workqueue_unfinished_work_seconds", name) or 0) > 0
    assert (get("workqueue_longest_running_processor_seconds", name) or 0) > 0
    queue.done("a")
    assert get("workqueue_work_duration_seconds_count", name) == 1.0
    assert get("workqueue_unfinished_work_seconds", name) == 0.0
