"""The Kustomization controller's steps, each on its own (table tests), and how a whole reconcile
ends on the status, including the issue-10 bug: a transient failure reading the source never
writes Ready=True with an empty lastAppliedRevision."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.engine.kustomization import KsRun, KustomizationReconciler
from reconciler.model.conditions import find_condition
from reconciler.model.errors import Transient
from reconciler.model.objects import Obj
from reconciler.runtime.controller import RECONCILE_ERROR
from reconciler.runtime.reconcile import DONE, PROGRESSING_WITH_RETRY, STOP, Action
from reconciler.sources.artifacts import ArtifactStore
from simulator.environment import SimulatedEnvironment

KS_API = "kustomize.toolkit.fluxcd.io/v1"
SOURCE_API = "source.toolkit.fluxcd.io/v1"
NS = "default"


def _ks(**spec: Any) -> Obj:
    return {"apiVersion": KS_API, "kind": "Kustomization",
            "metadata": {"name": "app", "namespace": NS, "generation": 1},
            "spec": {"interval": "10m", "path": "./deploy", "prune": True,
                     "targetNamespace": NS,
                     "sourceRef": {"kind": "GitRepository", "name": "config"}, **spec}}


def _ready_dependency(name: str, status: str) -> Obj:
    return {"apiVersion": KS_API, "kind": "Kustomization",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"interval": "10m", "path": "./", "prune": False,
                     "sourceRef": {"kind": "GitRepository", "name": "config"}},
            "status": {"conditions": [{"type": "Ready", "status": status, "reason": "x",
                                       "message": "", "lastTransitionTime": "t"}]}}


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.env = SimulatedEnvironment()
        self.cluster = self.env.cluster
        self.store = ArtifactStore(tmp_path / "store", "http://artifacts.test")
        self.tmp = tmp_path
        self.controller = KustomizationReconciler(self.cluster, self.env.clock, self.store)

    def source(self, files: dict[str, str] | None = None, revision: str = "main@sha1:aaa") -> None:
        """A GitRepository `config` whose artifact holds `files` (none: not ready yet)."""
        obj: Obj = {"apiVersion": SOURCE_API, "kind": "GitRepository",
                    "metadata": {"name": "config", "namespace": NS},
                    "spec": {"url": "https://example.com/config.git", "interval": "1m"}}
        self.cluster.apply(obj)
        if files is None:
            return
        folder = self.tmp / revision.replace("@", "-").replace(":", "-")
        for rel, text in files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_text(text)
        artifact = self.store.store_directory("GitRepository", NS, "config", revision, folder,
                                              now="2026-01-01T00:00:00Z")
        live = self.cluster.get(SOURCE_API, "GitRepository", NS, "config")
        assert live is not None
        self.cluster.update_status({**live, "status": {"artifact": artifact.to_status()}})

    def reconcile(self) -> Obj:
        ks = self.cluster.get(KS_API, "Kustomization", NS, "app")
        assert ks is not None
        self.controller.reconcile(ks)
        after = self.cluster.get(KS_API, "Kustomization", NS, "app")
        assert after is not None
        return after


CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  a: \"1\"\n"


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def _run(world: World, owner: Obj) -> KsRun:
    run = KsRun.of(owner)
    run.workdir = world.tmp / "work"
    run.workdir.mkdir(exist_ok=True)
    return run


def _said(run: KsRun) -> tuple[str, str] | None:
    ready = run.conditions.get("Ready")
    return None if ready is None else (ready.status, ready.reason)


# --- steps on their own ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "dependencies", "action", "said"),
    [
        ({}, [], Action.DONE, None),
        ({"patches": []}, [], Action.STOP, ("False", "BuildFailed")),
        ({"dependsOn": [{"name": "db"}]}, [], Action.REQUEUE, ("False", "DependencyNotReady")),
        ({"dependsOn": [{"name": "db"}]}, [("db", "False")], Action.REQUEUE,
         ("False", "DependencyNotReady")),
        ({"dependsOn": [{"name": "db"}]}, [("db", "True")], Action.DONE, None),
    ],
    ids=["no-dependencies", "unsupported-field", "dependency-missing", "dependency-not-ready",
         "dependency-ready"],
)
def test_check_dependencies(world: World, spec: dict[str, Any],
                            dependencies: list[tuple[str, str]], action: Action,
                            said: tuple[str, str] | None) -> None:
    for name, status in dependencies:
        world.cluster.apply(_ready_dependency(name, status))
        live = world.cluster.get(KS_API, "Kustomization", NS, name)
        assert live is not None
        world.cluster.update_status({**live, "status": _ready_dependency(name, status)["status"]})
    run = _run(world, _ks(**spec))
    assert world.controller.check_dependencies(run).action is action
    assert _said(run) == said


@pytest.mark.parametrize(
    ("source_kind", "files", "action", "reason"),
    [
        ("OCIRepository", None, Action.STOP, "ArtifactFailed"),
        ("GitRepository", "missing", Action.REQUEUE, "ArtifactFailed"),
        ("GitRepository", None, Action.REQUEUE, "ArtifactFailed"),
        ("GitRepository", {"deploy/a.yaml": CM.format(name="a")}, Action.DONE, None),
    ],
    ids=["unsupported-kind", "source-missing", "no-artifact-yet", "artifact"],
)
def test_fetch(world: World, source_kind: str, files: Any, action: Action,
               reason: str | None) -> None:
    if files != "missing":
        world.source(files)
    run = _run(world, _ks(sourceRef={"kind": source_kind, "name": "config"}))
    result = world.controller.fetch(run)
    assert result.action is action
    if reason is None:
        assert run.revision == "main@sha1:aaa"
        assert (run.workdir / "src" / "deploy" / "a.yaml").is_file()  # type: ignore[operator]
    else:
        assert _said(run) == ("False", reason)
        assert run.revision == ""


def test_fetch_raises_a_transient_read_failure(world: World) -> None:
    world.source({"deploy/a.yaml": CM.format(name="a")})
    run = _run(world, _ks())

    def down(*_args: Any, **_kwargs: Any) -> Any:
        raise Transient("SourceUnavailable", "connection reset")

    world.cluster.get = down  # type: ignore[method-assign]
    with pytest.raises(Transient):
        world.controller.fetch(run)


@pytest.mark.parametrize(
    ("files", "action", "count"),
    [({"deploy/a.yaml": CM.format(name="a"), "deploy/b.yaml": CM.format(name="b")},
      Action.DONE, 2),
     ({"deploy/kustomization.yaml": "resources: [missing.yaml]\n"}, Action.STOP, 0)],
    ids=["folder", "broken-kustomization"],
)
def test_build(world: World, files: dict[str, str], action: Action, count: int) -> None:
    world.source(files)
    run = _run(world, _ks())
    assert world.controller.fetch(run) == DONE
    assert world.controller.build(run).action is action
    assert len(run.desired) == count
    if action is Action.STOP:
        assert _said(run) == ("False", "BuildFailed")
    else:
        assert run.digest.startswith("sha256:")
        assert all(o["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"] == "app"
                   for o in run.desired)


def test_apply_then_prune_then_health(world: World) -> None:
    world.source({"deploy/a.yaml": CM.format(name="a")})
    run = _run(world, _ks())
    for step in (world.controller.fetch, world.controller.build, world.controller.apply,
                 world.controller.prune, world.controller.assess_health):
        assert step(run) == DONE, step.__name__
    assert world.cluster.get("v1", "ConfigMap", NS, "a") is not None
    drifted, healthy = run.conditions.get("Drifted"), run.conditions.get("Healthy")
    assert drifted is not None and drifted.status == "False"
    assert healthy is not None and healthy.status == "True"


def test_assess_health_waits_as_a_requeue(world: World) -> None:
    deployment = ("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n"
                  "  selector: {matchLabels: {app: web}}\n  template:\n    metadata:\n"
                  "      labels: {app: web}\n    spec:\n      containers: [{name: c, image: i}]\n")
    world.source({"deploy/web.yaml": deployment})
    run = _run(world, _ks(wait=True, timeout="5m"))
    for step in (world.controller.fetch, world.controller.build, world.controller.apply,
                 world.controller.prune):
        assert step(run) == DONE
    result = world.controller.assess_health(run)
    assert result.action is Action.REQUEUE and result.after == 5.0
    healthy = run.conditions.get("Healthy")
    assert healthy is not None and (healthy.status, healthy.reason) == ("Unknown", "Progressing")


# --- how a reconcile ends ----------------------------------------------------------------------


def _cond(obj: Obj, type_: str) -> dict[str, Any]:
    found = find_condition(obj["status"].get("conditions"), type_)
    assert found is not None, obj["status"]
    return dict(found)


def test_success_is_ready_with_the_applied_revision(world: World) -> None:
    world.source({"deploy/a.yaml": CM.format(name="a")})
    world.cluster.apply(_ks())
    ks = world.reconcile()
    ready = _cond(ks, "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "True", "ReconciliationSucceeded", "Applied revision: main@sha1:aaa")
    assert ks["status"]["lastAppliedRevision"] == "main@sha1:aaa"
    assert ks["status"]["observedGeneration"] == ks["metadata"]["generation"]
    assert find_condition(ks["status"]["conditions"], "Reconciling") is None


@pytest.mark.parametrize("first", [True, False], ids=["first-reconcile", "after-success"])
def test_a_transient_source_read_failure_is_never_ready_and_keeps_the_applied_revision(
    world: World, first: bool
) -> None:
    world.source({"deploy/a.yaml": CM.format(name="a")})
    world.cluster.apply(_ks())
    before = None if first else world.reconcile()
    ks = world.cluster.get(KS_API, "Kustomization", NS, "app")
    assert ks is not None
    real_get = world.cluster.get

    def get(api_version: str, kind: str, *args: Any) -> Any:
        if kind == "GitRepository":
            raise Transient("SourceUnavailable", "cannot read the source: connection reset")
        return real_get(api_version, kind, *args)

    world.cluster.get = get  # type: ignore[method-assign, assignment]
    with pytest.raises(Transient):
        world.controller.reconcile(ks)
    world.cluster.get = real_get  # type: ignore[method-assign]
    after = world.cluster.get(KS_API, "Kustomization", NS, "app")
    assert after is not None
    ready, reconciling = _cond(after, "Ready"), _cond(after, "Reconciling")
    assert (ready["status"], ready["reason"]) == ("False", "SourceUnavailable")
    assert "connection reset" in ready["message"]
    assert (reconciling["status"], reconciling["reason"]) == ("True", PROGRESSING_WITH_RETRY)
    if first:
        assert "lastAppliedRevision" not in after["status"]
    else:
        assert before is not None
        for kept in ("lastAppliedRevision", "lastAppliedDigest", "inventory"):
            assert after["status"][kept] == before["status"][kept]


def test_a_crash_in_a_step_is_a_reconcile_error(world: World,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    world.source({"deploy/a.yaml": CM.format(name="a")})
    world.cluster.apply(_ks())
    before = world.reconcile()

    def crash(_run: KsRun) -> Any:
        raise KeyError("boom")

    monkeypatch.setattr(world.controller, "steps", (world.controller.fetch, crash))
    ks = world.cluster.get(KS_API, "Kustomization", NS, "app")
    assert ks is not None
    with pytest.raises(KeyError):
        world.controller.reconcile(ks)
    after = world.cluster.get(KS_API, "Kustomization", NS, "app")
    assert after is not None
    ready = _cond(after, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", RECONCILE_ERROR)
    assert "KeyError" in ready["message"]
    assert after["status"]["lastAppliedRevision"] == before["status"]["lastAppliedRevision"]


def test_a_stop_is_not_reconciling_and_a_requeue_is(world: World) -> None:
    world.cluster.apply(_ks(patches=[]))
    ks = world.reconcile()
    assert _cond(ks, "Ready")["reason"] == "BuildFailed"
    assert find_condition(ks["status"]["conditions"], "Reconciling") is None
    assert world.controller.check_dependencies(KsRun.of(ks)) == STOP

    world.cluster.apply(_ks(dependsOn=[{"name": "db"}]))
    ks = world.reconcile()
    assert _cond(ks, "Ready")["reason"] == "DependencyNotReady"
    assert _cond(ks, "Reconciling")["status"] == "True"
