"""The GitRepository steps (check_spec, check_interval, load_inputs, sync), each on its own (table
tests), and the endings the one summarizer writes: Flux's conditions with observedGeneration."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from reconciler.model.conditions import find_condition
from reconciler.model.objects import Obj
from reconciler.runtime.reconcile import DONE, PROGRESSING_WITH_RETRY, Action, Ending
from reconciler.sources.artifacts import ArtifactStore
from reconciler.sources.git import GitRepositoryController, GitRun
from reconciler.sources.gitspec import GitAuthenticationError, GitSpecError


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def now(self) -> float:
        return self.t


def _repo(path: Path) -> str:
    path.mkdir(parents=True)
    for args in (["init", "-q", "-b", "main"], ["config", "user.email", "t@example.com"],
                 ["config", "user.name", "t"]):
        subprocess.run(["git", *args], cwd=path, check=True)
    (path / "a.yaml").write_text("a: 1\n")
    subprocess.run(["git", "add", "-A"], cwd=path, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "one"], cwd=path, check=True)
    return f"file://{path}"


def _obj(source: str, generation: int = 1, status: dict[str, Any] | None = None,
         **spec: Any) -> Obj:
    return {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": "app", "namespace": "default", "generation": generation,
                         "uid": "u1"},
            "spec": {"url": source, "interval": "1m0s", "ref": {"branch": "main"}, **spec},
            "status": status or {}}


@pytest.fixture
def controller(tmp_path: Path) -> GitRepositoryController:
    store = ArtifactStore(tmp_path / "store", "http://artifacts.test")
    return GitRepositoryController(store, Clock(), tmp_path / "work", allow_local_urls=True)


def _run(controller: GitRepositoryController, obj: Obj) -> GitRun:
    return controller._begin(obj, ("default", "app"), None)


@pytest.mark.parametrize(
    ("spec", "raises", "verified"),
    [({}, None, None),
     ({"url": "ftp://example.com/repo.git"}, "InvalidURL", None),
     ({"verify": {"mode": "Sometimes", "secretRef": {"name": "keys"}}},
      "InvalidVerificationMode", "False")],
    ids=["valid", "bad-scheme", "bad-verification-mode"],
)
def test_check_spec(controller: GitRepositoryController, tmp_path: Path,
                    spec: dict[str, Any], raises: str | None, verified: str | None) -> None:
    run = _run(controller, _obj(_repo(tmp_path / "repo"), **spec))
    if raises is None:
        assert controller.check_spec(run) == DONE
        assert run.spec is not None
    else:
        with pytest.raises(GitSpecError) as caught:
            controller.check_spec(run)
        assert caught.value.reason == raises
    found = run.conditions.get("SourceVerified")
    assert (found.status if found else None) == verified


@pytest.mark.parametrize(
    ("suspend", "observed", "action", "progress"),
    [(False, None, Action.DONE, None),
     (True, None, Action.REQUEUE, None),
     (False, 1, Action.DONE, "processing object: new generation 1 -> 2")],
    ids=["first", "suspended", "new-generation"],
)
def test_check_interval(controller: GitRepositoryController, tmp_path: Path, suspend: bool,
                        observed: int | None, action: Action, progress: str | None) -> None:
    status = {} if observed is None else {"observedGeneration": observed}
    run = _run(controller, _obj(_repo(tmp_path / "repo"), generation=2, status=status,
                                suspend=suspend))
    assert controller.check_spec(run) == DONE
    assert controller.check_interval(run).action is action
    assert run.skipped == suspend
    found = run.conditions.get("Reconciling")
    assert (found.message if found else None) == progress


def test_load_inputs_records_a_missing_secret_on_fetch_failed(
    controller: GitRepositoryController, tmp_path: Path
) -> None:
    run = _run(controller, _obj(_repo(tmp_path / "repo"), secretRef={"name": "creds"}))
    for step in (controller.check_spec, controller.check_interval):
        assert step(run) == DONE
    with pytest.raises(GitAuthenticationError):
        controller.load_inputs(run)
    found = run.conditions.get("FetchFailed")
    assert found is not None and (found.status, found.reason) == ("True", "AuthenticationFailed")


def test_sync_stores_an_artifact(controller: GitRepositoryController, tmp_path: Path) -> None:
    run = _run(controller, _obj(_repo(tmp_path / "repo")))
    for step in controller.steps:
        assert step(run) == DONE
    assert run.artifact is not None and run.artifact.revision.startswith("main@sha1:")
    stored = run.conditions.get("ArtifactInStorage")
    assert stored is not None and stored.status == "True"


# --- endings -----------------------------------------------------------------------------------


def _cond(status: dict[str, Any], type_: str) -> dict[str, Any] | None:
    found = find_condition(status.get("conditions"), type_)
    return None if found is None else dict(found)


def test_success_then_a_crash_keeps_the_artifact_and_retries(
    controller: GitRepositoryController, tmp_path: Path
) -> None:
    url = _repo(tmp_path / "repo")
    first = controller.reconcile(_obj(url))
    ready = _cond(first.status, "Ready")
    assert ready is not None and ready["status"] == "True" and ready["observedGeneration"] == 1
    assert first.status["observedGeneration"] == 1

    obj = _obj(url, generation=2, status=first.status)
    run = _run(controller, obj)
    controller.finish(run, Ending(None, KeyError("boom")))
    assert run.result is not None
    status = run.result.status
    assert status["artifact"] == first.status["artifact"]
    assert status["observedGeneration"] == 1  # a failure does not observe the generation
    failed = _cond(status, "Ready")
    reconciling = _cond(status, "Reconciling")
    assert failed is not None and (failed["status"], failed["reason"]) == ("False",
                                                                           "ReconcileError")
    assert reconciling is not None and reconciling["reason"] == PROGRESSING_WITH_RETRY
    stored = _cond(status, "ArtifactInStorage")
    assert stored is not None and stored["status"] == "True"


def test_a_stalled_spec_observes_the_generation_and_is_not_reconciling(
    controller: GitRepositoryController,
) -> None:
    result = controller.reconcile(_obj("ftp://example.com/repo.git", generation=3))
    stalled = _cond(result.status, "Stalled")
    assert stalled is not None and stalled["status"] == "True"
    assert result.status["observedGeneration"] == 3
    assert _cond(result.status, "Reconciling") is None
    assert result.requeue_after == controller.backoff_max
