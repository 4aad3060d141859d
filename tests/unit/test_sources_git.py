"""GitRepositoryController against real git repositories made with the git CLI (no git mocks)."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from reconciler.model.conditions import find_condition
from reconciler.model.objects import Obj
from reconciler.sources.artifacts import ArtifactStore
from reconciler.sources.git import (
    GitRepositoryController,
    SourceResult,
    parse_duration,
    sanitize_url,
)
from tests.gitservers import GitDaemon

START = 1_700_000_000.0
BASE_URL = "http://artifacts.test"


class FakeClock:
    def __init__(self) -> None:
        self.t = START

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
    done = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", *args],
        cwd=cwd, env=env, check=True, capture_output=True, text=True,
    )
    return done.stdout.strip()


class Upstream:
    """A repository on disk that tests commit to, as a remote would change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True)
        git(path, "init", "-q", "-b", "main")

    @property
    def url(self) -> str:
        return f"file://{self.path}"

    def commit(self, files: dict[str, str], message: str) -> str:
        for rel, content in files.items():
            target = self.path / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
        git(self.path, "add", "-A")
        git(self.path, "commit", "-q", "-m", message)
        return git(self.path, "rev-parse", "HEAD")


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    repo = Upstream(tmp_path / "remote" / "app.git")
    repo.commit(
        {"deploy/app.yaml": "replicas: 1\n", ".github/workflows/ci.yml": "on: push\n"},
        "initial",
    )
    return repo


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "store", BASE_URL)


@pytest.fixture
def controller(store: ArtifactStore, clock: FakeClock, tmp_path: Path) -> GitRepositoryController:
    return GitRepositoryController(store, clock, tmp_path / "work", allow_local_urls=True)


def gitrepository(url: str, ref: dict[str, str] | None = None, **spec: Any) -> Obj:
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": "app", "namespace": "default", "generation": 1, "uid": "u1"},
        "spec": {"url": url, "interval": "1m0s", **({"ref": ref} if ref else {}), **spec},
    }


def apply(obj: Obj, result: SourceResult) -> Obj:
    """Persist a result's status, as the engine would before the next reconcile."""
    obj["status"] = result.status
    return obj


def cond(result: SourceResult, type_: str) -> dict[str, Any]:
    found = find_condition(result.status.get("conditions"), type_)
    assert found is not None, f"no {type_} condition in {result.status}"
    return dict(found)


def archive_files(store: ArtifactStore, result: SourceResult) -> dict[str, str]:
    data = store.open(result.status["artifact"]["path"]).read_bytes()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        out = {}
        for member in tar.getmembers():
            if member.isfile():
                fh = tar.extractfile(member)
                assert fh is not None
                out[member.name] = fh.read().decode()
        return out


def test_branch_stores_artifact_with_flux_status(
    controller: GitRepositoryController, upstream: Upstream, store: ArtifactStore
) -> None:
    sha = git(upstream.path, "rev-parse", "HEAD")
    result = controller.reconcile(gitrepository(upstream.url, {"branch": "main"}))

    artifact = result.status["artifact"]
    assert artifact["revision"] == f"main@sha1:{sha}"
    assert artifact["path"].startswith("gitrepository/default/app/")
    assert artifact["url"] == f"{BASE_URL}/{artifact['path']}"
    assert artifact["digest"].startswith("sha256:")
    assert artifact["lastUpdateTime"] == "2023-11-14T22:13:20Z"
    assert result.status["observedGeneration"] == 1
    ready = cond(result, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Succeeded")
    assert ready["message"] == f"stored artifact for revision 'main@sha1:{sha}'"
    assert ready["observedGeneration"] == 1
    assert cond(result, "ArtifactInStorage")["status"] == "True"
    assert find_condition(result.status["conditions"], "FetchFailed") is None
    assert [(e.type, e.reason, e.message) for e in result.events] == [
        ("Normal", "NewArtifact", "stored artifact for commit 'initial'")
    ]
    assert result.requeue_after == 60
    # Flux's default exclusions keep CI config out of the artifact.
    assert archive_files(store, result) == {"deploy/app.yaml": "replicas: 1\n"}


def test_no_ref_defaults_to_master_like_flux(
    controller: GitRepositoryController, upstream: Upstream
) -> None:
    result = controller.reconcile(gitrepository(upstream.url))
    assert cond(result, "FetchFailed")["reason"] == "GitOperationFailed"
    assert "branch 'master'" in cond(result, "Ready")["message"]

    git(upstream.path, "branch", "master")
    obj = gitrepository(upstream.url)
    obj["metadata"]["generation"] = 2
    master = controller.reconcile(obj)
    assert master.status["artifact"]["revision"].startswith("master@sha1:")


def test_annotated_tag_resolves_to_its_commit(
    controller: GitRepositoryController, upstream: Upstream, store: ArtifactStore
) -> None:
    tagged = git(upstream.path, "rev-parse", "HEAD")
    git(upstream.path, "tag", "-a", "v1.0.0", "-m", "release")
    upstream.commit({"deploy/app.yaml": "replicas: 2\n"}, "after the tag")

    result = controller.reconcile(gitrepository(upstream.url, {"tag": "v1.0.0"}))
    assert result.status["artifact"]["revision"] == f"v1.0.0@sha1:{tagged}"
    assert archive_files(store, result)["deploy/app.yaml"] == "replicas: 1\n"


def test_tag_takes_precedence_over_branch(
    controller: GitRepositoryController, upstream: Upstream
) -> None:
    git(upstream.path, "tag", "light")
    result = controller.reconcile(gitrepository(upstream.url, {"branch": "main", "tag": "light"}))
    assert result.status["artifact"]["revision"].startswith("light@sha1:")


def test_semver_picks_the_highest_matching_tag(
    controller: GitRepositoryController, upstream: Upstream
) -> None:
    git(upstream.path, "tag", "v1.0.0")
    second = upstream.commit({"deploy/app.yaml": "replicas: 2\n"}, "second")
    git(upstream.path, "tag", "-a", "v1.1.0", "-m", "minor")
    upstream.commit({"deploy/app.yaml": "replicas: 3\n"}, "third")
    git(upstream.path, "tag", "v2.0.0")

    result = controller.reconcile(gitrepository(upstream.url, {"semver": ">=1.0.0 <2.0.0"}))
    assert result.status["artifact"]["revision"] == f"v1.1.0@sha1:{second}"


def test_commit_pins_an_older_revision(
    controller: GitRepositoryController, upstream: Upstream, store: ArtifactStore
) -> None:
    first = git(upstream.path, "rev-parse", "HEAD")
    upstream.commit({"deploy/app.yaml": "replicas: 2\n"}, "second")

    result = controller.reconcile(gitrepository(upstream.url, {"commit": first}))
    assert result.status["artifact"]["revision"] == f"sha1:{first}"
    assert archive_files(store, result)["deploy/app.yaml"] == "replicas: 1\n"
    # A pinned commit needs no ls-remote: the spec already names the revision.
    assert controller.ls_remote_calls == 0


def test_commit_with_branch_and_abbreviated_sha(
    controller: GitRepositoryController, upstream: Upstream, clock: FakeClock
) -> None:
    first = git(upstream.path, "rev-parse", "HEAD")
    upstream.commit({"deploy/app.yaml": "replicas: 2\n"}, "second")
    obj = gitrepository(upstream.url, {"branch": "main", "commit": first[:10]})

    result = controller.reconcile(obj)
    assert result.status["artifact"]["revision"] == f"main@sha1:{first}"
    clock.advance(61)
    again = controller.reconcile(apply(obj, result))
    assert again.status["artifact"] == result.status["artifact"]
    assert controller.fetch_calls == 1


def test_name_ref_uses_the_full_reference_as_revision_name(
    controller: GitRepositoryController, upstream: Upstream
) -> None:
    sha = git(upstream.path, "rev-parse", "HEAD")
    result = controller.reconcile(gitrepository(upstream.url, {"name": "refs/heads/main"}))
    assert result.status["artifact"]["revision"] == f"refs/heads/main@sha1:{sha}"


def test_new_commit_gives_new_revision_artifact_and_event(
    controller: GitRepositoryController, upstream: Upstream, clock: FakeClock,
    store: ArtifactStore,
) -> None:
    obj = gitrepository(upstream.url, {"branch": "main"})
    first = controller.reconcile(obj)
    apply(obj, first)

    sha = upstream.commit({"deploy/app.yaml": "replicas: 3\n"}, "scale to three")
    clock.advance(60)
    second = controller.reconcile(obj)

    assert second.status["artifact"]["revision"] == f"main@sha1:{sha}"
    assert second.status["artifact"]["digest"] != first.status["artifact"]["digest"]
    assert second.status["artifact"]["path"] != first.status["artifact"]["path"]
    assert [(e.reason, e.message) for e in second.events] == [
        ("NewArtifact", "stored artifact for commit 'scale to three'")
    ]
    # Ready stayed True, so its transition time is the first one.
    assert cond(second, "Ready")["lastTransitionTime"] == cond(first, "Ready")["lastTransitionTime"]
    assert archive_files(store, second)["deploy/app.yaml"] == "replicas: 3\n"
    assert (controller.ls_remote_calls, controller.fetch_calls) == (2, 2)


def test_unchanged_remote_costs_one_ls_remote_and_no_fetch(
    controller: GitRepositoryController, upstream: Upstream, clock: FakeClock
) -> None:
    obj = gitrepository(upstream.url, {"branch": "main"})
    first = controller.reconcile(obj)
    apply(obj, first)
    clock.advance(61)

    again = controller.reconcile(obj)
    assert again.status == first.status
    assert again.events == []
    assert (controller.ls_remote_calls, controller.fetch_calls) == (2, 1)


def test_objects_on_the_same_url_and_commit_share_one_fetch_and_archive(
    controller: GitRepositoryController, upstream: Upstream, store: ArtifactStore
) -> None:
    results = []
    for name in ("one", "two", "three"):
        obj = gitrepository(upstream.url, {"branch": "main"})
        obj["metadata"].update(name=name, uid=f"uid-{name}")
        results.append(controller.reconcile(obj))
    artifacts = [r.status["artifact"] for r in results]
    assert controller.fetch_calls == 1
    assert len({a["digest"] for a in artifacts}) == 1
    assert len({a["path"] for a in artifacts}) == 3
    assert all(r.events and r.events[0].reason == "NewArtifact" for r in results)
    assert archive_files(store, results[2]) == archive_files(store, results[0])
    # A different content configuration is a different archive: no sharing across it.
    other = gitrepository(upstream.url, {"branch": "main"}, ignore="deploy/\n")
    other["metadata"].update(name="four", uid="uid-four")
    controller.reconcile(other)
    assert controller.fetch_calls == 2


def test_interval_gate_skips_polling_until_due_or_asked(
    controller: GitRepositoryController, upstream: Upstream, clock: FakeClock
) -> None:
    obj = gitrepository(upstream.url, {"branch": "main"})
    apply(obj, controller.reconcile(obj))

    clock.advance(20)
    skipped = controller.reconcile(obj)
    assert skipped.requeue_after == pytest.approx(40)
    assert controller.ls_remote_calls == 1

    obj["metadata"]["annotations"] = {"reconcile.fluxcd.io/requestedAt": "now-1"}
    asked = controller.reconcile(obj)
    assert controller.ls_remote_calls == 2
    assert asked.status["lastHandledReconcileAt"] == "now-1"
    apply(obj, asked)

    obj["metadata"]["generation"] = 2
    bumped = controller.reconcile(obj)
    assert controller.ls_remote_calls == 3
    assert bumped.status["observedGeneration"] == 2


def test_missing_branch_fails_and_keeps_the_previous_artifact(
    controller: GitRepositoryController, upstream: Upstream, clock: FakeClock,
    store: ArtifactStore,
) -> None:
    obj = gitrepository(upstream.url, {"branch": "main"})
    good = controller.reconcile(obj)
    apply(obj, good)

    obj["spec"]["ref"] = {"branch": "nope"}
    obj["metadata"]["generation"] = 2
    failed = controller.reconcile(obj)

    fetch_failed = cond(failed, "FetchFailed")
    assert (fetch_failed["status"], fetch_failed["reason"]) == ("True", "GitOperationFailed")
    ready = cond(failed, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "GitOperationFailed")
    assert "branch 'nope'" in ready["message"]
    assert upstream.url in ready["message"]
    assert 'couldn\'t find remote ref "refs/heads/nope"' in ready["message"]
    assert cond(failed, "Reconciling")["reason"] == "ProgressingWithRetry"
    assert failed.status["artifact"] == good.status["artifact"]
    assert store.exists(good.status["artifact"]["path"])
    assert failed.status["observedGeneration"] == 1
    assert cond(failed, "ArtifactInStorage")["status"] == "True"
    assert [(e.type, e.reason) for e in failed.events] == [("Warning", "GitOperationFailed")]
    assert failed.requeue_after == 5
    apply(obj, failed)

    # Backoff grows while the failure lasts and the gate holds retries until it is over.
    assert controller.reconcile(obj).requeue_after == pytest.approx(5)
    clock.advance(5)
    assert controller.reconcile(obj).requeue_after == 10
    assert controller.fetch_calls == 1

    # Fixing the spec recovers; the negative-polarity conditions disappear.
    obj["spec"]["ref"] = {"branch": "main"}
    obj["metadata"]["generation"] = 3
    recovered = controller.reconcile(obj)
    assert cond(recovered, "Ready")["status"] == "True"
    assert find_condition(recovered.status["conditions"], "FetchFailed") is None
    assert find_condition(recovered.status["conditions"], "Reconciling") is None
    assert recovered.status["observedGeneration"] == 3


def test_password_in_url_is_refused_without_leaking_it(
    controller: GitRepositoryController,
) -> None:
    # A password in spec.url would reach git's argv (visible to `ps`): spec.secretRef is the way.
    port = 9
    obj = gitrepository(f"http://deploy:s3cr3t@127.0.0.1:{port}/app.git", {"branch": "main"})
    result = controller.reconcile(obj)

    ready = cond(result, "Ready")
    assert ready["status"] == "False"
    assert ready["reason"] == "InvalidURL"
    assert cond(result, "Stalled")["reason"] == "InvalidURL"
    assert f"'http://127.0.0.1:{port}/app.git'" in ready["message"]
    assert "spec.secretRef" in ready["message"]
    assert "artifact" not in result.status
    everything = repr(result.status) + repr(result.events)
    assert "s3cr3t" not in everything
    assert "deploy@" not in everything


def test_remote_asking_for_credentials_is_an_authentication_failure(
    controller: GitRepositoryController,
) -> None:
    class Unauthorized(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Unauthorized)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        port = httpd.server_address[1]
        result = controller.reconcile(
            gitrepository(f"http://127.0.0.1:{port}/app.git", {"branch": "main"})
        )
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
    assert cond(result, "FetchFailed")["reason"] == "AuthenticationFailed"
    assert cond(result, "Ready")["reason"] == "AuthenticationFailed"


def test_pinned_commit_missing_on_remote(
    controller: GitRepositoryController, upstream: Upstream
) -> None:
    missing = "0123456789abcdef0123456789abcdef01234567"
    result = controller.reconcile(gitrepository(upstream.url, {"commit": missing}))
    ready = cond(result, "Ready")
    assert ready["reason"] == "GitOperationFailed"
    assert f"commit '{missing}' not found" in ready["message"]


def test_artifact_gone_from_storage_is_fetched_again(
    controller: GitRepositoryController, upstream: Upstream, store: ArtifactStore,
    clock: FakeClock,
) -> None:
    obj = gitrepository(upstream.url, {"branch": "main"})
    first = controller.reconcile(obj)
    apply(obj, first)
    store.open(first.status["artifact"]["path"]).unlink()

    again = controller.reconcile(obj)  # inside the interval, yet the artifact is missing
    # Rebuilt from the local checkout of the same commit: no second network fetch.
    assert (controller.ls_remote_calls, controller.fetch_calls) == (1, 1)
    assert store.exists(again.status["artifact"]["path"])


def test_suspended_object_is_left_alone(
    controller: GitRepositoryController, upstream: Upstream
) -> None:
    obj = gitrepository(upstream.url, {"branch": "main"}, suspend=True)
    obj["status"] = {"observedGeneration": 7}
    result = controller.reconcile(obj)
    assert result.status == {"observedGeneration": 7}
    assert controller.ls_remote_calls == 0


@pytest.mark.parametrize(
    ("spec", "reason", "fragment"),
    [
        ({"interval": "soon"}, "InvalidSpec", "spec.interval"),
        ({"url": ""}, "InvalidURL", "spec.url"),
        ({"url": "ftp://example.com/repo"}, "InvalidURL", "ftp"),
        ({"ref": {"commit": "zzz"}}, "InvalidSpec", "spec.ref.commit"),
    ],
)
def test_invalid_spec_stalls(
    controller: GitRepositoryController, upstream: Upstream, spec: dict[str, Any], reason: str,
    fragment: str,
) -> None:
    obj = gitrepository(upstream.url)
    obj["spec"].update(spec)
    result = controller.reconcile(obj)
    stalled = cond(result, "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", reason)
    assert fragment in stalled["message"]
    assert cond(result, "Ready")["status"] == "False"
    assert controller.ls_remote_calls == 0


@pytest.mark.parametrize(("namespace", "name"), [("default", ".."), ("", "app")])
def test_names_that_are_not_safe_paths_stall(
    controller: GitRepositoryController, upstream: Upstream, tmp_path: Path, namespace: str,
    name: str,
) -> None:
    obj = gitrepository(upstream.url)
    obj["metadata"].update(namespace=namespace, name=name)
    result = controller.reconcile(obj)
    assert cond(result, "Stalled")["reason"] == "InvalidSpec"
    assert controller.ls_remote_calls == 0
    assert not (tmp_path / "work").exists()


@pytest.fixture
def git_daemon(tmp_path: Path, upstream: Upstream) -> Iterator[str]:
    """Serve the upstream's parent folder over git:// on a free local port."""
    with GitDaemon(upstream.path.parent) as daemon:
        yield f"git://127.0.0.1:{daemon.port}/{upstream.path.name}"


def test_git_protocol_via_git_daemon(
    controller: GitRepositoryController, upstream: Upstream, git_daemon: str, clock: FakeClock
) -> None:
    sha = git(upstream.path, "rev-parse", "HEAD")
    obj = gitrepository(git_daemon, {"branch": "main"})
    first = controller.reconcile(obj)
    assert first.status["artifact"]["revision"] == f"main@sha1:{sha}"
    apply(obj, first)

    newer = upstream.commit({"deploy/app.yaml": "replicas: 5\n"}, "over the wire")
    clock.advance(60)
    second = controller.reconcile(obj)
    assert second.status["artifact"]["revision"] == f"main@sha1:{newer}"


def test_local_path_url(controller: GitRepositoryController, upstream: Upstream) -> None:
    result = controller.reconcile(gitrepository(str(upstream.path), {"branch": "main"}))
    assert cond(result, "Ready")["status"] == "True"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1m0s", 60), ("30s", 30), ("1h", 3600), ("1.5h", 5400), ("2h45m", 9900), ("500ms", 0.5),
     ("0", 0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "1", "1x", "m", "1m 2s"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_sanitize_url() -> None:
    assert sanitize_url("https://user:pw@host/org/repo") == "https://host/org/repo"
    assert sanitize_url("ssh://git@host:22/repo") == "ssh://host:22/repo"
    assert sanitize_url("/local/path") == "/local/path"
