"""The daemon's Prometheus metrics: their names, labels and help texts, and how they are fed.

Everything lives in one `CollectorRegistry` owned by `ReconcilerMetrics` (never the process-wide
default), so two daemons in one test process do not share counters. Four ways in:
- the drivers report each reconcile's result (`reconciler.runtime.outcome`: the same outcome
  that steers its retry) and duration through `observe_reconcile`; `InstrumentedController`
  does the same for a controller run outside them;
- each work queue reports through `WorkqueueMetrics.for_queue`, under controller-runtime's
  `workqueue_*` names with a `name` label (the controller's);
- `record_counts` sets the object and readiness gauges, once per tick, from counts a
  `ResourceInfo` keeps as objects change (`record_cluster`, which lists every object to count
  them, is what the daemon did before; the tests and benchmarks compare against it);
- `CallbackCounters` exposes counters other components already keep (Git network calls,
  skipped reconciles) by reading them at scrape time;
- `resource_info` (`reconciler_resource_info`, one series per managed object, as Flux's
  `gotk_resource_info`) follows the objects' changes once the daemon `track`s its backend.
The registry also holds the process, platform and garbage-collector collectors (`process_*`,
`python_*`), and no counter or histogram exports a `_created` series
(`disable_created_metrics`: a start time per label set that no dashboard reads, and doubles the
series count).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from reconciler import __version__
from reconciler.backends.base import Backend
from reconciler.chains.blueprint import CARTO_API
from reconciler.model.errors import BackendError
from reconciler.model.objects import GroupVersionKind, Obj
from reconciler.observability.resource_info import ResourceInfo
from reconciler.report import owner_ready
from reconciler.runtime.controller import Controller, Resync
from reconciler.runtime.outcome import Result, classify
from reconciler.runtime.workqueue import WorkQueue

# Reconcile results, as controller-runtime names them where it has a name for them.
SUCCESS, REQUEUE, ERROR, CRASH = "success", "requeue", "error", "crash"
STALLED, WAITING = "stalled", "waiting"
READY_STATES = ("True", "False", "Unknown")
# Git fetches and image builds take seconds; most reconciles take milliseconds.
_DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Time in a work queue: from microseconds when idle to minutes when a backlog builds up.
_QUEUE_BUCKETS = (0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0)


class ReconcilerMetrics:
    """Every metric the daemon exports, registered in its own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        # Process-wide in prometheus_client, read when a sample is collected.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = registry or CollectorRegistry()
        r = self.registry
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            r.register(collector)
        self.reconcile_total = Counter(
            "reconciler_reconcile_total",
            "Reconciles by controller and result (success, requeue, error, stalled, waiting, "
            "crash).",
            ["controller", "result"], registry=r)
        self.reconcile_duration = Histogram(
            "reconciler_reconcile_duration_seconds", "Time one reconcile took, by controller.",
            ["controller"], buckets=_DURATION_BUCKETS, registry=r)
        self.ticks_total = Counter(
            "reconciler_ticks_total", "Reconcile ticks by result (ok, failed).", ["result"],
            registry=r)
        self.rounds_total = Counter(
            "reconciler_rounds_total", "Reconcile rounds run (a tick runs rounds until one "
            "changes nothing).", registry=r)
        self.tick_duration = Histogram(
            "reconciler_tick_duration_seconds", "Time one tick took (all its rounds).",
            buckets=_DURATION_BUCKETS, registry=r)
        self.objects = Gauge(
            "reconciler_objects", "Objects in the cluster, by the kinds the controllers watch.",
            ["group", "kind"], registry=r)
        self.workloads = Gauge(
            "reconciler_workloads", "Workloads by their Ready condition (True, False, Unknown).",
            ["ready"], registry=r)
        self.deliverables = Gauge(
            "reconciler_deliverables",
            "Deliverables by their Ready condition (True, False, Unknown).", ["ready"],
            registry=r)
        self.artifact_requests = Counter(
            "reconciler_artifact_requests_total",
            "Artifact server lookups by outcome (served, forbidden, not_found).", ["outcome"],
            registry=r)
        self.build_info = Gauge(
            "reconciler_build_info", "Always 1; the version in a label.", ["version"],
            registry=r)
        self.build_info.labels(version=__version__).set(1)
        for state in READY_STATES:
            # Present from the first scrape, so a query for a state never comes back empty.
            self.workloads.labels(ready=state).set(0)
            self.deliverables.labels(ready=state).set(0)

        self.workqueues = WorkqueueMetrics(r)
        self.resource_info = ResourceInfo()
        """`reconciler_resource_info`; the daemon calls `resource_info.track(backend)`."""
        r.register(self.resource_info)

    def observe_reconcile(self, controller: str, result: str, seconds: float) -> None:
        self.reconcile_total.labels(controller=controller, result=str(result)).inc()
        self.reconcile_duration.labels(controller=controller).observe(seconds)


class WorkqueueMetrics:
    """controller-runtime's work-queue metrics, one `name` label per queue."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.depth = Gauge("workqueue_depth", "Current depth of the work queue (keys ready).",
                           ["name"], registry=registry)
        self.adds = Counter("workqueue_adds_total", "Adds handled by the work queue.",
                            ["name"], registry=registry)
        self.queue_duration = Histogram(
            "workqueue_queue_duration_seconds",
            "How long a key stays in the work queue before it is handed to a worker.",
            ["name"], buckets=_QUEUE_BUCKETS, registry=registry)
        self.work_duration = Histogram(
            "workqueue_work_duration_seconds",
            "How long processing a key from the work queue takes.",
            ["name"], buckets=_QUEUE_BUCKETS, registry=registry)
        self.retries = Counter("workqueue_retries_total",
                               "Retries (rate-limited adds) handled by the work queue.",
                               ["name"], registry=registry)
        self._queues: list[WorkQueue[object]] = []
        registry.register(_InFlightCollector(self._queues))

    def for_queue(self, queue_name: str) -> _QueueSink:
        """The sink a queue named `queue_name` reports to (pass it to `WorkQueue`)."""
        return _QueueSink(self, queue_name)

    def watch(self, queue: WorkQueue[Any]) -> None:
        """Read `queue`'s work in flight at scrape time (unfinished and longest running)."""
        self._queues.append(queue)


class _QueueSink:
    def __init__(self, metrics: WorkqueueMetrics, name: str) -> None:
        self._depth = metrics.depth.labels(name=name)
        self._adds = metrics.adds.labels(name=name)
        self._queued = metrics.queue_duration.labels(name=name)
        self._worked = metrics.work_duration.labels(name=name)
        self._retries = metrics.retries.labels(name=name)
        self._depth.set(0)

    def added(self) -> None:
        self._adds.inc()

    def depth(self, value: int) -> None:
        self._depth.set(value)

    def queued_for(self, seconds: float) -> None:
        self._queued.observe(seconds)

    def worked_for(self, seconds: float) -> None:
        self._worked.observe(seconds)

    def retried(self) -> None:
        self._retries.inc()


class _InFlightCollector(Collector):
    """`workqueue_unfinished_work_seconds` and `workqueue_longest_running_processor_seconds`,
    computed from the queues when scraped (client-go updates them on a timer instead)."""

    def __init__(self, queues: Sequence[WorkQueue[Any]]) -> None:
        self._queues = queues

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (GaugeMetricFamily(
                    "workqueue_unfinished_work_seconds",
                    "Seconds of work in progress not yet observed by work_duration; large "
                    "values mean stuck workers.", labels=["name"]),
                GaugeMetricFamily(
                    "workqueue_longest_running_processor_seconds",
                    "How long the longest-running worker of the queue has been processing its "
                    "key.", labels=["name"]))

    def collect(self) -> Iterator[Metric]:
        unfinished, longest = self._families()
        for queue in list(self._queues):
            unfinished.add_metric([queue.name], queue.unfinished_work_seconds())
            longest.add_metric([queue.name], queue.longest_running_seconds())
        yield unfinished
        yield longest

    def describe(self) -> Iterator[Metric]:
        yield from self._families()


class InstrumentedController:
    """A controller that records the result and duration of each reconcile of the one it wraps,
    for a controller run outside the drivers (which report outcomes themselves).

    It keeps the wrapped controller's `name`, so the runner's read tracking (keyed by name)
    treats it as the same controller; exceptions pass through untouched for the runner to handle.
    """

    def __init__(self, inner: Controller, metrics: ReconcilerMetrics) -> None:
        self.inner = inner
        self.name = inner.name
        self._metrics = metrics

    def watches(self) -> Sequence[tuple[str, str]]:
        return self.inner.watches()

    def reconcile(self, obj: Obj) -> float | None:
        started = time.perf_counter()
        after: float | None = None
        error: BaseException | None = None
        try:
            after = self.inner.reconcile(obj)
            return after
        except Exception as exc:
            error = exc
            raise
        finally:
            result: Result = classify(after, error, resync=isinstance(after, Resync)).result
            self._metrics.observe_reconcile(self.name, result, time.perf_counter() - started)


def watched_kinds(controllers: Iterable[Controller]) -> list[tuple[str, str]]:
    """One (apiVersion, kind) per group and kind the controllers watch, in a stable order."""
    seen: dict[tuple[str, str], str] = {}
    for controller in controllers:
        for api_version, kind in controller.watches():
            group = GroupVersionKind.parse(api_version, kind).group
            seen.setdefault((group, kind), api_version)
    return [(api_version, kind) for (_, kind), api_version in sorted(seen.items())]


def record_cluster(
    metrics: ReconcilerMetrics, backend: Backend, kinds: Sequence[tuple[str, str]]
) -> None:
    """Set the object and readiness gauges from the cluster as it is now."""
    for api_version, kind in kinds:
        try:
            count = len(backend.list(api_version, kind))
        except BackendError:
            continue  # a kind whose CRD is not installed (yet): no objects to count
        group = GroupVersionKind.parse(api_version, kind).group
        metrics.objects.labels(group=group, kind=kind).set(count)
    for kind, gauge in (("Workload", metrics.workloads), ("Deliverable", metrics.deliverables)):
        counts = dict.fromkeys(READY_STATES, 0)
        for owner in backend.list(CARTO_API, kind):
            state = owner_ready(owner)[0]
            counts[state if state in counts else "Unknown"] += 1
        for state, count in counts.items():
            gauge.labels(ready=state).set(count)


OWNER_KINDS = (("Workload", "workloads"), ("Deliverable", "deliverables"))


def counted_kinds(kinds: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """What `record_counts` needs counted: `kinds` and the owners' kinds."""
    return [*kinds, *((CARTO_API, kind) for kind, _ in OWNER_KINDS)]


def record_counts(
    metrics: ReconcilerMetrics, counts: ResourceInfo, kinds: Sequence[tuple[str, str]]
) -> None:
    """Set the object and readiness gauges from `counts` (a `ResourceInfo` over
    `counted_kinds(kinds)`, tracking the cluster): the same figures as `record_cluster`, at a
    cost that does not grow with the objects."""
    for api_version, kind in kinds:
        group = GroupVersionKind.parse(api_version, kind).group
        metrics.objects.labels(group=group, kind=kind).set(counts.count(group, kind))
    group = GroupVersionKind.parse(CARTO_API, "Workload").group
    for kind, attr in OWNER_KINDS:
        gauge: Gauge = getattr(metrics, attr)
        for state in READY_STATES:
            gauge.labels(ready=state).set(counts.count(group, kind, state))


@dataclass(frozen=True)
class CallbackCounter:
    name: str
    """Without `_total`: the exposition adds it."""
    documentation: str
    read: Callable[[], float]


class CallbackCounters(Collector):
    """Counters whose values another component keeps; read when Prometheus scrapes."""

    def __init__(self, counters: Sequence[CallbackCounter]) -> None:
        self._counters = list(counters)

    def collect(self) -> Iterator[Metric]:
        for counter in self._counters:
            yield CounterMetricFamily(counter.name, counter.documentation, value=counter.read())

    def describe(self) -> Iterator[Metric]:
        # Describing without reading lets the registry check names at registration.
        for counter in self._counters:
            yield CounterMetricFamily(counter.name, counter.documentation)
