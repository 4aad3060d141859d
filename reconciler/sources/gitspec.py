"""The GitRepository spec as the source controller reads it, and the errors it can raise.

It owns parsing `spec` (url, ref with Flux's precedence, interval, timeout, suspend, secretRef,
proxySecretRef, ignore, include, sparseCheckout, recurseSubmodules, verify and which verify
modes fit which refs) into frozen values, the content
configuration that decides whether a stored artifact is still current, and the Flux condition
reasons the controller writes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from reconciler.model.errors import Stalled, Transient
from reconciler.model.objects import Obj, spec_of

# Condition types and reasons, named as Flux's source-controller names them.
READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
FETCH_FAILED = "FetchFailed"
ARTIFACT_IN_STORAGE = "ArtifactInStorage"
SOURCE_VERIFIED = "SourceVerified"
INCLUDE_UNAVAILABLE = "IncludeUnavailable"
SUCCEEDED = "Succeeded"
PROGRESSING_WITH_RETRY = "ProgressingWithRetry"
GIT_OPERATION_FAILED = "GitOperationFailed"
AUTHENTICATION_FAILED = "AuthenticationFailed"
STORAGE_OPERATION_FAILED = "StorageOperationFailed"
INVALID_COMMIT_SIGNATURE = "InvalidCommitSignature"
INVALID_TAG_SIGNATURE = "InvalidTagSignature"
INVALID_GIT_OBJECT = "InvalidGitObject"
INVALID_VERIFICATION_MODE = "InvalidVerificationMode"
ARTIFACT_OUTDATED = "ArtifactOutdated"
NEW_REVISION = "NewRevision"
ARTIFACT_UNAVAILABLE = "ArtifactUnavailable"
INVALID_URL = "InvalidURL"
URL_SCHEME_NOT_ALLOWED = "URLSchemeNotAllowed"
INVALID_SPEC = "InvalidSpec"
NEW_ARTIFACT = "NewArtifact"

# spec.verify.mode values (Flux's GitVerificationMode); "head" is accepted as "HEAD".
MODE_HEAD = "HEAD"
MODE_TAG = "Tag"
MODE_TAG_AND_HEAD = "TagAndHEAD"
VERIFICATION_MODES = (MODE_HEAD, MODE_TAG, MODE_TAG_AND_HEAD)

DEFAULT_BRANCH = "master"  # Flux: "If not specified, it defaults to a `master` branch reference."
DEFAULT_INTERVAL = 60.0
DEFAULT_TIMEOUT = 60.0

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@")
_HEX = re.compile(r"^[0-9a-fA-F]{7,64}$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_UNITS = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0,
}


# --- errors -----------------------------------------------------------------------------------


class GitSourceError(Transient):
    """A git operation failed; `reason` is the Flux reason written to `condition_type` (a
    negative-polarity condition, True while failing) and to Ready."""

    condition_type = FETCH_FAILED

    def __init__(self, message: str, reason: str = GIT_OPERATION_FAILED) -> None:
        super().__init__(reason, message)


class GitIncludeError(GitSourceError):
    """An included GitRepository has no artifact (yet), or the path asked for is not in it."""

    condition_type = INCLUDE_UNAVAILABLE

    def __init__(self, message: str, reason: str = ARTIFACT_UNAVAILABLE) -> None:
        super().__init__(message, reason)


class GitVerificationError(GitSourceError):
    """A commit or tag signature does not verify, or the object is not signed; written as
    SourceVerified=False, as Flux does. `reason` is InvalidCommitSignature, InvalidTagSignature
    or InvalidGitObject (an unsigned tag)."""

    condition_type = SOURCE_VERIFIED

    def __init__(self, message: str, reason: str = INVALID_COMMIT_SIGNATURE) -> None:
        super().__init__(message, reason)


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


def scrub_userinfo(text: str) -> str:
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

    @property
    def names_a_tag(self) -> bool:
        """Whether the checkout goes through a tag (Flux: the commit has a referencing tag)."""
        return self.kind in ("tag", "semver") or (
            self.kind == "name" and self.value.startswith("refs/tags/"))

    def describe(self) -> str:
        if self.kind == "commit" and self.branch:
            return f"commit '{self.value}' on branch '{self.branch}'"
        return f"{self.kind} '{self.value}'"


@dataclass(frozen=True)
class Include:
    """One `spec.include` entry: another GitRepository's artifact copied into this one."""

    repository: str
    from_path: str
    to_path: str

    def to_status(self) -> dict[str, Any]:
        return {"repository": {"name": self.repository}, "fromPath": self.from_path,
                "toPath": self.to_path}


@dataclass(frozen=True)
class ContentConfig:
    """Everything besides the commit that shapes the artifact's bytes. When it equals what the
    status says the current artifact was built with, an unchanged commit needs no fetch."""

    ignore: str | None = None
    recurse_submodules: bool = False
    include: tuple[Include, ...] = ()
    sparse_checkout: tuple[str, ...] = ()
    verification_mode: str = ""

    def to_status(self) -> dict[str, Any]:
        """The `status.observed*` fields Flux writes; empty ones are left out."""
        out: dict[str, Any] = {}
        if self.ignore is not None:
            out["observedIgnore"] = self.ignore
        if self.recurse_submodules:
            out["observedRecurseSubmodules"] = True
        if self.include:
            out["observedInclude"] = [i.to_status() for i in self.include]
        if self.sparse_checkout:
            out["observedSparseCheckout"] = list(self.sparse_checkout)
        if self.verification_mode:
            out["sourceVerificationMode"] = self.verification_mode
        return out

    @classmethod
    def from_status(cls, status: Mapping[str, Any]) -> ContentConfig:
        includes = []
        for raw in status.get("observedInclude") or []:
            if isinstance(raw, Mapping):
                repo = raw.get("repository")
                includes.append(Include(
                    str(repo.get("name", "")) if isinstance(repo, Mapping) else "",
                    str(raw.get("fromPath", "")), str(raw.get("toPath", "")),
                ))
        ignore = status.get("observedIgnore")
        return cls(
            ignore=str(ignore) if ignore is not None else None,
            recurse_submodules=bool(status.get("observedRecurseSubmodules", False)),
            include=tuple(includes),
            sparse_checkout=tuple(str(d) for d in status.get("observedSparseCheckout") or []),
            verification_mode=str(status.get("sourceVerificationMode") or ""),
        )


STATUS_CONTENT_FIELDS = ("observedIgnore", "observedRecurseSubmodules", "observedInclude",
                         "observedSparseCheckout", "sourceVerificationMode")


@dataclass(frozen=True)
class GitRepositorySpec:
    url: str
    ref: GitRef
    interval: float
    timeout: float
    suspend: bool
    secret_ref: str = ""
    verify_secret_ref: str = ""
    proxy_secret_ref: str = ""
    content: ContentConfig = field(default_factory=ContentConfig)

    @property
    def scheme(self) -> str:
        """The transport: http, https, ssh (scp-like `user@host:path` too), git, or file (a
        file:// URL or a local path)."""
        return url_transport(self.url)

    @property
    def ignore(self) -> str | None:
        return self.content.ignore

    @classmethod
    def parse(cls, obj: Obj) -> GitRepositorySpec:
        spec = spec_of(obj)
        url = str(spec.get("url") or "").strip()
        if not url:
            raise GitSpecError("spec.url is required (e.g. https://github.com/org/repo)",
                               INVALID_URL)
        check_url_syntax(url)
        scheme = url_transport(url)
        scp_password = "://" not in url and ":" in url.partition("@")[0] and "@" in url
        if scheme in ("http", "https", "ssh") and (urlsplit(url).password or scp_password):
            raise GitSpecError(
                f"spec.url: {sanitize_url(url)!r} carries a password; put credentials in the "
                "Secret named by spec.secretRef instead",
                INVALID_URL,
            )
        ref = GitRef.from_spec(spec.get("ref"))
        mode, verify_secret = _verification(spec.get("verify"), ref)
        proxy_secret = _ref_name(spec.get("proxySecretRef"), "spec.proxySecretRef")
        if proxy_secret and scheme not in ("http", "https"):
            raise GitSpecError(
                f"spec.proxySecretRef: a proxy is used for http(s):// URLs only; "
                f"{sanitize_url(url)!r} would not go through it"
            )
        ignore = spec.get("ignore")
        content = ContentConfig(
            ignore=str(ignore) if ignore is not None else None,
            recurse_submodules=bool(spec.get("recurseSubmodules", False)),
            include=_includes(spec.get("include")),
            sparse_checkout=_sparse(spec.get("sparseCheckout")),
            verification_mode=mode,
        )
        return cls(
            url=url,
            ref=ref,
            interval=_duration_field(spec, "interval", DEFAULT_INTERVAL),
            timeout=_duration_field(spec, "timeout", DEFAULT_TIMEOUT),
            suspend=bool(spec.get("suspend", False)),
            secret_ref=_ref_name(spec.get("secretRef"), "spec.secretRef"),
            verify_secret_ref=verify_secret,
            proxy_secret_ref=proxy_secret,
            content=content,
        )


# `[user@]host:path` with the colon before any slash: git reads it as ssh (scp syntax).
_SCP_LIKE = re.compile(r"^(?:[^@/\s]+@)?(?:\[[^\]/]+\]|[^@/:\s\[\]]+):")
_REMOTE_HELPER = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*::")
_SCHEMES = {"http": "http", "https": "https", "ssh": "ssh", "git": "git", "file": "file",
            # git's own spellings of ssh
            "git+ssh": "ssh", "ssh+git": "ssh"}
NETWORK_URLS = "http://, https://, ssh:// (or scp-like user@host:path) and git://"


def url_transport(url: str) -> str:
    """The transport git will use for `url`: http, https, ssh, git or file ('file' also for a
    local path); '' for anything else (a remote helper such as `ext::`, an unknown scheme)."""
    if _REMOTE_HELPER.match(url):
        return ""
    if "://" in url:
        return _SCHEMES.get(url.split("://", 1)[0].lower(), "")
    if _SCP_LIKE.match(url):
        return "ssh"
    return "file"


def check_url_syntax(url: str) -> None:
    """Refuse URLs git would read as an option or hand to a command-running transport, and
    schemes it does not support; raise GitSpecError (InvalidURL)."""
    where = f"spec.url: {sanitize_url(url)!r}"
    if url.startswith("-"):
        raise GitSpecError(f"{where} must not start with '-' (git would read it as an option)",
                           INVALID_URL)
    if any(c in url for c in "\x00\n\r"):
        raise GitSpecError(f"{where} holds a control character", INVALID_URL)
    transport = url_transport(url)
    if not transport:
        what = (f"transport {url.split('::', 1)[0]!r}::" if _REMOTE_HELPER.match(url)
                else f"scheme {url.split('://', 1)[0].lower()!r}")
        raise GitSpecError(f"{where}: {what} is not supported (use {NETWORK_URLS})",
                           INVALID_URL)
    if transport in ("http", "https", "ssh", "git") and "://" in url:
        host = urlsplit(url).hostname or ""
        if host.startswith("-"):
            raise GitSpecError(f"{where}: host must not start with '-'", INVALID_URL)
    elif transport == "ssh" and url.split("@", 1)[-1].startswith("-"):
        raise GitSpecError(f"{where}: host must not start with '-'", INVALID_URL)


def check_url_allowed(url: str, allow_local: bool) -> None:
    """Refuse a file:// URL or local path unless `allow_local` (SourceSettings.allow_local_urls:
    on for `simulate`, `test` and `diff`, off in the daemon); raise GitSpecError
    (URLSchemeNotAllowed)."""
    if url_transport(url) == "file" and not allow_local:
        what = "scheme 'file'" if "://" in url else "a local path"
        raise GitSpecError(
            f"spec.url: {sanitize_url(url)!r} uses {what}, which is not allowed here: a "
            f"GitRepository may use {NETWORK_URLS}; local repositories are read only by "
            "`reconciler simulate`, `test` and `diff` (SourceSettings.allow_local_urls)",
            URL_SCHEME_NOT_ALLOWED,
        )


def _verification(raw: object, ref: GitRef) -> tuple[str, str]:
    """(mode, secret name) of `spec.verify`; ("", "") when verification is off."""
    if not isinstance(raw, Mapping):
        return "", ""
    mode = str(raw.get("mode") or MODE_HEAD)
    if mode == "head":
        mode = MODE_HEAD  # Flux accepts the lowercase spelling for backwards compatibility.
    if mode not in VERIFICATION_MODES:
        raise GitSpecError(
            f"spec.verify.mode: {mode!r} is not supported; use 'HEAD' (the checked-out "
            "commit), 'Tag' (the tag object) or 'TagAndHEAD' (both)",
            INVALID_VERIFICATION_MODE,
        )
    if mode != MODE_HEAD and not ref.names_a_tag:
        # Flux stalls with this message once it finds the checkout has no referencing tag;
        # the spec alone tells us, so say it before any network call.
        raise GitSpecError(
            f"spec.verify.mode {mode!r}: cannot verify tag object's signature if a tag "
            "reference is not specified (set spec.ref.tag, spec.ref.semver or a spec.ref.name "
            f"under refs/tags/; {ref.describe()} is not one)",
            INVALID_VERIFICATION_MODE,
        )
    secret = _ref_name(raw.get("secretRef"), "spec.verify.secretRef")
    if not secret:
        raise GitSpecError("spec.verify.secretRef.name is required (a Secret of "
                           "armored public keys)")
    return mode, secret


def _ref_name(raw: object, where: str) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, Mapping) or not str(raw.get("name") or "").strip():
        raise GitSpecError(f"{where}.name is required when {where} is set")
    return str(raw["name"]).strip()


def _relative_dir(value: object, where: str) -> str:
    text = str(value or "").strip().strip("/")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if ".." in parts or "\\" in text or "\x00" in text:
        raise GitSpecError(f"{where}: {value!r} must be a path inside the repository "
                           "(no '..')")
    return "/".join(parts)


def _includes(raw: object) -> tuple[Include, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise GitSpecError("spec.include must be a list")
    out = []
    for i, entry in enumerate(raw):
        where = f"spec.include[{i}]"
        repo = entry.get("repository") if isinstance(entry, Mapping) else None
        name = str(repo.get("name") or "").strip() if isinstance(repo, Mapping) else ""
        if not name:
            raise GitSpecError(f"{where}.repository.name is required")
        assert isinstance(entry, Mapping)
        from_path = _relative_dir(entry.get("fromPath"), f"{where}.fromPath")
        # Flux: "The .toPath defaults to the .repository.name".
        to_path = _relative_dir(entry.get("toPath") or name, f"{where}.toPath")
        if not to_path:
            raise GitSpecError(f"{where}.toPath: must name a directory, not the root")
        out.append(Include(name, from_path, to_path))
    return tuple(out)


def _sparse(raw: object) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise GitSpecError("spec.sparseCheckout must be a list of directories")
    dirs = [_relative_dir(d, f"spec.sparseCheckout[{i}]") for i, d in enumerate(raw)]
    return tuple(d for d in dirs if d)


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
    # The object `refs/tags/<tag>` names on the remote (an annotated tag's own id, or the
    # commit for a lightweight tag); empty when the ref is not a tag.
    tag_object: str = ""

    @property
    def tag_name(self) -> str:
        return self.fetch_ref.removeprefix("refs/tags/") if self.fetch_ref.startswith(
            "refs/tags/") else ""

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


