"""Refs, history rewrites, many tags, failures and no-op polling against a real `git daemon`."""

from __future__ import annotations

import io
import socket
import tarfile

import pytest

from reconciler.model.conditions import find_condition
from reconciler.sources.artifacts import ArtifactStore
from reconciler.sources.git import GitRepositoryController, SourceResult
from tests.gitservers import BareRepo, GitDaemon, hanging_server
from tests.integration.conftest import FakeClock, Objects, cond, gitrepository


def files_of(store: ArtifactStore, result: SourceResult) -> dict[str, str]:
    data = store.open(result.status["artifact"]["path"]).read_bytes()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read().decode()  # type: ignore[union-attr]
                for m in tar.getmembers() if m.isfile()}


@pytest.mark.parametrize(
    ("ref", "label"),
    [
        ({"branch": "main"}, "main"),
        (None, "master"),  # Flux v1: no ref means the `master` branch
        ({"tag": "v1.0.0"}, "v1.0.0"),
        ({"tag": "v1.0.0", "branch": "main"}, "v1.0.0"),  # tag over branch
        ({"semver": ">=1.0.0 <2.0.0"}, "v1.2.0"),
        ({"semver": ">=1.0.0", "tag": "v1.0.0"}, "v2.0.0"),  # semver over tag
        ({"name": "refs/pull/7/head", "semver": ">=1.0.0"}, "refs/pull/7/head"),  # name over semver
    ],
)
def test_every_ref_kind_resolves_with_flux_precedence(
    controller: GitRepositoryController, repo: BareRepo, daemon: GitDaemon,
    store: ArtifactStore, ref: dict[str, str] | None, label: str,
) -> None:
    shas = {"main": repo.git("rev-parse", "HEAD")}
    repo.git("tag", "-a", "-m", "one", "v1.0.0")
    shas["v1.0.0"] = shas["main"]
    shas["v1.2.0"] = repo.commit({"VERSION": "1.2.0\n"}, "1.2.0")
    repo.git("tag", "v1.2.0")
    shas["v2.0.0"] = repo.commit({"VERSION": "2.0.0\n"}, "2.0.0")
    repo.git("tag", "-a", "-m", "two", "v2.0.0")
    shas["refs/pull/7/head"] = repo.commit({"pr.txt": "7\n"}, "pr", branch="pr-7")
    repo.push("--tags", "pr-7:refs/pull/7/head")
    shas["master"] = repo.commit({"m.txt": "m\n"}, "on master", branch="master")
    shas["main"] = repo.git("rev-parse", "main")

    result = controller.reconcile(gitrepository(daemon.url(repo), ref))

    assert result.status["artifact"]["revision"] == f"{label}@sha1:{shas[label]}"
    assert cond(result, "Ready")["reason"] == "Succeeded"


def test_commit_with_branch_must_be_on_that_branch(
    controller: GitRepositoryController, repo: BareRepo, daemon: GitDaemon,
) -> None:
    first = repo.git("rev-parse", "HEAD")
    repo.commit({"b.txt": "b\n"}, "main moves on")
    other = repo.commit({"x.txt": "x\n"}, "elsewhere", branch="feature")

    pinned = controller.reconcile(gitrepository(daemon.url(repo),
                                                {"branch": "main", "commit": first}))
    assert pinned.status["artifact"]["revision"] == f"main@sha1:{first}"

    wrong = gitrepository(daemon.url(repo), {"branch": "main", "commit": other}, name="wrong")
    failed = controller.reconcile(wrong)
    assert cond(failed, "FetchFailed")["reason"] == "GitOperationFailed"
    assert f"commit '{other}' not found in branch 'main'" in cond(failed, "Ready")["message"]
    assert "artifact" not in failed.status

    bare = controller.reconcile(gitrepository(daemon.url(repo), {"commit": other}, name="bare"))
    assert bare.status["artifact"]["revision"] == f"sha1:{other}"


def test_force_push_and_deleted_branch(
    controller: GitRepositoryController, repo: BareRepo, daemon: GitDaemon,
    store: ArtifactStore, clock: FakeClock,
) -> None:
    obj = gitrepository(daemon.url(repo), {"branch": "release"})
    repo.commit({"v.txt": "1\n"}, "one", branch="release")
    before = controller.reconcile(obj)
    obj["status"] = before.status

    # Rewrite history: the new tip is not a descendant of the old one.
    repo.git("checkout", "-q", "--orphan", "rewrite")
    rewritten = repo.commit({"v.txt": "rewritten\n"}, "rewritten", branch="rewrite")
    repo.push("+rewrite:refs/heads/release")
    clock.advance(60)
    after = controller.reconcile(obj)
    obj["status"] = after.status
    assert after.status["artifact"]["revision"] == f"release@sha1:{rewritten}"
    assert files_of(store, after)["v.txt"] == "rewritten\n"
    assert [e.reason for e in after.events] == ["NewArtifact"]

    repo.push(":refs/heads/release")
    clock.advance(60)
    gone = controller.reconcile(obj)
    assert cond(gone, "FetchFailed")["reason"] == "GitOperationFailed"
    assert 'couldn\'t find remote ref "refs/heads/release"' in cond(gone, "Ready")["message"]
    # Nothing lost: the last good artifact stays, in status and in storage.
    assert gone.status["artifact"] == after.status["artifact"]
    assert cond(gone, "ArtifactInStorage")["status"] == "True"
    assert store.exists(gone.status["artifact"]["path"])
    assert gone.requeue_after == 5.0  # backoff, not the interval


def test_thousands_of_tags_semver_and_tag(
    controller: GitRepositoryController, repo: BareRepo, daemon: GitDaemon,
) -> None:
    sha = repo.git("rev-parse", "HEAD")
    repo.update_refs([f"create refs/tags/v{major}.{minor}.{patch} {sha}"
                      for major in range(3) for minor in range(40) for patch in range(40)])
    top = controller.reconcile(gitrepository(daemon.url(repo), {"semver": "^1.0.0"}))
    assert top.status["artifact"]["revision"] == f"v1.39.39@sha1:{sha}"
    one = controller.reconcile(gitrepository(daemon.url(repo), {"tag": "v2.5.7"}, name="one"))
    assert one.status["artifact"]["revision"] == f"v2.5.7@sha1:{sha}"
    # Both objects share the one listing of the remote's 4800 refs.
    assert controller.ls_remote_calls == 1


def test_unreachable_host_keeps_the_last_artifact(
    controller: GitRepositoryController, repo: BareRepo, daemon: GitDaemon, clock: FakeClock,
) -> None:
    obj = gitrepository(daemon.url(repo), {"branch": "main"})
    good = controller.reconcile(obj)
    obj["status"] = good.status
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    obj["spec"]["url"] = f"git://127.0.0.1:{port}/app.git"  # nothing listens there
    obj["metadata"]["generation"] = 2
    failed = controller.reconcile(obj)
    ready = cond(failed, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "GitOperationFailed")
    assert f"'git://127.0.0.1:{port}/app.git'" in ready["message"]
    assert "unable to list remote refs" in ready["message"]
    assert cond(failed, "Reconciling")["message"] == "processing object: new generation 1 -> 2"
    assert failed.status["artifact"] == good.status["artifact"]
    assert failed.status["observedGeneration"] == 1
    # Exponential backoff on repeated failures.
    obj["status"] = failed.status
    delays = [failed.requeue_after]
    for _ in range(3):
        clock.advance(delays[-1])
        again = controller.reconcile(obj)
        obj["status"] = again.status
        delays.append(again.requeue_after)
    assert delays == [5.0, 10.0, 20.0, 40.0]


def test_timeout_stops_a_remote_that_never_answers(
    controller: GitRepositoryController,
) -> None:
    with hanging_server() as port:
        result = controller.reconcile(
            gitrepository(f"git://127.0.0.1:{port}/app.git", {"branch": "main"}, timeout="300ms")
        )
    message = cond(result, "Ready")["message"]
    assert "timed out after 0.3s (spec.timeout)" in message


def test_polling_many_objects_on_one_url_shares_ls_remote_and_never_fetches(
    controller: GitRepositoryController, repo: BareRepo, daemon: GitDaemon, clock: FakeClock,
) -> None:
    objs = [gitrepository(daemon.url(repo), {"branch": "main"}, name=f"app-{i}")
            for i in range(8)]
    for obj in objs:
        obj["status"] = controller.reconcile(obj).status
    assert controller.ls_remote_calls == 1
    controller.ls_remote_calls = controller.fetch_calls = 0
    for _ in range(5):
        clock.advance(60)
        for obj in objs:
            result = controller.reconcile(obj)
            assert result.events == []
            obj["status"] = result.status
    assert (controller.ls_remote_calls, controller.fetch_calls) == (5, 0)

    # An explicit request bypasses the shared listing.
    objs[0]["metadata"]["annotations"] = {"reconcile.fluxcd.io/requestedAt": "now"}
    asked = controller.reconcile(objs[0])
    assert asked.status["lastHandledReconcileAt"] == "now"
    assert controller.ls_remote_calls == 6


def test_content_config_changes_rebuild_without_refetching_unless_checkout_changes(
    controller: GitRepositoryController, repo: BareRepo, daemon: GitDaemon,
    store: ArtifactStore, clock: FakeClock,
) -> None:
    repo.commit({
        "deploy/app.md": "# docs\n", "deploy/sub/.sourceignore": "*.txt\n!keep.txt\n",
        "deploy/sub/a.txt": "a\n", "deploy/sub/keep.txt": "k\n", "logo.png": "png\n",
        "other/x.yaml": "x: 1\n", ".sourceignore": "other/\n",
    }, "content")
    obj = gitrepository(daemon.url(repo), {"branch": "main"})
    first = controller.reconcile(obj)
    obj["status"] = first.status
    assert sorted(files_of(store, first)) == [
        ".sourceignore", "README.md", "deploy/app.md", "deploy/app.yaml",
        "deploy/sub/.sourceignore", "deploy/sub/keep.txt",
    ]
    assert "observedIgnore" not in first.status

    # spec.ignore comes last: it can re-include what a default excluded.
    obj["spec"]["ignore"] = "*.md\n!logo.png\n"
    obj["metadata"]["generation"] = 2
    second = controller.reconcile(obj)
    obj["status"] = second.status
    assert "logo.png" in files_of(store, second) and "deploy/app.md" not in files_of(store, second)
    assert second.status["observedIgnore"] == "*.md\n!logo.png\n"
    assert second.status["artifact"]["revision"] == first.status["artifact"]["revision"]
    assert second.status["artifact"]["digest"] != first.status["artifact"]["digest"]
    assert controller.fetch_calls == 1  # same commit: rebuilt from the local checkout

    obj["spec"]["sparseCheckout"] = ["deploy"]
    obj["metadata"]["generation"] = 3
    third = controller.reconcile(obj)
    obj["status"] = third.status
    assert sorted(files_of(store, third)) == [
        ".sourceignore", "deploy/app.yaml", "deploy/sub/.sourceignore", "deploy/sub/keep.txt",
        "logo.png",
    ]
    assert third.status["observedSparseCheckout"] == ["deploy"]
    assert controller.fetch_calls == 2

    clock.advance(60)
    assert controller.reconcile(obj).status == third.status
    assert controller.fetch_calls == 2

    obj["spec"]["sparseCheckout"] = ["nope"]
    obj["metadata"]["generation"] = 4
    missing = controller.reconcile(obj)
    assert "sparse checkout dir 'nope' does not exist" in cond(missing, "Ready")["message"]
    assert missing.status["artifact"] == third.status["artifact"]


def test_include_copies_another_repositorys_artifact_and_follows_it(
    controller: GitRepositoryController, repo: BareRepo, daemon: GitDaemon,
    store: ArtifactStore, clock: FakeClock, objects: Objects,
) -> None:
    lib = BareRepo(repo.root, "lib")
    lib.commit({"base/kustomization.yaml": "resources: []\n", "README.md": "lib\n"}, "lib")
    included = objects.add(gitrepository(daemon.url(lib), {"branch": "main"}, name="lib"))
    app = gitrepository(daemon.url(repo), {"branch": "main"}, include=[
        {"repository": {"name": "lib"}, "fromPath": "base", "toPath": "vendor/lib"}])

    waiting = controller.reconcile(app, objects.get)
    assert cond(waiting, "IncludeUnavailable")["status"] == "True"
    assert cond(waiting, "Ready")["status"] == "False"

    included["status"] = controller.reconcile(included, objects.get).status
    clock.advance(5)
    built = controller.reconcile(app, objects.get)
    app["status"] = built.status
    assert files_of(store, built)["vendor/lib/kustomization.yaml"] == "resources: []\n"
    assert "vendor/lib/README.md" not in files_of(store, built)
    assert built.status["observedInclude"] == [
        {"repository": {"name": "lib"}, "fromPath": "base", "toPath": "vendor/lib"}]
    assert built.status["includedArtifacts"][0]["revision"] == (
        included["status"]["artifact"]["revision"])
    assert find_condition(built.status["conditions"], "IncludeUnavailable") is None

    lib.commit({"base/kustomization.yaml": "resources: [a.yaml]\n"}, "lib moves")
    clock.advance(60)
    included["status"] = controller.reconcile(included, objects.get).status
    fetches = controller.fetch_calls
    moved = controller.reconcile(app, objects.get)
    assert files_of(store, moved)["vendor/lib/kustomization.yaml"] == "resources: [a.yaml]\n"
    assert controller.fetch_calls == fetches  # app's own commit did not move


def test_recurse_submodules(
    controller: GitRepositoryController, repo: BareRepo, daemon: GitDaemon, store: ArtifactStore,
) -> None:
    child = BareRepo(repo.root, "child")
    child.commit({"child.yaml": "child: true\n"}, "child")
    repo.git("-c", "protocol.allow=always", "submodule", "add", "-q", daemon.url(child),
             "libs/child")
    repo.commit({}, "add submodule")
    with_modules = controller.reconcile(
        gitrepository(daemon.url(repo), {"branch": "main"}, recurseSubmodules=True))
    assert files_of(store, with_modules)["libs/child/child.yaml"] == "child: true\n"
    assert with_modules.status["observedRecurseSubmodules"] is True
    without = controller.reconcile(gitrepository(daemon.url(repo), {"branch": "main"}, name="flat"))
    assert "libs/child/child.yaml" not in files_of(store, without)


def test_suspended_object_makes_no_remote_call(
    controller: GitRepositoryController, repo: BareRepo, daemon: GitDaemon,
) -> None:
    result = controller.reconcile(gitrepository(daemon.url(repo), {"branch": "main"},
                                                suspend=True))
    assert result.status == {}
    assert (controller.ls_remote_calls, controller.fetch_calls) == (0, 0)


