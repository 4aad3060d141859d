"""The built-in source controller for Flux `source.toolkit.fluxcd.io/v1` `GitRepository` objects.

It owns: reading a GitRepository's spec, resolving its ref on the remote (`git ls-remote`, the
cheap common path), fetching into a per-object cache under `workdir` only when the remote
revision differs from the stored artifact, archiving the checkout into the ArtifactStore, and
computing the `status` (artifact and conditions) exactly as Flux's source-controller writes it.
It does not write status anywhere: the caller gets a SourceResult and persists it.

A reconcile is a short sequence of steps (parse spec, interval gate, resolve remote revision,
fetch and archive), and the status is summarized in one place from the outcome.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import git
import structlog

from reconciler.engine.clock import Clock, rfc3339
from reconciler.model.conditions import FALSE, TRUE, Condition, merge_conditions
from reconciler.model.errors import Stalled, Transient
from reconciler.model.objects import Obj, deep_copy, meta, name_of, namespace_of, spec_of, status_of
from reconciler.sources.artifacts import (
    Artifact,
    ArtifactError,
    ArtifactPathError,
    ArtifactStore,
    check_object_key,
)
from reconciler.sources.semver import Constraint, SemverError, highest

log = structlog.get_logger(__name__)

KIND = "GitRepository"
API_VERSION = "source.toolkit.fluxcd.io/v1"
REQUESTED_AT_ANNOTATION = "reconcile.fluxcd.io/requestedAt"

# Condition types and reasons, named as Flux's source-controller names them.
READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
FETCH_FAILED = "FetchFailed"
ARTIFACT_IN_STORAGE = "ArtifactInStorage"
SUCCEEDED = "Succeeded"
PROGRESSING_WITH_RETRY = "ProgressingWithRetry"
GIT_OPERATION_FAILED = "GitOperationFailed"
AUTHENTICATION_FAILED = "AuthenticationFailed"
STORAGE_OPERATION_FAILED = "StorageOperationFailed"
INVALID_URL = "InvalidURL"
INVALID_SPEC = "InvalidSpec"
NEW_ARTIFACT = "NewArtifact"

_OWNED_CONDITIONS = (RECONCILING, STALLED, READY, FETCH_FAILED, ARTIFACT_IN_STORAGE)

DEFAULT_BRANCH = "master"  # Flux: "If not specified, it defaults to a `master` branch reference."
DEFAULT_INTERVAL = 60.0
DEFAULT_TIMEOUT = 60.0

# Never let git wait for a human: a prompt for credentials would hang the reconcile until the
# timeout instead of failing with a clear authentication error.
_GIT_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ASKPASS": "",
    "SSH_ASKPASS": "",
    "GIT_SSH_COMMAND": "ssh -o BatchMode=yes",
    # Transports like ext:: run arbitrary commands; only the schemes spec.url may name are allowed.
    "GIT_ALLOW_PROTOCOL": "file:git:http:https:ssh",
}

_AUTH_HINTS = re.compile(
    r"authentication failed|could not read (username|password)|terminal prompts disabled"
    r"|permission denied \(publickey|http (basic: )?access denied|\b(401|403)\b"
    r"|invalid username or password",
    re.IGNORECASE,
)
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@")
# git's generic advice after a failed connection; it says nothing about this failure.
_GIT_BOILERPLATE = re.compile(
    r"^(please make sure you have the correct access rights|and the repository exists)",
    re.IGNORECASE,
)
_HEX = re.compile(r"^[0-9a-fA-F]{7,64}$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_UNITS = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0,
}


# --- errors -----------------------------------------------------------------------------------


class GitSourceError(Transient):
    """A git operation failed; `reason` is the Flux reason written to FetchFailed and Ready."""

    def __init__(self, message: str, reason: str = GIT_OPERATION_FAILED) -> None:
        super().__init__(reason, message)


class GitAuthenticationError(GitSourceError):
    def __init__(self, message: str) -> None:
        super().__init__(message, AUTHENTICATION_FAILED)


class GitStorageError(GitSourceError):
    def __init__(self, message: str) -> None:
        super().__init__(message, STORAGE_OPERATION_FAILED)


class GitSpecError(Stalled):
    """The spec cannot work as written; retrying will not help until it changes."""

    def __init__(self, message: str, reason: str = INVALID_SPEC) -> None:
        super().__init__(reason, message)


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceEvent:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass
class SourceResult:
    """What one reconcile decided: the full new `status`, when to come back, events to record."""

    status: dict[str, Any]
    requeue_after: float
    events: list[SourceEvent] = field(default_factory=list)


# --- spec -------------------------------------------------------------------------------------


def parse_duration(text: str) -> float:
    """Seconds in a Go duration string (`1m0s`, `30s`, `1.5h`, `0`)."""
    value = text.strip()
    if value in ("0", ""):
        if value == "":
            raise ValueError("empty duration")
        return 0.0
    sign = -1.0 if value.startswith("-") else 1.0
    body = value.lstrip("+-")
    total, pos = 0.0, 0
    for m in _DURATION_PART.finditer(body):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(body) or pos == 0:
        raise ValueError(f"{text!r} is not a Go duration (e.g. '30s', '1m0s', '1h')")
    return sign * total


def sanitize_url(url: str) -> str:
    """The URL without user info, so credentials never reach a message, event or log."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _USERINFO.sub(r"\g<scheme>", url)
    if parts.scheme and "@" in parts.netloc:
        host = parts.netloc.rsplit("@", 1)[1]
        return urlunsplit(parts._replace(netloc=host))
    return url


def _scrub(text: str) -> str:
    return _USERINFO.sub(r"\g<scheme>", text)


@dataclass(frozen=True)
class GitRef:
    """The reference `spec.ref` selects, after Flux's precedence: commit > name > semver > tag >
    branch, and `master` when nothing is set. `branch` rides along with a commit (Flux uses it
    as the revision's name and the branch to fetch)."""

    kind: Literal["branch", "tag", "semver", "name", "commit"]
    value: str
    branch: str = ""

    @classmethod
    def from_spec(cls, ref: object) -> GitRef:
        fields = ref if isinstance(ref, Mapping) else {}

        def get(key: str) -> str:
            value = fields.get(key)
            return str(value).strip() if value not in (None, "") else ""

        if commit := get("commit"):
            if not _HEX.match(commit):
                raise GitSpecError(
                    f"spec.ref.commit: {commit!r} is not a commit SHA (7 to 64 hex digits)"
                )
            return cls("commit", commit.lower(), get("branch"))
        if name := get("name"):
            if not name.startswith("refs/"):
                raise GitSpecError(
                    f"spec.ref.name: {name!r} must be a full reference such as 'refs/heads/main'"
                )
            return cls("name", name)
        if semver := get("semver"):
            return cls("semver", semver)
        if tag := get("tag"):
            return cls("tag", tag)
        return cls("branch", get("branch") or DEFAULT_BRANCH)

    def describe(self) -> str:
        if self.kind == "commit" and self.branch:
            return f"commit '{self.value}' on branch '{self.branch}'"
        return f"{self.kind} '{self.value}'"


@dataclass(frozen=True)
class GitRepositorySpec:
    url: str
    ref: GitRef
    interval: float
    timeout: float
    suspend: bool
    ignore: str | None

    @classmethod
    def parse(cls, obj: Obj) -> GitRepositorySpec:
        spec = spec_of(obj)
        url = str(spec.get("url") or "").strip()
        if not url:
            raise GitSpecError("spec.url is required (e.g. https://github.com/org/repo)",
                               INVALID_URL)
        scheme = urlsplit(url).scheme.lower() if "://" in url else ""
        if scheme and scheme not in ("file", "git", "http", "https", "ssh"):
            raise GitSpecError(
                f"spec.url: scheme {scheme!r} of {sanitize_url(url)!r} is not supported "
                "(use a local path, file://, git://, http(s):// or ssh://)",
                INVALID_URL,
            )
        return cls(
            url=url,
            ref=GitRef.from_spec(spec.get("ref")),
            interval=_duration_field(spec, "interval", DEFAULT_INTERVAL),
            timeout=_duration_field(spec, "timeout", DEFAULT_TIMEOUT),
            suspend=bool(spec.get("suspend", False)),
            ignore=str(spec["ignore"]) if spec.get("ignore") is not None else None,
        )


def _duration_field(spec: Mapping[str, Any], key: str, default: float) -> float:
    raw = spec.get(key)
    if raw in (None, ""):
        return default
    try:
        seconds = parse_duration(str(raw))
    except ValueError as exc:
        raise GitSpecError(f"spec.{key}: {exc}") from None
    if seconds <= 0:
        raise GitSpecError(f"spec.{key}: {raw!r} must be positive")
    return seconds


@dataclass(frozen=True)
class RemoteRevision:
    """A ref resolved to a commit: `label` names it in the revision (empty for a bare commit);
    `pinned` marks a commit taken from spec.ref.commit rather than read from the remote."""

    label: str
    commit: str
    fetch_ref: str
    pinned: bool = False

    @property
    def revision(self) -> str:
        algo = "sha256" if len(self.commit) == 64 else "sha1"
        return f"{self.label}@{algo}:{self.commit}" if self.label else f"{algo}:{self.commit}"

    def matches(self, stored: str) -> bool:
        if not self.pinned or len(self.commit) in (40, 64):
            return stored == self.revision
        # An abbreviated pinned commit matches the full SHA a previous fetch recorded.
        label, _, digest = stored.rpartition("@")
        return label == self.label and digest.partition(":")[2].startswith(self.commit)


# --- Flux's default exclusions ------------------------------------------------------------------

_EXCLUDED_DIRS = frozenset({".git", ".github", ".circleci"})
_EXCLUDED_FILES = frozenset({
    ".gitignore", ".gitmodules", ".gitattributes", ".travis.yml", ".gitlab-ci.yml",
    "appveyor.yml", ".drone.yml", "cloudbuild.yaml", "codeship-services.yml",
    "codeship-steps.yml", ".goreleaser.yml", ".sops.yaml", ".flux.yaml",
})
_EXCLUDED_SUFFIXES = (".jpg", ".jpeg", ".gif", ".png", ".wmv", ".flv", ".tar.gz", ".zip")


def flux_default_exclude(path: str) -> bool:
    """Flux's default archive exclusions (git files, media, CI configs) at any depth."""
    if path.endswith("/"):
        return path.rstrip("/").rsplit("/", 1)[-1] in _EXCLUDED_DIRS
    base = path.rsplit("/", 1)[-1]
    return base in _EXCLUDED_FILES or base.lower().endswith(_EXCLUDED_SUFFIXES)


# --- the controller ---------------------------------------------------------------------------


@dataclass
class _PollRecord:
    """What the last reconcile of one object saw; the interval gate compares against it."""

    uid: str
    generation: int
    requested_at: str
    next_due: float
    failures: int


@dataclass
class _Fetched:
    directory: Path
    commit: str
    summary: str


class GitRepositoryController:
    """Reconciles GitRepository objects into artifacts; safe to call from several threads.

    `ls_remote_calls` and `fetch_calls` count network operations, so tests and benchmarks can
    check that an unchanged remote costs one ls-remote and no fetch.
    """

    def __init__(
        self,
        store: ArtifactStore,
        clock: Clock,
        workdir: Path,
        *,
        backoff_base: float = 5.0,
        backoff_max: float = 300.0,
        keep_artifacts: int = 2,
        exclude: Callable[[str], bool] | None = flux_default_exclude,
    ) -> None:
        self.store = store
        self.clock = clock
        self.workdir = Path(workdir)
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.keep_artifacts = keep_artifacts
        self.exclude = exclude
        self.ls_remote_calls = 0
        self.fetch_calls = 0
        self._polls: dict[tuple[str, str], _PollRecord] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def forget(self, namespace: str, name: str) -> None:
        """Drop what the controller remembers about a deleted object."""
        with self._guard:
            self._polls.pop((namespace, name), None)
            self._locks.pop((namespace, name), None)

    def reconcile(self, obj: Obj) -> SourceResult:
        key = (namespace_of(obj), name_of(obj))
        with self._lock_for(key):
            return self._reconcile(obj, key)

    def _lock_for(self, key: tuple[str, str]) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def _reconcile(self, obj: Obj, key: tuple[str, str]) -> SourceResult:
        namespace, name = key
        m = meta(obj)
        generation = int(m.get("generation") or 0)
        annotations = m.get("annotations") if isinstance(m.get("annotations"), dict) else {}
        requested_at = str((annotations or {}).get(REQUESTED_AT_ANNOTATION) or "")
        uid = str(m.get("uid") or "")
        previous = deep_copy(status_of(obj))
        now = self.clock.now()
        bound = log.bind(kind=KIND, namespace=namespace, name=name, generation=generation)

        try:
            # The name becomes a path under workdir and the store: refuse `..` and friends early.
            try:
                check_object_key(KIND, namespace, name)
            except ArtifactPathError as exc:
                raise GitSpecError(f"metadata: {exc}") from None
            spec = GitRepositorySpec.parse(obj)
        except GitSpecError as exc:
            bound.warning("invalid spec", reason=exc.reason, error=str(exc))
            self._polls.pop(key, None)
            return SourceResult(
                self._stalled_status(previous, exc, generation, requested_at, now),
                self.backoff_max,
                [SourceEvent("Warning", exc.reason, str(exc))],
            )

        if spec.suspend:
            bound.info("reconciliation suspended")
            return SourceResult(previous, spec.interval)

        poll = self._polls.get(key)
        if poll is not None and self._may_skip(poll, uid, generation, requested_at, previous, now):
            return SourceResult(previous, poll.next_due - now)

        bound = bound.bind(url=sanitize_url(spec.url), ref=spec.ref.describe())
        if spec.ignore is not None:
            bound.warning("spec.ignore is not supported yet; using Flux's default exclusions")
        prior = Artifact.from_status(previous.get("artifact"))
        try:
            artifact, events = self._sync(spec, namespace, name, prior, now, bound)
        except GitSourceError as exc:
            failures = (poll.failures if poll is not None and poll.uid == uid else 0) + 1
            delay = min(self.backoff_base * 2 ** (failures - 1), self.backoff_max)
            self._polls[key] = _PollRecord(uid, generation, requested_at, now + delay, failures)
            bound.warning("fetch failed", reason=exc.reason, error=str(exc), retry_in=delay)
            status = self._failed_status(previous, prior, exc, generation, requested_at, now)
            return SourceResult(status, delay, [SourceEvent("Warning", exc.reason, str(exc))])

        self._polls[key] = _PollRecord(uid, generation, requested_at, now + spec.interval, 0)
        status = self._ready_status(previous, artifact, generation, requested_at, now)
        return SourceResult(status, spec.interval, events)

    def _may_skip(
        self,
        poll: _PollRecord,
        uid: str,
        generation: int,
        requested_at: str,
        previous: Mapping[str, Any],
        now: float,
    ) -> bool:
        if now >= poll.next_due or (poll.uid, poll.generation, poll.requested_at) != (
            uid, generation, requested_at
        ):
            return False
        if poll.failures:
            return True
        # A success is only worth repeating while its artifact is still in storage.
        prior = Artifact.from_status(previous.get("artifact"))
        return prior is not None and self.store.exists(prior.path)

    # --- steps ----------------------------------------------------------------------------

    def _sync(
        self,
        spec: GitRepositorySpec,
        namespace: str,
        name: str,
        prior: Artifact | None,
        now: float,
        bound: Any,
    ) -> tuple[Artifact, list[SourceEvent]]:
        remote = self._resolve(spec)
        if prior is not None and remote.matches(prior.revision) and self.store.exists(prior.path):
            bound.debug("artifact up-to-date with remote revision", revision=prior.revision)
            return prior, []

        fetched = self._fetch(spec, namespace, name, remote)
        actual = RemoteRevision(remote.label, fetched.commit, remote.fetch_ref, remote.pinned)
        if actual.commit != remote.commit and not remote.pinned:
            bound.info("remote moved between ls-remote and fetch", revision=actual.revision)
        try:
            artifact = self.store.store_directory(
                KIND, namespace, name, actual.revision, fetched.directory,
                exclude=self.exclude, now=rfc3339(now),
            )
            self.store.gc(KIND, namespace, name, keep=self.keep_artifacts,
                          protect=[artifact.path])
        except (ArtifactError, OSError) as exc:
            # strerror, not str(exc): the latter names files under the store's root.
            detail = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise GitStorageError(
                f"failed to store artifact for revision '{actual.revision}': {detail}"
            ) from exc
        if prior is not None and prior.digest == artifact.digest and prior.revision == (
            artifact.revision
        ):
            return artifact, []
        bound.info("new artifact", revision=artifact.revision, digest=artifact.digest)
        return artifact, [
            SourceEvent("Normal", NEW_ARTIFACT, f"stored artifact for commit '{fetched.summary}'")
        ]

    def _resolve(self, spec: GitRepositorySpec) -> RemoteRevision:
        ref = spec.ref
        if ref.kind == "commit":
            # The commit is the answer already: no network round trip is needed to know it.
            return RemoteRevision(ref.branch, ref.value, ref.branch and f"refs/heads/{ref.branch}",
                             pinned=True)
        if ref.kind == "branch":
            wanted = f"refs/heads/{ref.value}"
            refs = self._ls_remote(spec, [wanted])
            if wanted not in refs:
                raise self._missing(spec, wanted)
            return RemoteRevision(ref.value, refs[wanted], wanted)
        if ref.kind == "tag":
            wanted = f"refs/tags/{ref.value}"
            refs = self._ls_remote(spec, [wanted, f"{wanted}^{{}}"])
            if wanted not in refs:
                raise self._missing(spec, wanted)
            return RemoteRevision(ref.value, refs.get(f"{wanted}^{{}}", refs[wanted]), wanted)
        if ref.kind == "name":
            refs = self._ls_remote(spec, [ref.value, f"{ref.value}^{{}}"])
            if ref.value not in refs:
                raise self._missing(spec, ref.value)
            peeled = refs.get(f"{ref.value}^{{}}", refs[ref.value])
            return RemoteRevision(ref.value, peeled, ref.value)
        try:
            constraint = Constraint.parse(ref.value)
        except SemverError as exc:
            raise GitSourceError(f"spec.ref.semver: {exc}", INVALID_SPEC) from None
        refs = self._ls_remote(spec, [], options=("--tags",))
        tags = {r.removeprefix("refs/tags/") for r in refs if not r.endswith("^{}")}
        tag = highest(constraint, tags)
        if tag is None:
            raise GitSourceError(
                f"failed to checkout and determine revision: no tag of "
                f"'{sanitize_url(spec.url)}' matches semver range '{ref.value}'"
            )
        wanted = f"refs/tags/{tag}"
        return RemoteRevision(tag, refs.get(f"{wanted}^{{}}", refs[wanted]), wanted)

    def _missing(self, spec: GitRepositorySpec, ref_name: str) -> GitSourceError:
        return GitSourceError(
            f"failed to checkout and determine revision: unable to resolve "
            f"{spec.ref.describe()} on '{sanitize_url(spec.url)}': "
            f'couldn\'t find remote ref "{ref_name}"'
        )

    def _ls_remote(
        self, spec: GitRepositorySpec, patterns: list[str], options: tuple[str, ...] = ()
    ) -> dict[str, str]:
        with self._guard:
            self.ls_remote_calls += 1
        try:
            # "--" keeps a URL that starts with "-" from being read as an option.
            out = git.cmd.Git().ls_remote(
                *options, "--", spec.url, *patterns, kill_after_timeout=spec.timeout, env=_GIT_ENV
            )
        except git.GitCommandError as exc:
            raise _git_failure(spec, "unable to list remote refs", exc) from None
        refs: dict[str, str] = {}
        for line in str(out).splitlines():
            sha, _, ref_name = line.partition("\t")
            if ref_name:
                refs[ref_name.strip()] = sha.strip()
        return refs

    def _fetch(
        self, spec: GitRepositorySpec, namespace: str, name: str, remote: RemoteRevision
    ) -> _Fetched:
        directory = self.workdir / "gitrepository" / namespace / name
        with self._guard:
            self.fetch_calls += 1
        try:
            repo = _open_cache(directory)
            try:
                g = repo.git
                opts: dict[str, Any] = {"kill_after_timeout": spec.timeout, "env": _GIT_ENV}
                if remote.pinned:
                    commit = self._fetch_commit(g, spec, remote, opts)
                else:
                    g.fetch("--depth=1", "--no-tags", "--force", "--", spec.url,
                            remote.fetch_ref, **opts)
                    commit = str(g.rev_parse("FETCH_HEAD^{commit}")).strip()
                g.checkout("--force", "--detach", commit)
                g.clean("-ffdxq")
                summary = str(repo.commit(commit).summary)
            finally:
                repo.close()
        except git.GitCommandError as exc:
            raise _git_failure(spec, "unable to fetch", exc) from None
        except (OSError, ValueError, git.GitError) as exc:
            raise GitSourceError(
                f"failed to checkout and determine revision: unable to prepare the local copy of "
                f"'{sanitize_url(spec.url)}': {_scrub(str(exc))}"
            ) from None
        return _Fetched(directory, commit, summary)

    def _fetch_commit(
        self, g: git.cmd.Git, spec: GitRepositorySpec, remote: RemoteRevision, opts: dict[str, Any]
    ) -> str:
        wanted = remote.commit
        if len(wanted) in (40, 64):
            try:
                # Servers speaking protocol v2 hand out any reachable commit by SHA: one shallow
                # round trip instead of the whole history.
                g.fetch("--depth=1", "--no-tags", "--", spec.url, wanted, **opts)
                return str(g.rev_parse("FETCH_HEAD^{commit}")).strip()
            except git.GitCommandError:
                log.debug("fetch by SHA refused; fetching full history", url=sanitize_url(spec.url))
        refspecs = (
            [f"+{remote.fetch_ref}:refs/remotes/source/{remote.label}"]
            if remote.fetch_ref
            else ["+refs/heads/*:refs/remotes/source/*", "+refs/tags/*:refs/tags/*"]
        )
        # A shallow cache from earlier fetches must be deepened, or older commits stay invisible.
        shallow = Path(str(g.working_dir), ".git", "shallow").exists()
        unshallow = ["--unshallow"] if shallow else []
        g.fetch(*unshallow, "--no-tags", "--force", "--", spec.url, *refspecs, **opts)
        try:
            return str(g.rev_parse("--verify", "--quiet", f"{wanted}^{{commit}}")).strip()
        except git.GitCommandError:
            where = f"branch '{remote.label}' of " if remote.label else ""
            raise GitSourceError(
                f"failed to checkout and determine revision: commit '{wanted}' not found in "
                f"{where}'{sanitize_url(spec.url)}'"
            ) from None

    # --- status summary -------------------------------------------------------------------

    def _ready_status(
        self,
        previous: dict[str, Any],
        artifact: Artifact,
        generation: int,
        requested_at: str,
        now: float,
    ) -> dict[str, Any]:
        message = f"stored artifact for revision '{artifact.revision}'"
        status = _base_status(previous, requested_at)
        status["observedGeneration"] = generation
        status["artifact"] = artifact.to_status()
        status["conditions"] = _conditions(
            previous,
            [
                Condition(READY, TRUE, SUCCEEDED, message),
                Condition(ARTIFACT_IN_STORAGE, TRUE, SUCCEEDED, message),
            ],
            now,
            generation,
        )
        return status

    def _failed_status(
        self,
        previous: dict[str, Any],
        prior: Artifact | None,
        exc: GitSourceError,
        generation: int,
        requested_at: str,
        now: float,
    ) -> dict[str, Any]:
        # observedGeneration and artifact stay as they were: they describe the last success,
        # which is still what consumers download.
        status = _base_status(previous, requested_at)
        old_generation = previous.get("observedGeneration")
        progress = (
            f"processing object: new generation {old_generation} -> {generation}"
            if old_generation is not None and old_generation != generation
            else "retrying after a failed fetch"
        )
        current = [
            Condition(RECONCILING, TRUE, PROGRESSING_WITH_RETRY, progress),
            Condition(READY, FALSE, exc.reason, str(exc)),
            Condition(FETCH_FAILED, TRUE, exc.reason, str(exc)),
        ]
        if prior is not None and self.store.exists(prior.path):
            current.append(
                Condition(ARTIFACT_IN_STORAGE, TRUE, SUCCEEDED,
                          f"stored artifact for revision '{prior.revision}'")
            )
        status["conditions"] = _conditions(previous, current, now, generation)
        return status

    def _stalled_status(
        self,
        previous: dict[str, Any],
        exc: GitSpecError,
        generation: int,
        requested_at: str,
        now: float,
    ) -> dict[str, Any]:
        status = _base_status(previous, requested_at)
        status["observedGeneration"] = generation
        current = [
            Condition(STALLED, TRUE, exc.reason, str(exc)),
            Condition(READY, FALSE, exc.reason, str(exc)),
        ]
        prior = Artifact.from_status(previous.get("artifact"))
        if prior is not None and self.store.exists(prior.path):
            current.append(
                Condition(ARTIFACT_IN_STORAGE, TRUE, SUCCEEDED,
                          f"stored artifact for revision '{prior.revision}'")
            )
        status["conditions"] = _conditions(previous, current, now, generation)
        return status


def _open_cache(directory: Path) -> git.Repo:
    if (directory / ".git").is_dir():
        return git.Repo(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return git.Repo.init(directory)


def _git_failure(spec: GitRepositorySpec, action: str, exc: git.GitCommandError) -> GitSourceError:
    detail = _stderr_of(exc)
    message = (
        f"failed to checkout and determine revision: {action} of '{sanitize_url(spec.url)}' "
        f"for {spec.ref.describe()}: {detail}"
    )
    if _AUTH_HINTS.search(detail):
        return GitAuthenticationError(message)
    return GitSourceError(message)


def _stderr_of(exc: git.GitCommandError) -> str:
    raw = exc.stderr if isinstance(exc.stderr, str) else str(exc)
    text = raw.strip()
    # GitPython wraps stderr as "stderr: '...'"; unwrap it for a message people can read.
    if text.startswith("stderr:"):
        text = text[len("stderr:") :].strip()
    text = text.strip("'").strip()
    lines = [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not _GIT_BOILERPLATE.match(line.strip())
    ]
    chosen = "; ".join(lines[:3]) or f"git exited with status {exc.status}"
    return _scrub(chosen)


def _base_status(previous: dict[str, Any], requested_at: str) -> dict[str, Any]:
    status = dict(previous)
    if requested_at:
        status["lastHandledReconcileAt"] = requested_at
    return status


def _conditions(
    previous: Mapping[str, Any], current: list[Condition], now: float, generation: int
) -> list[dict[str, Any]]:
    old = previous.get("conditions")
    old_list = old if isinstance(old, list) else []
    rendered = merge_conditions(old_list, current, rfc3339(now), generation)
    # Keep conditions other writers own; drop ours that no longer hold (negative polarity ones
    # are only present while True).
    foreign = [
        c for c in old_list
        if isinstance(c, dict) and c.get("type") not in _OWNED_CONDITIONS
    ]
    return rendered + foreign
