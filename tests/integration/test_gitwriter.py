"""The simulated git-writer TaskRun against a real Git server on 127.0.0.1 (smart HTTP with
Basic auth): real clones, commits and pushes, one commit per distinct content, none when
nothing changed, the branch created, credentials from a Secret, and no write leaving the
checkout."""

from __future__ import annotations

import base64
import concurrent.futures
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from simulator import tekton
from simulator.environment import SimulatedEnvironment
from simulator.gitwriter import encode_files
from simulator.tekton import LOGS_ANNOTATION, TektonRuns, TektonTiming
from tests.gitservers import BareRepo, HttpAuth, SmartHttpServer

NS = "default"
API = "tekton.dev/v1"
PASSWORD = "pa55-w0rd-for-the-gitops-repo"


class Writer:
    def __init__(self, url: str) -> None:
        self.url = url
        self.env = SimulatedEnvironment()
        self.cluster = self.env.cluster
        self.controller = TektonRuns(self.cluster, self.env.clock, TektonTiming(20, 10),
                                     run_steps=True)
        self.cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        self.runs = 0

    def secret(self, name: str, annotations: dict[str, str] | None = None,
               **string_data: str) -> None:
        self.cluster.apply({"apiVersion": "v1", "kind": "Secret",
                            "metadata": {"name": name, "namespace": NS,
                                         "annotations": annotations or {}},
                            "data": {k: base64.b64encode(v.encode()).decode()
                                     for k, v in string_data.items()}})

    def write(self, files: dict[str, str], *, branch: str = "config", sub_path: str = "",
              message: str = "Config for source revision abc", secret: str | None = "git-auth",
              account: str | None = None, ref_kind: str = "ClusterTask") -> dict[str, Any]:
        """One git-writer TaskRun, as TAP's config-writer stamps it, run to its end."""
        self.runs += 1
        params = {"git_repository": self.url, "git_branch": branch, "git_user_name": "Writer",
                  "git_user_email": "writer@example.com", "git_commit_message": message,
                  "git_files": encode_files(files), "sub_path": sub_path}
        if secret:
            params["git_secret"] = secret
        spec: dict[str, Any] = {
            "taskRef": {"name": "git-writer", "kind": ref_kind},
            "params": [{"name": k, "value": v} for k, v in params.items()]}
        if account:
            spec["serviceAccountName"] = account
        name = f"writer-{self.runs}"
        self.cluster.apply({"apiVersion": API, "kind": "TaskRun",
                            "metadata": {"name": name, "namespace": NS}, "spec": spec})
        for _ in range(20):
            run = self.cluster.get(API, "TaskRun", NS, name)
            assert run is not None
            wake = self.controller.reconcile(run)
            if wake is None:
                break
            self.env.advance(max(wake, 0.001))
        done = self.cluster.get(API, "TaskRun", NS, name)
        assert done is not None
        return done


def _succeeded(run: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in run["status"]["conditions"] if c["type"] == "Succeeded")


def _commit(run: dict[str, Any]) -> str:
    assert _succeeded(run)["status"] == "True", _succeeded(run)
    return str(next(r["value"] for r in run["status"]["results"] if r["name"] == "commit"))


def _git(repo: BareRepo, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", str(repo.path), *args], check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> BareRepo:
    served = tmp_path / "served"
    served.mkdir()
    bare = BareRepo(served, "gitops")
    bare.commit({"README.md": "GitOps repository\n"}, "initial")
    return bare


@pytest.fixture
def writer(repo: BareRepo) -> Iterator[Writer]:
    with SmartHttpServer(repo.root, HttpAuth(users={"writer": PASSWORD})) as http:
        w = Writer(http.url(repo))
        w.secret("git-auth", username="writer", password=PASSWORD)
        yield w


def test_one_commit_per_distinct_content_and_none_when_unchanged(
    writer: Writer, repo: BareRepo,
) -> None:
    files = {"delivery.yml": "kind: Deployment\nname: app\n"}
    first = writer.write(files, sub_path="config/default/app")
    sha = _commit(first)
    assert _git(repo, "rev-parse", "refs/heads/config") == sha, "the branch was created"
    assert _git(repo, "rev-parse", "refs/heads/main") != sha, "main is left alone"
    assert _git(repo, "show", f"{sha}:config/default/app/delivery.yml") == files[
        "delivery.yml"].rstrip("\n")
    assert _git(repo, "log", "-1", "--format=%s|%an|%ae", sha) == (
        "Config for source revision abc|Writer|writer@example.com")
    assert _git(repo, "show", f"{sha}:README.md") == "GitOps repository", "from main"
    logs = json.loads(first["metadata"]["annotations"][LOGS_ANNOTATION])
    assert "new branch" in logs["git-clone-and-push"]
    assert [s["name"] for s in first["status"]["steps"]] == ["git-clone-and-push"]

    again = writer.write(files, sub_path="config/default/app", message="Config for abc again")
    assert _commit(again) == sha, "nothing changed: no commit, the existing HEAD"
    assert _git(repo, "rev-list", "--count", "refs/heads/config") == "2"

    changed = writer.write({"delivery.yml": "kind: Deployment\nname: app-v2\n"},
                           sub_path="config/default/app", message="Config for revision def")
    new = _commit(changed)
    assert new != sha
    assert _git(repo, "rev-parse", f"{new}^") == sha, "exactly one commit on top"
    assert _git(repo, "log", "-1", "--format=%s", new) == "Config for revision def"


def test_files_that_left_the_config_leave_the_sub_path(writer: Writer, repo: BareRepo) -> None:
    """The sub_path is emptied before the write, as TAP's git-writer does: a file no longer in
    `git_files` is removed; files outside the sub_path stay; the same content again is no
    commit. At the repository's root (no sub_path) nothing is removed."""
    sub = "config/default/app"
    first = _commit(writer.write({"delivery.yml": "a\n", "extra/route.yml": "r\n"}, sub_path=sub))
    second = _commit(writer.write({"delivery.yml": "a\n"}, sub_path=sub))
    assert second != first
    assert _git(repo, "ls-tree", "-r", "--name-only", second).splitlines() == [
        "README.md", f"{sub}/delivery.yml"]
    assert _commit(writer.write({"delivery.yml": "a\n"}, sub_path=sub)) == second
    assert _git(repo, "rev-list", "--count", "refs/heads/config") == "3"
    root = _commit(writer.write({"top.yml": "t\n"}))
    assert _git(repo, "ls-tree", "-r", "--name-only", root).splitlines() == [
        "README.md", f"{sub}/delivery.yml", "top.yml"]


def test_credentials_can_come_from_the_service_account(writer: Writer, repo: BareRepo) -> None:
    """As Tekton's credential initialisation: only a Secret whose `tekton.dev/git-N` annotation
    names the repository's scheme and host; other hosts' and unannotated Secrets are skipped."""
    here = urlsplit(writer.url)
    writer.secret("not-git", {"tekton.dev/git-0": f"{here.scheme}://{here.netloc}"},
                  token="irrelevant")
    writer.secret("unannotated", username="writer", password="wrong-" + PASSWORD)
    writer.secret("other-host", {"tekton.dev/git-0": "https://github.com"},
                  username="writer", password="wrong-" + PASSWORD)
    writer.secret("basic", {"tekton.dev/git-3": f"{here.scheme}://{here.netloc}"},
                  username="writer", password=PASSWORD)
    writer.cluster.apply({"apiVersion": "v1", "kind": "ServiceAccount",
                          "metadata": {"name": "builder", "namespace": NS},
                          "secrets": [{"name": "not-git"}, {"name": "unannotated"},
                                      {"name": "other-host"}, {"name": "basic"}]})
    run = writer.write({"a.yaml": "a: 1\n"}, secret=None, account="builder", ref_kind="Task")
    assert _git(repo, "rev-parse", "refs/heads/config") == _commit(run)


def test_a_service_account_secret_for_another_host_is_not_used(
    writer: Writer, repo: BareRepo,
) -> None:
    writer.secret("unannotated", username="writer", password=PASSWORD)
    writer.secret("other-host", {"tekton.dev/git-0": "https://github.com"},
                  username="writer", password=PASSWORD)
    writer.cluster.apply({"apiVersion": "v1", "kind": "ServiceAccount",
                          "metadata": {"name": "builder", "namespace": NS},
                          "secrets": [{"name": "unannotated"}, {"name": "other-host"}]})
    run = writer.write({"a.yaml": "a: 1\n"}, secret=None, account="builder", ref_kind="Task")
    assert _succeeded(run)["status"] == "False"  # no credentials: the server refuses
    assert _git(repo, "branch", "--list", "config") == ""


def test_wrong_credentials_fail_without_showing_the_password(
    writer: Writer, repo: BareRepo,
) -> None:
    writer.secret("wrong", username="writer", password="not-" + PASSWORD)
    run = writer.write({"a.yaml": "a: 1\n"}, secret="wrong")
    cond = _succeeded(run)
    assert (cond["status"], cond["reason"]) == ("False", "Failed")
    assert cond["message"].startswith('step "git-clone-and-push" in task "git-writer" exited '
                                      "with code 1: ")
    assert PASSWORD not in json.dumps(run)
    assert _git(repo, "branch", "--list", "config") == ""


def test_a_password_in_the_repository_url_is_never_shown(writer: Writer, repo: BareRepo) -> None:
    """`redact` knows only the Secret's values: user info written into `git_repository` is
    removed from the failure message and the logs annotation too."""
    secret_word = "s3cr3t-in-the-url"
    writer.url = writer.url.replace("://", f"://writer:{secret_word}@", 1)
    run = writer.write({"a.yaml": "a: 1\n"}, secret=None)
    cond = _succeeded(run)
    assert (cond["status"], cond["reason"]) == ("False", "Failed")
    assert "127.0.0.1" in cond["message"]  # the repository is still named, without user info
    assert secret_word not in json.dumps(run["status"])
    assert secret_word not in run["metadata"]["annotations"][LOGS_ANNOTATION]
    assert _git(repo, "branch", "--list", "config") == ""


def test_a_missing_secret_is_named(writer: Writer) -> None:
    cond = _succeeded(writer.write({"a.yaml": "a: 1\n"}, secret="nope"))
    assert cond["status"] == "False"
    assert "secret 'default/nope' (referenced by param git_secret)" in cond["message"]


@pytest.mark.parametrize(("files", "sub_path", "fragment"), [
    ({"../escape.yaml": "x"}, "", "must not contain '..'"),
    ({"/etc/escape.yaml": "x"}, "", "must be a relative path"),
    ({"a.yaml": "x"}, "../../elsewhere", "must not contain '..'"),
    ({".git/hooks/post-commit": "#!/bin/sh\n"}, "", "must not write into .git"),
    ({"hooks/post-commit": "#!/bin/sh\n"}, ".git", "must not write into .git"),
    # Other spellings of .git on case-insensitive (macOS, Windows) filesystems, as git refuses.
    ({".GIT/config": "[core]\n\tfsmonitor = touch /tmp/pwned\n"}, "", "must not write into .git"),
    ({"hooks/post-commit": "#!/bin/sh\n"}, "app/.Git", "must not write into .git"),
    ({"GIT~1/config": "x"}, "", "must not write into .git"),
    ({".git./config": "x"}, "", "must not write into .git"),
    ({".git /config": "x"}, "", "must not write into .git"),
    ({".g\u200cit/config": "x"}, "", "must not write into .git"),
    ({"linked/file.yaml": "x"}, "", "'linked' is a symbolic link"),
    ({"link-to-readme": "x"}, "", "is not a regular file"),
])
def test_writes_never_leave_the_checkout(
    writer: Writer, repo: BareRepo, files: dict[str, str], sub_path: str, fragment: str,
) -> None:
    (repo.work / "linked").symlink_to("/tmp")
    (repo.work / "link-to-readme").symlink_to("README.md")
    before = repo.commit({"seed.yaml": "seed\n"}, "links", branch="config")
    cond = _succeeded(writer.write(files, sub_path=sub_path))
    assert cond["status"] == "False"
    assert fragment in cond["message"]
    assert _git(repo, "rev-parse", "refs/heads/config") == before, "nothing pushed"


def test_local_paths_are_refused_when_serving(tmp_path: Path, repo: BareRepo) -> None:
    writer = Writer(repo.path.as_uri())
    writer.controller.configure_for_serving()
    writer.controller.run_steps = True
    writer.controller.wait_for_steps = True  # this test is about the URL, not the waiting
    cond = _succeeded(writer.write({"a.yaml": "a: 1\n"}, secret=None))
    assert cond["status"] == "False"
    assert "local paths and file:// only in simulate" in cond["message"]
    writer.controller.allow_local_git = True  # as in simulate, on the user's own repositories
    sha = _commit(writer.write({"a.yaml": "a: 1\n"}, secret=None))
    assert _git(repo, "rev-parse", "refs/heads/config") == sha


def test_the_first_commit_of_an_empty_repository(tmp_path: Path) -> None:
    served = tmp_path / "served-empty"
    served.mkdir()
    empty = BareRepo(served, "empty")
    with SmartHttpServer(served, HttpAuth(users={"writer": PASSWORD})) as http:
        writer = Writer(http.url(empty))
        writer.secret("git-auth", username="writer", password=PASSWORD)
        sha = _commit(writer.write({"app.yaml": "a: 1\n"}, branch="main"))
    assert _git(empty, "rev-parse", "refs/heads/main") == sha
    assert _git(empty, "rev-list", "--count", "main") == "1"
    assert _git(empty, "ls-tree", "-r", "--name-only", "main") == "app.yaml"


def test_a_dry_run_commits_in_its_clone_and_pushes_nothing(
    writer: Writer, repo: BareRepo,
) -> None:
    """`reconciler diff` (the environment configured for a dry run) must not write to a GitOps
    repository: the run succeeds with the commit it would push, and the remote is untouched."""
    writer.controller.configure_for_dry_run()
    before = _git(repo, "for-each-ref", "--format=%(refname) %(objectname)")
    run = writer.write({"delivery.yml": "kind: Deployment\nname: app\n"})
    assert _succeeded(run)["status"] == "True", _succeeded(run)
    logs = json.loads(run["metadata"]["annotations"][LOGS_ANNOTATION])
    assert "nothing pushed" in logs["git-clone-and-push"]
    assert _git(repo, "for-each-ref", "--format=%(refname) %(objectname)") == before


def test_the_environment_configured_for_a_dry_run_configures_its_tekton() -> None:
    env = SimulatedEnvironment()
    env.configure_for_dry_run()
    tekton = [c for c in env.controllers if isinstance(c, TektonRuns)]
    assert tekton and not any(c.push for c in tekton)


def test_a_git_writer_whose_run_is_deleted_before_it_runs_pushes_nothing(
    writer: Writer, repo: BareRepo,
) -> None:
    before = _git(repo, "for-each-ref", "--format=%(refname) %(objectname)")
    params = {"git_repository": writer.url, "git_branch": "config", "git_secret": "git-auth",
              "git_files": encode_files({"a.yaml": "a: 1\n"})}
    writer.cluster.apply({"apiVersion": API, "kind": "TaskRun",
                          "metadata": {"name": "deleted", "namespace": NS},
                          "spec": {"taskRef": {"name": "git-writer", "kind": "ClusterTask"},
                                   "params": [{"name": k, "value": v}
                                              for k, v in params.items()]}})
    with tekton._JOB_SLOTS, tekton._JOB_SLOTS:  # both job slots taken: the job has to wait
        run = writer.cluster.get(API, "TaskRun", NS, "deleted")
        assert run is not None
        writer.controller.reconcile(run)
        (job,) = writer.controller._jobs.values()
        writer.cluster.delete(API, "TaskRun", NS, "deleted")
    concurrent.futures.wait([job.future], timeout=60)
    assert job.future.done()
    assert _git(repo, "for-each-ref", "--format=%(refname) %(objectname)") == before
