"""The owner controller's no-op fast path (issue 14): a settled Workload offered again with
nothing changed is not rendered; any change to what its reconcile read renders it again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from reconciler.backends.base import Forwarding
from reconciler.engine.owner import WORKLOAD, OwnerController
from reconciler.engine.tracking import TrackingBackend
from reconciler.model.errors import InputError, Rejected, Transient
from reconciler.model.objects import Obj
from reconciler.settings import OwnerSettings
from simulator.environment import SimulatedEnvironment
from tests.manifests import widget_crd

API = "carto.run/v1alpha1"
VALUE = "$(workload.spec.params[0].value)$"


def _template(name: str, data: str) -> Obj:
    return {"apiVersion": API, "kind": "ClusterConfigTemplate", "metadata": {"name": name},
            "spec": {"configPath": ".data", "template": {
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "$(workload.metadata.name)$-" + name},
                "data": {"value": data}}}}


CHAIN: Obj = {
    "apiVersion": API, "kind": "ClusterSupplyChain", "metadata": {"name": "chain"},
    "spec": {"selector": {"app": "x"},
             "params": [{"name": "greeting", "default": "hi"}],
             "resources": [
                 {"name": "source", "templateRef": {"kind": "ClusterConfigTemplate",
                                                    "name": "source"}},
                 {"name": "sink", "templateRef": {"kind": "ClusterConfigTemplate",
                                                  "name": "sink"},
                  "configs": [{"resource": "source", "name": "src"}]}]}}


class World:
    def __init__(self, fast_path: bool = True) -> None:
        self.env = SimulatedEnvironment()
        self.cluster = self.env.cluster
        self.controller = OwnerController(self.cluster, self.env.clock, WORKLOAD,
                                          fast_path=fast_path)
        self.renders = 0
        real: Callable[..., Any] = self.controller.realizer.realize

        def counting(*args: Any, **kwargs: Any) -> Any:
            self.renders += 1
            return real(*args, **kwargs)

        self.controller.realizer.realize = counting  # type: ignore[method-assign]
        self.cluster.apply(_template("source", f"$(params.greeting)$ {VALUE}"))
        self.cluster.apply(_template("sink", "$(configs.src.config.value)$"))
        self.cluster.apply(CHAIN)
        self.cluster.apply({"apiVersion": API, "kind": "Workload",
                            "metadata": {"name": "app", "namespace": "default",
                                         "labels": {"app": "x"}},
                            "spec": {"params": [{"name": "value", "value": "one"}]}})

    def workload(self) -> Obj:
        found = self.cluster.get(API, "Workload", "default", "app")
        assert found is not None
        return found

    def offer(self) -> int:
        """Offer the Workload once; how many renders it took."""
        before = self.renders
        self.controller.reconcile(self.workload())
        return self.renders - before

    def settle(self) -> None:
        for _ in range(5):
            if self.offer() == 0:
                return
        raise AssertionError("the Workload never settled")

    def sink(self) -> Obj:
        found = self.cluster.get("v1", "ConfigMap", "default", "app-sink")
        assert found is not None
        return found

    def ready(self) -> str:
        conds = self.workload()["status"]["conditions"]
        return str(next(c for c in conds if c["type"] == "Ready")["status"])


@pytest.fixture
def world() -> World:
    w = World()
    w.settle()
    assert w.ready() == "True"
    assert w.sink()["data"]["value"] == "hi one"
    return w


def test_a_settled_workload_offered_again_is_not_rendered(world: World) -> None:
    assert [world.offer() for _ in range(3)] == [0, 0, 0]


def test_without_the_fast_path_every_offer_renders() -> None:
    w = World(fast_path=False)
    w.offer()
    assert [w.offer() for _ in range(3)] == [1, 1, 1]


def _edit_spec(w: World) -> None:
    obj = w.workload()
    obj["spec"]["params"][0]["value"] = "two"
    w.cluster.apply(obj)


def _edit_template(w: World) -> None:
    w.cluster.apply(_template("source", f"$(params.greeting)$ there {VALUE}"))


def _edit_blueprint_param(w: World) -> None:
    chain = w.cluster.get(API, "ClusterSupplyChain", "", "chain")
    assert chain is not None
    chain["spec"]["params"][0]["default"] = "hello"
    w.cluster.apply(chain)


def _edit_source_output(w: World) -> None:
    # The source's stamped ConfigMap edited out of band: its output (the sink's input) changed.
    live = w.cluster.get("v1", "ConfigMap", "default", "app-source")
    assert live is not None
    live["data"]["value"] = "tampered"
    w.cluster.apply(live)


def _drift_sink(w: World) -> None:
    live = w.sink()
    live["data"]["value"] = "drifted"
    w.cluster.apply(live)


def _request(w: World) -> None:
    obj = w.workload()
    obj["metadata"].setdefault("annotations", {})["reconcile.fluxcd.io/requestedAt"] = "now-1"
    w.cluster.apply(obj)


@pytest.mark.parametrize(
    ("change", "sink"),
    [(_edit_spec, "hi two"), (_edit_template, "hi there one"),
     (_edit_blueprint_param, "hello one"), (_edit_source_output, "hi one"),
     (_drift_sink, "hi one"), (_request, "hi one")],
    ids=["workload-spec", "template", "blueprint-param", "source-output", "drift",
         "requested-at"],
)
def test_any_change_to_what_the_reconcile_read_renders_again(
        world: World, change: Callable[[World], None], sink: str) -> None:
    change(world)
    assert world.offer() == 1
    world.settle()
    assert world.sink()["data"]["value"] == sink
    assert world.ready() == "True"
    assert world.offer() == 0


def test_a_new_requested_at_is_handled(world: World) -> None:
    _request(world)
    assert world.offer() == 1
    assert world.workload()["status"]["lastHandledReconcileAt"] == "now-1"


def test_a_failed_reconcile_never_takes_the_fast_path(world: World) -> None:
    real_list, real_kind_version = world.cluster.list, world.cluster.kind_version

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise Transient("SourceUnavailable", "cannot list: connection reset")

    _request(world)  # a change, so that the next offer reconciles in full (and fails)
    # Listing the blueprints fails (and so does reading their kind's version, which would
    # otherwise let the controller use the blueprints it listed before).
    world.cluster.list = failing  # type: ignore[method-assign]
    world.cluster.kind_version = failing  # type: ignore[method-assign]
    with pytest.raises(Transient):
        world.controller.reconcile(world.workload())
    world.cluster.list = real_list  # type: ignore[method-assign]
    world.cluster.kind_version = real_kind_version  # type: ignore[method-assign]
    assert world.ready() == "False"
    # Nothing changed in the inputs since, but the last reconcile failed: render again.
    assert world.offer() == 1
    world.settle()
    assert world.ready() == "True"


def test_a_workload_that_is_not_ready_is_never_skipped() -> None:
    w = World()
    w.cluster.delete(API, "ClusterConfigTemplate", "", "sink")
    w.cluster.apply(_template("sink", "$(configs.src.config.value)$"))
    w.cluster.delete(API, "ClusterConfigTemplate", "", "sink")
    w.offer()
    w.offer()
    assert w.ready() != "True"
    assert w.controller._settled == {}


# --- what the reconcile does not read but depends on ---------------------------------------


def _service_account(w: World, name: str, labels: dict[str, str] | None = None) -> None:
    w.cluster.apply({"apiVersion": "v1", "kind": "ServiceAccount",
                     "metadata": {"name": name, "namespace": "default",
                                  "labels": labels or {}}})


def test_a_change_of_the_owners_service_account_renders_again() -> None:
    w = World()
    _service_account(w, "builder")
    obj = w.workload()
    obj["spec"]["serviceAccountName"] = "builder"
    w.cluster.apply(obj)
    w.settle()
    assert w.offer() == 0
    _service_account(w, "builder", {"rotated": "yes"})
    assert w.offer() == 1
    w.settle()
    assert w.offer() == 0
    w.cluster.delete("v1", "ServiceAccount", "default", "builder")
    assert w.offer() == 1


def test_a_default_service_account_created_later_renders_again(world: World) -> None:
    # The simulated cluster makes no `default` ServiceAccount: absent at the record, and its
    # creation is a change.
    assert world.cluster.get("v1", "ServiceAccount", "default", "default") is None
    _service_account(world, "default")
    assert world.offer() == 1


def test_a_change_of_the_owners_namespace_renders_again(world: World) -> None:
    ns = world.cluster.get("v1", "Namespace", "", "default")
    assert ns is not None
    ns["metadata"].setdefault("labels", {})["team"] = "blue"
    world.cluster.apply(ns)
    assert world.offer() == 1
    world.settle()
    assert world.offer() == 0


def test_a_change_in_another_namespace_does_not(world: World) -> None:
    world.cluster.apply({"apiVersion": "v1", "kind": "Namespace",
                         "metadata": {"name": "elsewhere", "labels": {"team": "red"}}})
    world.cluster.apply({"apiVersion": "v1", "kind": "ServiceAccount",
                         "metadata": {"name": "default", "namespace": "elsewhere"}})
    assert world.offer() == 0


def test_a_record_older_than_the_max_age_is_checked_by_a_full_reconcile(world: World) -> None:
    # RBAC is not among the versions compared: the age bound is what re-validates it.
    max_age = world.controller.fast_path_max_age
    assert max_age == OwnerSettings().fast_path_max_age_seconds == 600
    world.env.clock.advance(max_age - 1)
    assert world.offer() == 0
    world.env.clock.advance(1)
    assert world.offer() == 1
    assert world.offer() == 0  # recorded afresh, at the clock's new time
    world.env.clock.advance(max_age - 1)
    assert world.offer() == 0


def test_max_age_comes_from_the_owner_settings() -> None:
    env = SimulatedEnvironment()
    controller = OwnerController(env.cluster, env.clock, WORKLOAD,
                                 settings=OwnerSettings(fast_path_max_age_seconds=30))
    assert (controller.fast_path, controller.fast_path_max_age) == (True, 30)
    assert OwnerController(env.cluster, env.clock, WORKLOAD,
                           settings=OwnerSettings(fast_path=False)).fast_path is False
    with pytest.raises(InputError, match="fast_path_max_age_seconds"):
        OwnerSettings(fast_path_max_age_seconds=-1)


CRD_GROUP = "fastpath.reconciler.dev"


def _widget_crd(labels: dict[str, str] | None = None) -> Obj:
    return widget_crd(CRD_GROUP, labels)


def _widget_world() -> World:
    """A settled World whose sink stamps a Widget, a kind its CRD defines."""
    w = World()
    w.cluster.apply(_widget_crd())
    w.cluster.apply({"apiVersion": API, "kind": "ClusterTemplate", "metadata": {"name": "sink"},
                     "spec": {"template": {
                         "apiVersion": f"{CRD_GROUP}/v1", "kind": "Widget",
                         "metadata": {"name": "$(workload.metadata.name)$-sink"},
                         "spec": {"value": "$(configs.src.config.value)$"}}}})
    chain = w.cluster.get(API, "ClusterSupplyChain", "", "chain")
    assert chain is not None
    chain["spec"]["resources"][1]["templateRef"]["kind"] = "ClusterTemplate"
    w.cluster.apply(chain)
    w.settle()
    return w


def test_a_change_of_the_crd_of_a_stamped_kind_renders_again() -> None:
    w = _widget_world()
    assert w.ready() == "True"
    assert w.offer() == 0
    crd_ref = ("apiextensions.k8s.io/v1", "CustomResourceDefinition", "",
               f"widgets.{CRD_GROUP}")
    assert crd_ref in w.controller._settled[("default", "app")].refs
    w.cluster.apply(_widget_crd({"changed": "yes"}))
    assert w.offer() == 1


# --- the reads the runner schedules by -----------------------------------------------------


def _reads(w: World, backend: TrackingBackend | None = None) -> tuple[int, frozenset[Any]]:
    """Offer once with reads recorded (by the cluster, or by `backend`): (renders, reads)."""
    recorder: Any = backend if backend is not None else w.cluster
    recorder.begin()
    renders = w.offer()
    return renders, frozenset(recorder.end().dependencies)


@pytest.mark.parametrize("tracked", [False, True], ids=["cluster", "tracking-backend"])
def test_the_fast_path_reads_what_the_full_reconcile_read(tracked: bool) -> None:
    w = World()
    tracker = TrackingBackend(w.cluster) if tracked else None
    if tracker is not None:
        w.controller = OwnerController(tracker, w.env.clock, WORKLOAD)
        real = w.controller.realizer.realize

        def counting(*args: Any, **kwargs: Any) -> Any:
            w.renders += 1
            return real(*args, **kwargs)

        w.controller.realizer.realize = counting  # type: ignore[method-assign]
    full: frozenset[Any] = frozenset()
    for _ in range(5):
        renders, reads = _reads(w, tracker)
        if renders == 0:
            break
        full = reads
    else:
        raise AssertionError("the Workload never settled")
    assert reads == full  # the settling full reconcile's reads, and the fast path's after it
    # So a change of a template (or of anything else read) still offers the owner again.
    assert ("key", "carto.run", "ClusterConfigTemplate", "", "source") in reads
    assert ("key", "", "ConfigMap", "default", "app-sink") in reads
    assert ("key", "", "ServiceAccount", "default", "default") in reads
    assert ("key", "", "Namespace", "", "default") in reads
    assert ("kind", "carto.run", "ClusterSupplyChain", "*", "") in reads


class RefusingServiceAccounts(Forwarding):
    """The cluster as a controller sees it that may not read ServiceAccounts (the chart's
    RBAC grants no such read), counting the attempts; `transient` fails them instead."""

    def __init__(self, inner: Any, transient: bool = False) -> None:
        super().__init__(inner)
        self.transient = transient
        self.attempts = 0

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        if kind == "ServiceAccount":
            self.attempts += 1
            if self.transient:
                raise Transient("Unavailable", "connection reset")
            raise Rejected('serviceaccounts "default" is forbidden')
        return self.inner.get(api_version, kind, namespace, name)


def _world_over(backend: Callable[[Any], Forwarding]) -> tuple[World, Forwarding]:
    w = World()
    wrapped = backend(w.cluster)
    w.controller = OwnerController(wrapped, w.env.clock, WORKLOAD)
    real = w.controller.realizer.realize

    def counting(*args: Any, **kwargs: Any) -> Any:
        w.renders += 1
        return real(*args, **kwargs)

    w.controller.realizer.realize = counting  # type: ignore[method-assign]
    return w, wrapped


def test_an_input_the_controller_may_not_read_is_left_out_and_not_asked_again() -> None:
    w, refusing = _world_over(RefusingServiceAccounts)
    w.settle()
    assert isinstance(refusing, RefusingServiceAccounts)
    assert refusing.attempts == 1
    assert [w.offer() for _ in range(3)] == [0, 0, 0]
    _request(w)
    assert w.offer() == 1
    assert refusing.attempts == 1
    refs = w.controller._settled[("default", "app")].refs
    assert not any(ref[1] == "ServiceAccount" for ref in refs)
    assert ("v1", "Namespace", "", "default") in refs
    # Asked again once the age bound has passed (a refusal may have been RBAC settling).
    w.env.advance(601)
    assert w.offer() == 1
    assert refusing.attempts == 2


def test_an_input_that_failed_to_read_for_now_makes_no_record() -> None:
    w, failing = _world_over(lambda c: RefusingServiceAccounts(c, transient=True))
    assert isinstance(failing, RefusingServiceAccounts)
    for _ in range(3):
        w.offer()
    assert w.ready() == "True"
    assert w.controller._settled == {}
    failing.transient = False  # refused from now on: recorded without it
    w.offer()
    assert w.offer() == 0


@pytest.mark.parametrize("changed", ["ServiceAccount", "Namespace"])
def test_a_change_during_the_settling_reconcile_is_not_recorded_as_seen(changed: str) -> None:
    w = World()
    _service_account(w, "default")
    w.settle()
    _request(w)  # the next offer reconciles in full; during it, the input changes
    real: Callable[..., Any] = w.controller.realizer.realize

    def changing(*args: Any, **kwargs: Any) -> Any:
        if changed == "ServiceAccount":
            _service_account(w, "default", {"rotated": "yes"})
        else:
            ns = w.cluster.get("v1", "Namespace", "", "default")
            assert ns is not None
            ns["metadata"].setdefault("labels", {})["team"] = "blue"
            w.cluster.apply(ns)
        return real(*args, **kwargs)

    w.controller.realizer.realize = changing  # type: ignore[method-assign]
    w.controller.reconcile(w.workload())
    w.controller.realizer.realize = real  # type: ignore[method-assign]
    assert w.offer() == 1  # the version recorded is the one from before the change
    assert w.offer() == 0


def test_a_spec_change_made_while_the_reconcile_ran_is_not_recorded_as_settled() -> None:
    w = World()
    w.settle()
    assert w.sink()["data"]["value"] == "hi one"
    # Change the spec to "two" (a new generation: the next reconcile writes observedGeneration).
    _edit_spec(w)
    real = w.controller.realizer.realize
    done: list[int] = []

    def racing(*args: Any, **kwargs: Any) -> Any:
        out = real(*args, **kwargs)  # rendered from spec "two"
        if not done:
            done.append(1)
            obj = w.workload()  # someone edits the spec while the reconcile runs
            obj["spec"]["params"][0]["value"] = "three"
            w.cluster.apply(obj)
        return out

    w.controller.realizer.realize = racing  # type: ignore[method-assign]
    w.offer()  # reconciles "two"; the edit to "three" lands before the status write
    assert w.sink()["data"]["value"] == "hi two"
    wl = w.workload()
    # The "three" edit's event offers the Workload again:
    w.offer()
    w.offer()
    assert w.sink()["data"]["value"] == "hi three", (
        f"sink still {w.sink()['data']['value']!r}; generation "
        f"{wl['metadata']['generation']} observedGeneration {wl['status']['observedGeneration']}")


def test_a_deleted_workloads_records_are_dropped_by_the_round_driver() -> None:
    from reconciler.engine.runner import _Scheduler

    w = World()
    tracker = TrackingBackend(w.cluster)
    w.controller = OwnerController(tracker, w.env.clock, WORKLOAD)
    sched = _Scheduler(w.cluster, tracker, w.env.clock, tracked=frozenset([w.controller.name]))
    for _ in range(5):
        sched.run_round([w.controller])
    assert list(w.controller._settled) == [("default", "app")]
    assert w.controller.realizer.recorded("default", "app") > 0  # its resources
    w.cluster.delete(API, "Workload", "default", "app")
    sched.run_round([w.controller])
    assert w.controller._settled == {}  # not kept for the life of the process
    assert w.controller.realizer.recorded("default", "app") == 0  # nor its resources' records


def _changed_while_rendering(w: World, change: Callable[[], object]) -> None:
    """One full reconcile (a requestedAt) during whose render `change` happens."""
    _request(w)
    real: Callable[..., Any] = w.controller.realizer.realize

    def changing(*args: Any, **kwargs: Any) -> Any:
        change()
        return real(*args, **kwargs)

    w.controller.realizer.realize = changing  # type: ignore[method-assign]
    w.controller.reconcile(w.workload())
    w.controller.realizer.realize = real  # type: ignore[method-assign]


def test_the_blueprints_service_account_changed_while_rendering_is_not_recorded_as_seen(
) -> None:
    w = World()
    _service_account(w, "builder")
    chain = w.cluster.get(API, "ClusterSupplyChain", "", "chain")
    assert chain is not None
    chain["spec"]["serviceAccountRef"] = {"name": "builder"}
    w.cluster.apply(chain)
    w.settle()
    assert w.offer() == 0
    _changed_while_rendering(w, lambda: _service_account(w, "builder", {"rotated": "yes"}))
    assert w.offer() == 1  # the version recorded is the one read before rendering


def test_a_crd_changed_while_rendering_is_not_recorded_as_seen() -> None:
    w = _widget_world()
    assert w.offer() == 0
    _changed_while_rendering(w, lambda: w.cluster.apply(_widget_crd({"changed": "yes"})))
    assert w.offer() == 1  # the CRD named by the last record was read before rendering
