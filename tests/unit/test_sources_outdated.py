"""Flux's ArtifactOutdated condition (True, NewRevision, "new upstream revision '<rev>'"): present
while a new upstream revision is checked out but its artifact is not stored yet, gone once it is.
Real repositories on disk; the failure after checkout is a real include whose fromPath vanished."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.model.conditions import find_condition
from reconciler.model.objects import Obj
from reconciler.sources.artifacts import ArtifactStore
from reconciler.sources.git import GitRepositoryController, SourceResult
from tests.unit.test_sources_git import (
    BASE_URL,
    FakeClock,
    Upstream,
    apply,
    cond,
    git,
    gitrepository,
)


class World:
    """An app repository including a lib repository's `sub/`, with the objects a Backend holds."""

    def __init__(self, tmp_path: Path) -> None:
        self.clock = FakeClock()
        self.store = ArtifactStore(tmp_path / "store", BASE_URL)
        self.controller = GitRepositoryController(self.store, self.clock, tmp_path / "work",
                                                  allow_local_urls=True)
        self.app_up = Upstream(tmp_path / "remote" / "app")
        self.app_up.commit({"deploy/app.yaml": "replicas: 1\n"}, "initial")
        self.lib_up = Upstream(tmp_path / "remote" / "lib")
        self.lib_up.commit({"sub/lib.yaml": "kind: Lib\n"}, "lib")
        self.lib = gitrepository(self.lib_up.url, {"branch": "main"})
        self.lib["metadata"].update(name="lib", uid="u-lib")
        self.app = gitrepository(self.app_up.url, {"branch": "main"},
                                 include=[{"repository": {"name": "lib"}, "fromPath": "sub"}])

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        return self.lib if (kind, name) == ("GitRepository", "lib") else None

    def lib_without_sub(self) -> None:
        git(self.lib_up.path, "rm", "-q", "-r", "sub")
        self.lib_up.commit({"other.yaml": "x\n"}, "drop sub")
        self.reconcile_lib()

    def lib_with_sub(self) -> None:
        self.lib_up.commit({"sub/lib.yaml": "kind: Lib\n"}, "restore sub")
        self.reconcile_lib()

    def reconcile_lib(self) -> None:
        self.clock.advance(61)
        apply(self.lib, self.controller.reconcile(self.lib, self.get))

    def reconcile_app(self) -> SourceResult:
        self.clock.advance(301)  # past any interval and backoff
        return apply_result(self.app, self.controller.reconcile(self.app, self.get))


def apply_result(obj: Obj, result: SourceResult) -> SourceResult:
    apply(obj, result)
    return result


def outdated(result: SourceResult) -> Any:
    return find_condition(result.status.get("conditions"), "ArtifactOutdated")


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World(tmp_path)
    w.reconcile_lib()
    return w


def test_new_revision_marks_the_artifact_outdated_until_its_artifact_is_stored(
    world: World,
) -> None:
    first = world.reconcile_app()
    assert cond(first, "Ready")["status"] == "True" and outdated(first) is None

    new = world.app_up.commit({"deploy/app.yaml": "replicas: 2\n"}, "scale")
    world.lib_without_sub()
    stuck = world.reconcile_app()
    revision = f"main@sha1:{new}"
    marked = cond(stuck, "ArtifactOutdated")
    assert (marked["status"], marked["reason"], marked["message"]) == (
        "True", "NewRevision", f"new upstream revision '{revision}'")
    assert cond(stuck, "Reconciling")["message"] == (
        f"building artifact: new upstream revision '{revision}'")
    assert cond(stuck, "IncludeUnavailable")["status"] == "True"
    assert cond(stuck, "Ready")["status"] == "False"
    # The old artifact is still what consumers get, and it says so.
    assert stuck.status["artifact"] == first.status["artifact"]
    assert cond(stuck, "ArtifactInStorage")["status"] == "True"

    world.lib_with_sub()
    done = world.reconcile_app()
    assert cond(done, "Ready")["status"] == "True"
    assert done.status["artifact"]["revision"] == revision
    assert outdated(done) is None
    assert find_condition(done.status["conditions"], "Reconciling") is None


@pytest.mark.parametrize("case", ["first artifact", "fetch failed", "same revision"])
def test_not_outdated_without_a_stored_artifact_or_a_new_checked_out_revision(
    world: World, case: str,
) -> None:
    if case == "first artifact":
        # Flux marks it only next to an existing artifact.
        world.lib_without_sub()
    else:
        assert cond(world.reconcile_app(), "Ready")["status"] == "True"
        if case == "fetch failed":
            world.app_up.commit({"deploy/app.yaml": "replicas: 2\n"}, "scale")
            world.app["spec"]["ref"] = {"branch": "gone"}
            world.app["metadata"]["generation"] = 2
        else:
            world.lib_without_sub()  # includes changed, the app's revision did not
    failed = world.reconcile_app()
    assert cond(failed, "Ready")["status"] == "False"
    assert outdated(failed) is None
