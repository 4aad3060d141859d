"""One `simulate` run: apply input objects to an environment and drive controllers to settle."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from reconciler.backends.base import Backend
from reconciler.chains.blueprint import CARTO_API
from reconciler.diff.changeset import (
    ChangeAction,
    ChangeSet,
    ObjectChange,
    plan_deletion,
    plan_object,
)
from reconciler.diff.compare import comparable, is_subset
from reconciler.engine.runnable import runnable_settled
from reconciler.engine.runner import Environment, RunReport, run_until_settled
from reconciler.engine.sources import GitRepositoryReconciler
from reconciler.engine.tracking import TrackingBackend
from reconciler.engine.wiring import load_environment, product_controllers
from reconciler.loader import LoadedObject
from reconciler.model.annotations import SUSPEND_ANNOTATION
from reconciler.model.conditions import find_condition
from reconciler.model.errors import BackendError, InputError
from reconciler.model.limits import DEFAULT_LIMITS, Limits
from reconciler.model.objects import Obj, ObjectKey, deep_copy, describe
from reconciler.report import owner_ready
from reconciler.runtime.controller import Controller, Polling
from reconciler.runtime.gctuning import sampled_young_collections, tune_after_load
from reconciler.settings import SimulateSettings, SourceSettings

CARTO_GROUP = CARTO_API.split("/")[0]

log = structlog.get_logger(__name__)

# Kinds an API server needs before the objects that use them: namespaces, then CRDs.
_FIRST = {"Namespace": 0, "CustomResourceDefinition": 1}


@dataclass(frozen=True)
class RunProgress:
    """Where a run to settle is, told before each round (`simulate(progress=...)`)."""

    rounds: int
    virtual_seconds: float
    count: Callable[[], tuple[int, int]]
    """(settled, total) of the Workloads and Runnables: lists them, so call it only to show."""


ProgressHook = Callable[[RunProgress], None]


@dataclass(frozen=True)
class SimulationResult:
    report: RunReport
    workloads: list[Obj]
    """The Workloads; from a simulated cluster, the very dicts `objects` holds them in."""
    objects: list[Obj]
    events: list[Obj]

    @property
    def ready(self) -> bool:
        """Every Workload is Ready, and no reconcile of any object ended in a crash (a bug)."""
        return (all(owner_ready(w)[0] == "True" for w in self.workloads)
                and not self.report.crashed)

    @property
    def summary(self) -> str:
        ready = sum(owner_ready(w)[0] == "True" for w in self.workloads)
        text = (f"{ready}/{len(self.workloads)} workloads Ready after "
                f"{self.report.virtual_seconds:g}s of virtual time "
                f"({self.report.rounds} rounds; {self.report.reason})")
        if self.report.crashed:
            text += f"; {len(self.report.crashed)} reconcile(s) crashed: " + "; ".join(
                self.report.crashed)
        return text

    def document(self) -> dict[str, Any]:
        # A Workload in both lists is one dict: it would print as a YAML alias of itself.
        # Copied here, for the documents that print it, not by every `simulate`.
        return {
            "workloads": [deep_copy(w) for w in self.workloads] if self.objects else (
                self.workloads),
            "objects": self.objects,
            "events": self.events,
            "summary": {"ready": self.ready, "rounds": self.report.rounds,
                        "virtualSeconds": self.report.virtual_seconds,
                        "reason": self.report.reason,
                        "failing": list(self.report.failing),
                        "crashed": list(self.report.crashed)},
        }


def simulate(
    objects: Sequence[LoadedObject],
    state: Path | None = None,
    settings: SimulateSettings | None = None,
    environment: str = "simulator",
    limits: Limits = DEFAULT_LIMITS,
    progress: ProgressHook | None = None,
) -> SimulationResult:
    """Raises `InputError` for input the simulated cluster refuses; nothing is applied after.
    `progress` is told where the run is before each round."""
    env = load_environment(environment)
    if state is not None and state.exists():
        env.load_state(state)
    tune_after_load()  # fewer young collections; no freeze: the caller may drop this world
    data_dir = state.with_name(state.name + ".d") if state is not None else None
    report = _reconcile(env, objects, settings or SimulateSettings(), data_dir, limits,
                        progress)
    if state is not None:
        env.save_state(state)
    # This world ends here: its objects, Workloads and Events are handed over as they are
    # stored, not copied (`document` copies the Workloads it prints twice).
    everything = _all_objects(env, copies=False)
    return SimulationResult(
        report=report,
        workloads=([o for o in everything if o.get("kind") == "Workload"
                    and str(o.get("apiVersion", "")).split("/")[0] == CARTO_GROUP]
                   if everything else env.backend.list(CARTO_API, "Workload")),
        objects=everything,
        events=_all_events(env, copies=False),
    )


def plan(
    objects: Sequence[LoadedObject],
    state: Path | None = None,
    settings: SimulateSettings | None = None,
    environment: str = "simulator",
    limits: Limits = DEFAULT_LIMITS,
) -> ChangeSet:
    """What a reconcile of `objects` would change in the cluster saved in `state`.

    The whole reconcile runs (inputs applied, supply chains stamped, orphans and inventories
    pruned) on a copy loaded from `state`, which is left as it was; the change set compares every
    object before and after, so stamped objects and deletions show too.
    """
    env = load_environment(environment)
    # A plan changes nothing outside its copy of the cluster (no git-writer pushes).
    dry_run = getattr(env, "configure_for_dry_run", None)
    if callable(dry_run):
        dry_run()
    if state is not None and state.exists():
        env.load_state(state)
    before = {ObjectKey.of(o): o for o in _all_objects(env)}
    _reconcile(env, objects, settings or SimulateSettings(), None, limits)
    inputs = {ObjectKey.of(o.obj) for o in objects}  # namespaces defaulted by now
    after = {ObjectKey.of(o): o for o in _all_objects(env)}
    changes = ChangeSet()
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key), after.get(key)
        if new is None and old is not None:
            changes.changes.append(plan_deletion(old))
        elif new is not None:
            change = plan_object(new, old)
            if (change.action is ChangeAction.UNCHANGED and old is not None
                    and not is_subset(comparable(old), new)):
                # Left-scoped: a field the reconcile removed is a change too.
                change = plan_object(new, {k: v for k, v in old.items() if k not in new})
                change = ObjectChange(change.key, change.api_version, ChangeAction.CONFIGURED,
                                      new, old, change.differences)
            if change.action is not ChangeAction.UNCHANGED or key in inputs:
                changes.changes.append(change)
    return changes


def _reconcile(
    env: Environment, objects: Sequence[LoadedObject], settings: SimulateSettings,
    data_dir: Path | None, limits: Limits = DEFAULT_LIMITS,
    progress: ProgressHook | None = None,
) -> RunReport:
    """Run to settle: every Workload and Runnable settled (`all_settled`) at a fixed point, and
    no controller, product or simulated, with work in flight due within the budget (a build,
    a rollout, a wait, a retry after a failure; periodic resyncs such as Git polls are not).
    Applying the inputs is part of the batch whose young collections are sampled, as the run
    is (`gctuning.sampled_young_collections`): it fills the cluster with what lives as long."""
    with sampled_young_collections():
        apply_inputs(env.backend, objects)
        return _run(env, settings, data_dir, limits, progress)


def _run(env: Environment, settings: SimulateSettings, data_dir: Path | None, limits: Limits,
         progress: ProgressHook | None) -> RunReport:
    scratch: tempfile.TemporaryDirectory[str] | None = None
    if data_dir is None:
        scratch = tempfile.TemporaryDirectory(prefix="reconciler-")
        root = Path(scratch.name)
    else:
        root = data_dir
    try:
        # The user's own repositories on their machine: local paths and file:// are fine here.
        sources = SourceSettings(artifact_root=root / "artifacts", workdir=root / "git",
                                 allow_local_urls=True)
        tracker = TrackingBackend(env.backend)
        # Git polls find nothing new in virtual time: their interval is never work in flight.
        product: list[Controller] = [
            Polling(c) if isinstance(c, GitRepositoryReconciler) else c
            for c in product_controllers(tracker, env.clock, sources)]
        return run_until_settled(env, [*product, *env.controllers],
                                 lambda: all_settled(env.backend),
                                 budget_seconds=settings.budget_seconds,
                                 max_rounds=settings.max_rounds,
                                 tracker=tracker, tracked=product, limits=limits,
                                 on_round=None if progress is None else (
                                     lambda rounds, seconds: progress(RunProgress(
                                         rounds, seconds, lambda: settled_count(env.backend)))))
    finally:
        if scratch is not None:
            remove_later(scratch)


_removals: list[threading.Thread] = []
_removals_lock = threading.Lock()


def remove_later(scratch: tempfile.TemporaryDirectory[str]) -> None:
    """Remove a finished run's scratch directory (its Git checkouts and one artifact directory
    per GitRepository) on a thread of its own: the run's result does not wait for the disk.
    Removing 10,000 artifact directories is under 1 s of CPU but took 7 to 18 s of waiting on
    an ext4 volume mounted with `discard`. The thread is not a daemon: the interpreter waits for
    it before it exits, so nothing is left behind (`wait_for_removals` waits sooner)."""
    thread = threading.Thread(target=_remove, args=(scratch,), name="reconciler-scratch-removal")
    with _removals_lock:
        _removals[:] = [t for t in _removals if t.is_alive()]
        _removals.append(thread)
    thread.start()


def _remove(scratch: tempfile.TemporaryDirectory[str]) -> None:
    try:
        scratch.cleanup()
    except OSError as exc:
        log.warning("could not remove a simulation's scratch directory", path=scratch.name,
                    error=str(exc))


def wait_for_removals() -> None:
    """Return once every scratch directory handed to `remove_later` so far is removed."""
    with _removals_lock:
        pending = list(_removals)
    for thread in pending:
        thread.join()


def apply_inputs(backend: Backend, objects: Sequence[LoadedObject]) -> None:
    ordered = sorted(objects, key=lambda o: _FIRST.get(str(o.obj.get("kind")), 2))
    for loaded in ordered:
        obj = loaded.obj
        try:
            info = backend.kind_info(str(obj["apiVersion"]), str(obj["kind"]))
            if info.namespaced:
                obj.setdefault("metadata", {}).setdefault("namespace", "default")
            backend.apply(obj)
        except BackendError as exc:
            raise InputError(
                f"{loaded.source}: {describe(obj)}: rejected by the cluster: {exc}") from exc


def settled_count(backend: Backend) -> tuple[int, int]:
    """(settled, total) of the Workloads and Runnables, by `all_settled`'s rules."""
    owners = _workloads(backend)
    runnables = backend.list(CARTO_API, "Runnable")
    done = sum(_owner_settled(w) for w in owners)
    done += sum(runnable_settled(r) for r in runnables)
    return done, len(owners) + len(runnables)


def _workloads(backend: Backend) -> Sequence[Mapping[str, Any]]:
    """The Workloads to judge, read in place where the cluster allows it (the simulated
    cluster's read-only `views`): judging reads a few fields, a copy of each would cost more
    than the judgement."""
    views = getattr(backend, "views", None)
    if callable(views):
        found: Sequence[Mapping[str, Any]] = views(CARTO_API, "Workload")
        return found
    return backend.list(CARTO_API, "Workload")


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _owner_settled(workload: Mapping[str, Any]) -> bool:
    """Seen at its latest generation and Ready or failed with a reason; or suspended (the
    `reconciler.dev/suspend` annotation), which nothing will move. Reads any mapping (a
    read-only view too), as `engine.owner.suspended` and `report.owner_ready` read a dict."""
    metadata = _mapping(workload.get("metadata"))
    annotations = _mapping(metadata.get("annotations"))
    if str(annotations.get(SUSPEND_ANNOTATION, "")).strip().lower() == "true":
        return True
    status = _mapping(workload.get("status"))
    if status.get("observedGeneration") != metadata.get("generation"):
        return False
    conditions = status.get("conditions")
    ready = find_condition(conditions if isinstance(conditions, Sequence)
                           and not isinstance(conditions, str) else None, "Ready")
    return ready is not None and str(ready.get("status")) in ("True", "False")


def all_settled(backend: Backend) -> bool:
    """Every workload has seen its latest generation and is Ready or failed with a reason (or
    is suspended); every Runnable has seen its latest generation and its current run is
    finished."""
    if not all(_owner_settled(w) for w in _workloads(backend)):
        return False
    return all(runnable_settled(r) for r in backend.list(CARTO_API, "Runnable"))


def _all_events(env: Environment, copies: bool = True) -> list[Obj]:
    """The cluster's Events; `copies=False`: the stored ones themselves where the backend has
    them (the simulated cluster's `stored_events`), for a world that ends here."""
    stored = getattr(env.backend, "stored_events", None)
    if not copies and callable(stored):
        return list(stored())
    return list(env.backend.events())


def _all_objects(env: Environment, copies: bool = True) -> list[Obj]:
    """Every object of the simulated cluster, by key ([] for a real one). `copies=False`:
    the stored objects themselves, for a world that ends here (no one writes them again)."""
    backend = env.backend
    keys, stored = getattr(backend, "stored_keys", None), getattr(backend, "stored", None)
    if not copies and callable(keys) and callable(stored):
        return [obj for key in sorted(keys()) if (obj := stored(key)) is not None]
    listing = getattr(backend, "all_objects", None)
    return list(listing()) if callable(listing) else []
