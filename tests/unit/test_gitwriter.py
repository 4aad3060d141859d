"""simulator.gitwriter's input checks: TAP's params, the URL policy and branch names (the real
clones and pushes are in tests/integration/test_gitwriter.py)."""

from __future__ import annotations

import base64
import subprocess
import threading
from pathlib import Path

import pytest

from simulator.gitwriter import GitWriteError, encode_files, parse_params, url_scheme, write_files


def test_params_as_tap_names_them() -> None:
    request = parse_params({
        "git_repository": "https://git.example.com/gitops.git", "git_branch": "staging",
        "git_user_name": "Writer", "git_user_email": "w@example.com",
        "git_commit_message": "Config for abc\n\nSource: main@sha1:abc",
        "git_files": encode_files({"config/app/delivery.yml": "kind: Service\n"}),
        "sub_path": "apps"})
    assert (request.repository, request.branch, request.sub_path) == (
        "https://git.example.com/gitops.git", "staging", "apps")
    assert request.message == "Config for abc\n\nSource: main@sha1:abc"
    assert request.files == {"config/app/delivery.yml": "kind: Service\n"}


@pytest.mark.parametrize(("params", "fragment"), [
    ({}, "param git_repository is required"),
    ({"git_repository": "https://h/r.git", "git_files": "not base64!"}, "must be base64"),
    ({"git_repository": "https://h/r.git",
      "git_files": base64.b64encode(b"[1, 2]").decode()}, "values are the files' text"),
    ({"git_repository": "https://h/r.git",
      "git_files": base64.b64encode(b'{"a": {"b": 1}}').decode()}, "values are the files' text"),
])
def test_bad_params_are_named(params: dict[str, str], fragment: str) -> None:
    with pytest.raises(GitWriteError, match=fragment):
        parse_params(params)


@pytest.mark.parametrize(("url", "allow_file", "scheme"), [
    ("https://h/r.git", False, "https"), ("http://h/r.git", False, "http"),
    ("ssh://git@h/r.git", False, "ssh"), ("git@github.com:org/r.git", False, "ssh"),
    ("git://127.0.0.1:9418/r", False, "git"), ("file:///srv/r.git", True, "file"),
    ("/srv/r.git", True, "file"),
])
def test_allowed_urls(url: str, allow_file: bool, scheme: str) -> None:
    assert url_scheme(url, allow_file=allow_file) == scheme


@pytest.mark.parametrize("url", ["file:///srv/r.git", "/srv/r.git", "ext::sh -c touch% /tmp/x",
                                 "-uhttps://h/r.git", "ftp://h/r.git", "r.git"])
def test_refused_urls(url: str) -> None:
    with pytest.raises(GitWriteError, match="only http"):
        url_scheme(url, allow_file=False)


@pytest.mark.parametrize("branch", ["-f", "a..b", "x.lock", "has space", "a:b", "@{-1}", "/abs",
                                    "trailing/"])
def test_branch_names_git_would_misread_are_refused(branch: str, tmp_path: Path) -> None:
    request = parse_params({"git_repository": "https://h/r.git", "git_branch": branch,
                            "git_files": encode_files({"a.yaml": "a"})})
    with pytest.raises(GitWriteError, match="is not a valid branch name"):
        write_files(request, None, tmp_path, timeout=5)


def test_a_cancelled_write_pushes_nothing(tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    request = parse_params({"git_repository": str(remote), "git_branch": "main",
                            "git_files": encode_files({"a.yaml": "a: 1\n"})})
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(GitWriteError, match="nothing pushed"):
        write_files(request, None, tmp_path, timeout=30, allow_file=True, cancel=cancel)
    refs = subprocess.run(["git", "--git-dir", str(remote), "for-each-ref"], check=True,
                          capture_output=True, text=True).stdout
    assert refs == ""
    # the same request, not cancelled, does push: the check above is not vacuous
    write_files(request, None, tmp_path, timeout=30, allow_file=True, cancel=threading.Event())
    assert subprocess.run(["git", "--git-dir", str(remote), "for-each-ref"], check=True,
                          capture_output=True, text=True).stdout != ""


class _SetAfterClone(threading.Event):
    """Cancelled while the writer works: unset at its first look (before cloning), set after."""

    def __init__(self) -> None:
        super().__init__()
        self.looks = 0

    def is_set(self) -> bool:
        self.looks += 1
        return self.looks > 1


def test_a_write_cancelled_after_its_clone_does_not_push(tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    request = parse_params({"git_repository": str(remote), "git_branch": "main",
                            "git_files": encode_files({"a.yaml": "a: 1\n"})})
    cancel = _SetAfterClone()
    with pytest.raises(GitWriteError, match="cancelled before pushing"):
        write_files(request, None, tmp_path, timeout=30, allow_file=True, cancel=cancel)
    assert cancel.looks == 2
    assert subprocess.run(["git", "--git-dir", str(remote), "for-each-ref"], check=True,
                          capture_output=True, text=True).stdout == ""
