"""`reconcile.fluxcd.io/requestedAt` makes a GitRepository poll its remote now, past the interval
and past the listing shared by objects on the same URL, and is recorded in
`status.lastHandledReconcileAt` (reconciler/sources/git.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from reconciler.model.objects import Obj
from reconciler.sources.artifacts import ArtifactStore
from reconciler.sources.git import GitRepositoryController
from reconciler.sources.remoterefs import RemoteRefCache


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def now(self) -> float:
        return self.t


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                          cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def commit(repo: Path, content: str) -> str:
    (repo / "file.txt").write_text(content)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", content)
    return git(repo, "rev-parse", "HEAD")


def gitrepository(url: str, name: str, annotations: dict[str, str] | None = None) -> Obj:
    meta: dict[str, object] = {"name": name, "namespace": "default", "generation": 1,
                               "uid": f"u-{name}"}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": meta,
            "spec": {"url": url, "interval": "10m0s", "ref": {"branch": "main"}}}


def test_new_request_fetches_now_past_interval_and_shared_listing(tmp_path: Path) -> None:
    repo = tmp_path / "upstream"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    first = commit(repo, "one")
    clock = Clock()
    shared = RemoteRefCache(clock)
    store = ArtifactStore(tmp_path / "store", "http://artifacts.test")

    def controller() -> GitRepositoryController:
        return GitRepositoryController(store, clock, tmp_path / "work", remote_refs=shared,
                                       allow_local_urls=True)

    url = f"file://{repo}"
    running = controller()
    obj = gitrepository(url, "app")
    obj["status"] = running.reconcile(obj).status
    assert first in obj["status"]["artifact"]["revision"]

    second = commit(repo, "two")
    clock.t += 5  # well inside the 10m interval
    assert running.reconcile(obj).status == obj["status"]  # not due: nothing fetched

    obj["metadata"]["annotations"] = {"reconcile.fluxcd.io/requestedAt": "hook-1"}
    asked = running.reconcile(obj)
    assert second in asked.status["artifact"]["revision"]
    assert asked.status["lastHandledReconcileAt"] == "hook-1"
    obj["status"] = asked.status

    # A process that never saw this object (a restart), with the URL's listing shared and
    # fresh: an unhandled request still goes to the remote.
    third = commit(repo, "three")
    other = gitrepository(url, "other")
    other["status"] = running.reconcile(other).status  # the shared listing: still `second`
    assert second in other["status"]["artifact"]["revision"]
    restarted = controller()
    obj["metadata"]["annotations"] = {"reconcile.fluxcd.io/requestedAt": "hook-2"}
    handled = restarted.reconcile(obj)
    assert third in handled.status["artifact"]["revision"]
    assert handled.status["lastHandledReconcileAt"] == "hook-2"

    # A request already handled is an ordinary poll: the shared listing serves it.
    calls = restarted.ls_remote_calls
    obj["status"] = handled.status
    again = controller()
    again.reconcile(obj)
    assert again.ls_remote_calls == 0 and restarted.ls_remote_calls == calls
