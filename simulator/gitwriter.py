"""The simulated `git-writer` task: real commits and pushes to a real Git repository.

TAP's config-writer stamps a TaskRun of the `git-writer` ClusterTask; the simulated Tekton
(`simulator.tekton`) does not run a script for it but calls `write_files` here, with TAP's
param names (`git_repository`, `git_branch`, `git_user_name`, `git_user_email`,
`git_commit_message`, `git_files` = base64 of a JSON object {path: content}, optional
`sub_path`). It clones the branch (creating it when the remote lacks it), removes what the
repository holds under a non-empty `sub_path` (as TAP's task empties its directory first, so a
file that left the config leaves the repository; with no `sub_path`, the repository's root,
nothing is removed: files are only added and overwritten), writes the files under `sub_path`,
commits only when the tree changed (one commit per distinct content, none when nothing changed)
and pushes; the result is the branch's HEAD commit.

Git runs through the product's Git layer (`reconciler.sources.gitexec`: own process group, a
timeout, an allow-listed environment, no prompts, no host configuration; credentials from
`reconciler.sources.credentials`, handed to git in 0600 files, never in argv or a URL, and
redacted from every message). Writes never leave the checkout: absolute paths, `..`, `.git`
and links (in the repository or on the way) are refused. Local paths and file:// URLs are
refused unless the caller allows them (`simulate`, on the user's own machine).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import re
import stat
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from reconciler.model.errors import ReconcilerError
from reconciler.sources.credentials import (
    CredentialsError,
    GitCredentials,
    ObjectLookup,
    git_auth_env,
    redact,
    secret_data,
)
from reconciler.sources.gitexec import GitCommandFailed, GitTimedOut, run_git
from reconciler.sources.gitspec import sanitize_url, scrub_userinfo
from reconciler.sources.unpack import UnsafePathError, open_root, open_subdir, relative_parts

__all__ = ["STEP_NAME", "TASK_NAME", "GitCredentials", "GitWriteError", "GitWriteRequest",
           "GitWriteResult", "encode_files", "parse_params", "secret_credentials", "write_files"]

TASK_NAME = "git-writer"
STEP_NAME = "git-clone-and-push"
_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[^:/]+:")
_PUSH_ATTEMPTS = 3
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC


class GitWriteError(ReconcilerError):
    """The git-writer cannot do its work; the message names the param, path or git's words."""


@dataclass(frozen=True)
class GitWriteRequest:
    repository: str
    branch: str
    user_name: str
    user_email: str
    message: str
    files: dict[str, str]
    sub_path: str = ""


@dataclass(frozen=True)
class GitWriteResult:
    commit: str
    committed: bool
    log: str


def parse_params(params: Mapping[str, str]) -> GitWriteRequest:
    """The request TAP's git-writer params describe; GitWriteError names a missing or bad one."""
    def need(name: str) -> str:
        value = str(params.get(name) or "").strip()
        if not value:
            raise GitWriteError(f"param {name} is required")
        return value

    raw = str(params.get("git_files") or "")
    try:
        decoded = json.loads(base64.b64decode(raw, validate=True).decode("utf-8")) if raw else {}
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise GitWriteError("param git_files must be base64 of a JSON object "
                            "{path: content}") from None
    if not isinstance(decoded, dict) or not all(isinstance(v, str) for v in decoded.values()):
        raise GitWriteError("param git_files must be base64 of a JSON object whose values are "
                            "the files' text")
    return GitWriteRequest(
        repository=need("git_repository"),
        branch=str(params.get("git_branch") or "main").strip(),
        user_name=str(params.get("git_user_name") or "Reconciler Simulator").strip(),
        user_email=str(params.get("git_user_email") or "simulator@reconciler.invalid").strip(),
        message=str(params.get("git_commit_message") or "Update config").strip() or "Update",
        files={str(k): v for k, v in decoded.items()},
        sub_path=str(params.get("sub_path") or "").strip(),
    )


_GIT_KEYS = ("username", "password", "bearerToken", "identity", "ssh-privatekey")


def secret_credentials(lookup: ObjectLookup, namespace: str, name: str, where: str, *,
                       only_git: bool = False) -> GitCredentials | None:
    """The credentials Secret `namespace/name` holds, Flux-style keys (username/password,
    bearerToken, identity/known_hosts, caFile; a `kubernetes.io/ssh-auth` Secret's
    `ssh-privatekey` stands for `identity`). With `only_git`, None for a Secret without any
    of those keys. GitWriteError for a missing or malformed Secret."""
    try:
        data = secret_data(lookup, namespace, name, where)
    except CredentialsError as exc:
        raise GitWriteError(str(exc)) from None
    if only_git and not any(k in data for k in _GIT_KEYS):
        return None
    if "identity" not in data and "ssh-privatekey" in data:
        data["identity"] = data["ssh-privatekey"]
    return GitCredentials.from_secret(f"{namespace}/{name}", data)


def encode_files(files: Mapping[str, str]) -> str:
    """The `git_files` param for `files`: base64 of the JSON object {path: content}."""
    return base64.b64encode(json.dumps(dict(files), sort_keys=True).encode()).decode()


def url_scheme(url: str, *, allow_file: bool) -> str:
    """The transport of `url` (scp-like `user@host:path` is ssh); GitWriteError for one the
    git-writer may not use."""
    if _SCP_LIKE.match(url):
        return "ssh"
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https", "ssh", "git"):
        return scheme
    if allow_file and (scheme == "file" or (not scheme and url.startswith("/"))):
        return "file"
    raise GitWriteError(f"param git_repository {sanitize_url(url)!r}: only http(s)://, ssh:// "
                        "and git:// repositories can be written (local paths and file:// only "
                        "in simulate)")


def write_files(request: GitWriteRequest, credentials: GitCredentials | None, workdir: Path,
                *, timeout: float, allow_file: bool = False, push: bool = True,
                cancel: threading.Event | None = None) -> GitWriteResult:
    """Clone, write, commit when changed, push; retried (from a fresh clone) when the push
    loses a race with another writer. With `push` False (a dry run: `reconciler diff`) the
    commit is made in the temporary clone only and nothing leaves it. `cancel` set (the run was
    deleted or cancelled) stops it before the clone and before each push: GitWriteError, nothing
    pushed. A push already under way when it is set completes."""
    scheme = url_scheme(request.repository, allow_file=allow_file)
    shown = sanitize_url(request.repository)
    target = [*_checked_parts(request.sub_path, "param sub_path")]
    files = [(_checked_parts(p, "git_files path"), p, text)
             for p, text in sorted(request.files.items())]
    if not _valid_branch(request.branch):
        raise GitWriteError(f"param git_branch {request.branch!r} is not a valid branch name")
    log: list[str] = []
    try:
        with (tempfile.TemporaryDirectory(prefix="git-writer-", dir=workdir) as tmp_name,
              git_auth_env(scheme, credentials, Path(tmp_name)) as auth):
            tmp = Path(tmp_name)
            for attempt in range(1, _PUSH_ATTEMPTS + 1):
                _stop_if_cancelled(cancel, "before cloning")
                checkout = tmp / f"checkout-{attempt}"
                git = _Git(checkout, tmp / "home", auth, timeout, allow_file)
                created = _clone(git, request, tmp, log)
                if target:  # what left the config leaves the repository (never at its root)
                    git("--literal-pathspecs", "rm", "-r", "-q", "--ignore-unmatch", "--",
                        "/".join(target))
                for parts, shown, text in files:
                    _write(checkout, [*target, *parts], shown, text)
                git("--literal-pathspecs", "add", "-A", "--", "/".join(target) or ".")
                changed = git.changed()
                if not changed and not created:
                    head = git("rev-parse", "HEAD").strip()
                    log.append(f"nothing changed: {request.branch} stays at {head}")
                    return GitWriteResult(head, False, "\n".join(log))
                if changed:
                    git("-c", f"user.name={request.user_name}",
                        "-c", f"user.email={request.user_email}",
                        "commit", "-q", "--no-verify", "-m", request.message)
                head = git("rev-parse", "HEAD").strip()
                if not push:
                    log.append(f"dry run: would push {head} to {request.branch}; "
                               "nothing pushed")
                    return GitWriteResult(head, changed, "\n".join(log))
                _stop_if_cancelled(cancel, f"before pushing {head}")
                try:
                    git("push", "-q", "origin", f"HEAD:refs/heads/{request.branch}")
                except GitCommandFailed as exc:
                    if attempt == _PUSH_ATTEMPTS or not _lost_race(exc.stderr):
                        raise
                    log.append(f"push of {head} lost a race; retrying from a fresh clone")
                    continue
                log.append(f"pushed {head} to {request.branch}"
                           + (" (new branch)" if created else ""))
                return GitWriteResult(head, changed, "\n".join(log))
    except (GitCommandFailed, GitTimedOut, CredentialsError) as exc:
        raise GitWriteError(_scrubbed(f"{shown}: {exc}".strip(), credentials)) from None
    except UnsafePathError as exc:
        raise GitWriteError(str(exc)) from None
    raise GitWriteError(f"{shown}: push failed {_PUSH_ATTEMPTS} times")


def _stop_if_cancelled(cancel: threading.Event | None, when: str) -> None:
    if cancel is not None and cancel.is_set():
        raise GitWriteError(f"cancelled {when}: the run was cancelled or deleted; nothing pushed")


def _scrubbed(text: str, credentials: GitCredentials | None) -> str:
    """`text` without the Secret's values and without any URL's user info (a password written
    into `git_repository` itself, which no Secret holds)."""
    return scrub_userinfo(redact(text, credentials))


class _Git:
    def __init__(self, cwd: Path, home: Path, env: Mapping[str, str], timeout: float,
                 allow_file: bool) -> None:
        self.cwd, self.home, self.env = cwd, home, dict(env)
        self.timeout, self.allow_file = timeout, allow_file
        home.mkdir(mode=0o700, exist_ok=True)

    def __call__(self, *args: str, cwd: Path | None = None) -> str:
        return run_git(args, timeout=self.timeout, env=self.env, cwd=cwd or self.cwd,
                       home=self.home, allow_file=self.allow_file)

    def changed(self) -> bool:
        try:
            self("diff", "--cached", "--quiet")
        except GitCommandFailed as exc:
            if exc.status == 1:
                return True
            raise
        return False


def _clone(git: _Git, request: GitWriteRequest, tmp: Path, log: list[str]) -> bool:
    """Clone the branch into `git.cwd`; True when the remote has no such branch yet."""
    url, branch = request.repository, request.branch
    heads = git("ls-remote", "--heads", "--", url, f"refs/heads/{branch}", cwd=tmp)
    if heads.strip():
        git("clone", "-q", "--depth", "1", "--single-branch", "--branch", branch, "--", url,
            str(git.cwd), cwd=tmp)
        log.append(f"cloned {branch}")
        return False
    git("clone", "-q", "--depth", "1", "--", url, str(git.cwd), cwd=tmp)
    try:
        git("rev-parse", "--verify", "-q", "HEAD")
        git("checkout", "-q", "-b", branch)
        log.append(f"branch {branch} created from the default branch")
    except GitCommandFailed:
        git("checkout", "-q", "--orphan", branch)
        log.append(f"branch {branch} created in an empty repository")
    return True


def _checked_parts(path: str, where: str) -> list[str]:
    parts = relative_parts(path, where) if path else []
    if any(_names_git_dir(p) for p in parts):
        raise UnsafePathError(f"{where} {path!r} must not write into .git")
    if "\\" in path:
        raise UnsafePathError(f"{where} {path!r} must use '/' separators")
    return parts


def _names_git_dir(name: str) -> bool:
    """Whether a path component may name the repository's `.git` on some filesystem, as git's
    own checks (`is_ntfs_dotgit`, `is_hfs_dotgit`) see it: any case, trailing dots and spaces
    (which Windows drops), the 8.3 short name `git~1`, and HFS+'s ignorable code points."""
    folded = "".join(c for c in name if c not in _HFS_IGNORED).casefold()
    folded = folded.split(":", 1)[0].rstrip(". ")  # NTFS: ".git::$INDEX_ALLOCATION"
    return folded in (".git", "git~1")


_HFS_IGNORED = frozenset("\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                         "\u206a\u206b\u206c\u206d\u206e\u206f\ufeff")


def _write(checkout: Path, parts: Sequence[str], shown: str, text: str) -> None:
    if not parts:
        raise UnsafePathError(f"git_files path {shown!r} names no file")
    root_fd = open_root(checkout, create=False)
    try:
        parent_fd = open_subdir(root_fd, parts[:-1], create=True)
        try:
            name = parts[-1]
            with contextlib.suppress(FileNotFoundError):
                st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
                if not stat.S_ISREG(st.st_mode):
                    raise UnsafePathError(f"'{'/'.join(parts)}' exists and is not a regular "
                                          "file; nothing is written through links")
            try:
                fd = os.open(name, _FILE_FLAGS, 0o644, dir_fd=parent_fd)
            except OSError as exc:
                raise UnsafePathError(f"cannot write '{'/'.join(parts)}': {exc.strerror}") \
                    from None
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
        finally:
            os.close(parent_fd)
    finally:
        os.close(root_fd)


def _valid_branch(branch: str) -> bool:
    return (bool(branch) and not branch.startswith(("-", "/")) and ".." not in branch
            and not branch.endswith((".lock", "/", ".")) and "@{" not in branch
            and not any(c in branch for c in " ~^:?*[\\\x7f") and all(ord(c) >= 32 for c in branch))


def _lost_race(stderr: str) -> bool:
    return any(w in stderr for w in ("non-fast-forward", "fetch first", "stale info",
                                     "cannot lock ref", "rejected"))
