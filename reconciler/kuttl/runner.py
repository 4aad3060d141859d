"""Running kuttl tests against a simulated cluster: one fresh environment and namespace per test.

For each step in order: delete what its TestStep lists, apply its objects (and the status they
carry, through the status subresource as a controller would write it), then run the controllers
on virtual time until the step's assert objects all match and its errors objects all do not.
The check happens at every fixed point, so a step passes at the earliest moment it is true, and
fails as soon as nothing is left to wait for or the step's timeout of virtual time is spent.
"""

from __future__ import annotations

import contextlib
import copy
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from reconciler.backends.base import Backend, write_status
from reconciler.chains.blueprint import CARTO_API
from reconciler.engine.runner import Environment, run_until_settled
from reconciler.engine.wiring import load_environment, product_controllers
from reconciler.kuttl.assertions import Verdict, check_step
from reconciler.kuttl.steps import DeleteRef, Step, load_steps
from reconciler.kuttl.suite import TestCase
from reconciler.loader import LoadedObject
from reconciler.model.errors import BackendError, InputError, NotFound
from reconciler.model.objects import Obj, describe
from reconciler.runtime.controller import Controller
from reconciler.settings import SourceSettings

log = structlog.get_logger(__name__)

FIELD_MANAGER = "kuttl"
# Objects whose conditions explain why stamped objects are missing or wrong.
OWNER_KINDS = ("Workload", "Deliverable", "Runnable", "ClusterSupplyChain", "ClusterDelivery")


@dataclass(frozen=True)
class Failure:
    step: str
    """The step that failed (`02-workload`), or `setup` before any step ran."""
    summary: str
    verdicts: list[Verdict] = field(default_factory=list)
    """The assertions that did not hold at the end of the step."""
    conditions: list[str] = field(default_factory=list)
    """Conditions of the workloads, deliverables, runnables and blueprints at that moment."""


@dataclass(frozen=True)
class TestResult:
    __test__ = False  # not a pytest test class, despite the name

    name: str
    seconds: float
    """Wall-clock time the test took."""
    virtual_seconds: float
    namespace: str
    failure: Failure | None = None

    @property
    def passed(self) -> bool:
        return self.failure is None


def run_tests(
    cases: Sequence[TestCase],
    on_result: Callable[[TestResult], None] | None = None,
    environment: str = "simulator",
) -> list[TestResult]:
    results = []
    for case in cases:
        result = run_test(case, environment)
        if on_result is not None:
            on_result(result)
        results.append(result)
    return results


def run_test(case: TestCase, environment: str = "simulator") -> TestResult:
    started = time.perf_counter()
    namespace = case.test_namespace
    env = load_environment(environment)
    virtual_start = env.clock.now()
    with tempfile.TemporaryDirectory(prefix="reconciler-kuttl-") as scratch:
        sources = SourceSettings(artifact_root=Path(scratch) / "artifacts",
                                 workdir=Path(scratch) / "git", allow_local_urls=True)
        controllers = [*product_controllers(env.backend, env.clock, sources), *env.controllers]
        bound = structlog.contextvars.bound_contextvars(test=case.name)
        with bound:
            failure = _run_case(case, env, controllers, namespace)
    return TestResult(case.name, time.perf_counter() - started,
                      env.clock.now() - virtual_start, namespace, failure)


def _run_case(case: TestCase, env: Environment, controllers: Sequence[Controller],
              namespace: str) -> Failure | None:
    try:
        steps = load_steps(case.path)
    except InputError as exc:
        return Failure("load", str(exc))
    if not steps:
        return Failure("load", f"{case.path}: no step files (NN-name.yaml) in the test folder")
    try:
        _setup(env.backend, case.setup, namespace)
    except InputError as exc:
        return Failure("setup", str(exc))
    for step in steps:
        try:
            failure = _run_step(step, env, controllers, namespace,
                                step.timeout if step.timeout is not None else case.timeout)
        except InputError as exc:
            return Failure(step.label, str(exc))
        except Exception as exc:  # an engine bug must fail this test, not stop the others
            where = traceback.extract_tb(exc.__traceback__)[-1]
            return Failure(step.label, f"the controllers crashed: {type(exc).__name__}: {exc} "
                                       f"(at {where.filename}:{where.lineno})",
                           conditions=_conditions(env.backend, namespace))
        if failure is not None:
            return failure
    return None


def _setup(backend: Backend, objects: Sequence[LoadedObject], namespace: str) -> None:
    # Namespaces, then CRDs, then the rest: what an API server needs before what uses it.
    order = {"Namespace": 0, "CustomResourceDefinition": 1}
    for loaded in sorted(objects, key=lambda o: order.get(str(o.obj.get("kind")), 2)):
        _apply(backend, loaded, "default")
    _apply(backend, LoadedObject({"apiVersion": "v1", "kind": "Namespace",
                                  "metadata": {"name": namespace}}, "<test namespace>", 0),
           namespace)


def _run_step(step: Step, env: Environment, controllers: Sequence[Controller], namespace: str,
              timeout: float) -> Failure | None:
    log.info("starting step", step=step.label)
    for ref in step.deletes:
        _delete(env.backend, ref, namespace)
    for loaded in step.applies:
        _apply(env.backend, loaded, namespace)
    if not step.asserts and not step.errors:
        # kuttl moves straight on; the controllers still get to catch up with what was applied.
        run_until_settled(env, controllers, lambda: True, budget_seconds=timeout)
        return None
    verdicts: list[Verdict] = []

    def holds() -> bool:
        nonlocal verdicts
        verdicts = check_step(env.backend, namespace, step.asserts, step.errors)
        return all(v.ok for v in verdicts)

    report = run_until_settled(env, controllers, holds, budget_seconds=timeout)
    if report.settled:
        return None
    holds()  # the verdicts of the final state, whatever stopped the run
    failing = [v for v in verdicts if not v.ok]
    if not failing:
        return None
    return Failure(
        step.label,
        f"{len(failing)} of {len(verdicts)} assertion(s) not true after "
        f"{report.virtual_seconds:g}s of virtual time (timeout {timeout:g}s; {report.reason})",
        failing, _conditions(env.backend, namespace))


def _apply(backend: Backend, loaded: LoadedObject, namespace: str) -> None:
    obj = copy.deepcopy(loaded.obj)
    try:
        info = backend.kind_info(str(obj["apiVersion"]), str(obj["kind"]))
        if info.namespaced:
            obj.setdefault("metadata", {}).setdefault("namespace", namespace)
        live = backend.apply(obj, field_manager=FIELD_MANAGER)
        if "status" in obj:
            live["status"] = obj["status"]
            write_status(backend, live)
    except BackendError as exc:
        raise InputError(
            f"{loaded.source}: {describe(obj)}: rejected by the cluster: {exc}") from exc


def _delete(backend: Backend, ref: DeleteRef, namespace: str) -> None:
    try:
        info = backend.kind_info(ref.api_version, ref.kind)
    except BackendError:
        return  # nothing of a kind no API serves can exist
    ns = (ref.namespace or namespace) if info.namespaced else ""
    if ref.name:
        targets = [(ns, ref.name)]
    else:
        targets = [(str(o["metadata"].get("namespace") or ""), str(o["metadata"]["name"]))
                   for o in backend.list(ref.api_version, ref.kind,
                                         ns if info.namespaced else None, ref.labels)]
    for target_ns, name in targets:
        with contextlib.suppress(NotFound):  # already gone is what was asked for
            backend.delete(ref.api_version, ref.kind, target_ns, name)


def _conditions(backend: Backend, namespace: str) -> list[str]:
    lines: list[str] = []
    for kind in OWNER_KINDS:
        try:
            objects = backend.list(CARTO_API, kind, namespace)
        except BackendError:
            continue
        for obj in objects:
            lines.extend(_condition_lines(obj))
    return lines


def _condition_lines(obj: Obj) -> list[str]:
    """Ready, the other conditions that say something Ready does not, one line per bad resource."""
    status = obj.get("status") or {}
    head = f"{obj.get('kind')} {(obj.get('metadata') or {}).get('name')}"
    conditions = status.get("conditions") or []
    if not conditions:
        return [f"{head}: no conditions yet"]
    ready: Obj = next((c for c in conditions if c.get("type") == "Ready"), {})
    out = [f"{head}: {format_condition(c)}" for c in conditions
           if c is ready or (c.get("status") != "True"
                             and c.get("message") != ready.get("message"))]
    for resource in status.get("resources") or []:
        bad = [c for c in resource.get("conditions") or [] if c.get("status") != "True"]
        # Ready repeats the cause given by ResourceSubmitted or Healthy: show the cause.
        causes = [c for c in bad if c.get("type") != "Ready"] or bad
        if causes:
            out.append(f"{head} resource {resource.get('name')}: {format_condition(causes[0])}")
    return out


def format_condition(condition: Obj) -> str:
    text = f"{condition.get('type')}={condition.get('status')}"
    if condition.get("reason"):
        text += f" {condition['reason']}"
    if condition.get("message"):
        text += f": {condition['message']}"
    return text
