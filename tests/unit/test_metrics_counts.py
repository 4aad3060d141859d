"""The daemon's object and readiness gauges come from counts kept as objects change
(`ResourceInfo.count`, `record_counts`): the same figures as listing every object
(`record_cluster`), through creation, status changes and deletion."""

from __future__ import annotations

from reconciler.observability.metrics import (
    ReconcilerMetrics,
    counted_kinds,
    record_cluster,
    record_counts,
)
from reconciler.observability.resource_info import ResourceInfo
from simulator.environment import SimulatedEnvironment
from tests.unit.test_metrics import _workload

KINDS = [("carto.run/v1alpha1", "Workload"), ("kpack.io/v1alpha2", "Image")]


def _gauges(metrics: ReconcilerMetrics) -> dict[str, float | None]:
    get = metrics.registry.get_sample_value
    out = {f"workloads/{s}": get("reconciler_workloads", {"ready": s})
           for s in ("True", "False", "Unknown")}
    out |= {f"deliverables/{s}": get("reconciler_deliverables", {"ready": s})
            for s in ("True", "False", "Unknown")}
    out |= {f"objects/{k}": get("reconciler_objects", {"group": g, "kind": k})
            for g, k in (("carto.run", "Workload"), ("kpack.io", "Image"))}
    return out


def _both(env: SimulatedEnvironment, counts: ResourceInfo) -> tuple[dict[str, float | None],
                                                                    dict[str, float | None]]:
    listed, kept = ReconcilerMetrics(), ReconcilerMetrics()
    record_cluster(listed, env.cluster, KINDS)
    record_counts(kept, counts, KINDS)
    return _gauges(listed), _gauges(kept)


def test_kept_counts_equal_a_full_listing_through_changes() -> None:
    env = SimulatedEnvironment()
    env.cluster.apply(_workload("before", None))  # there before tracking: counted by its list
    counts = ResourceInfo((), counted_kinds(KINDS))
    assert counts.track(env.cluster) == 1
    for name, ready in [("a", "True"), ("b", "True"), ("c", "False"), ("d", None)]:
        created = env.cluster.apply(_workload(name, None))
        if ready is not None:
            env.cluster.update_status({**created, **_workload(name, ready)})
    listed, kept = _both(env, counts)
    assert kept == listed
    assert kept["workloads/True"] == 2.0 and kept["workloads/Unknown"] == 2.0
    assert kept["objects/Workload"] == 5.0 and kept["objects/Image"] == 0.0
    live = env.cluster.get("carto.run/v1alpha1", "Workload", "default", "c")
    assert live is not None
    env.cluster.update_status({**live, **_workload("c", "True")})
    env.cluster.delete("carto.run/v1alpha1", "Workload", "default", "a")
    env.cluster.delete("carto.run/v1alpha1", "Workload", "default", "before")
    listed, kept = _both(env, counts)
    assert kept == listed
    assert (kept["workloads/True"], kept["workloads/False"], kept["objects/Workload"]) == (
        2.0, 0.0, 3.0)
