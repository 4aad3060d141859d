"""The built-in source controller for Flux `source.toolkit.fluxcd.io/v1` `GitRepository` objects.

It owns one reconcile of one object, as ordered steps: parse the spec, honour suspend and the
interval gate, load credentials and the proxy from the referenced Secrets, resolve the ref against
the remote's refs (one shared `git ls-remote` per URL, credentials, proxy and interval), and only
when the commit or the content configuration moved: fetch into a per-object cache under
`workdir`, check out (sparse, with submodules), verify the tag and/or commit signature, copy
included artifacts in, archive into the ArtifactStore and garbage-collect old archives. The
status (artifact, observed content config, conditions, ArtifactOutdated while a new revision's
artifact is not stored) is summarized in one place from the outcome, as Flux's
source-controller writes it.
It does not write status anywhere: the caller gets a SourceResult and persists it.

Helpers live next door: `gitspec` (spec and errors), `gitexec` (running git), `credentials`
(Secrets to files), `proxy` (spec.proxySecretRef), `remoterefs` (the shared ls-remote cache),
`ignore` (exclusions), `signatures` (GPG, commits and tags), `artifacts` (the store).
"""

from __future__ import annotations

import hashlib
import json
import os
import random as _random
import re
import stat
import tarfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from reconciler.model.annotations import REQUESTED_AT_ANNOTATION
from reconciler.model.conditions import FALSE, TRUE, Condition, find_condition
from reconciler.model.objects import Obj, deep_copy, meta, name_of, namespace_of, status_of
from reconciler.runtime.clock import Clock, rfc3339
from reconciler.runtime.jitter import jittered
from reconciler.runtime.reconcile import (
    DONE,
    PROGRESSING,
    Conditions,
    Ending,
    FluxConditions,
    Result,
    Step,
    keep_last_good,
    reconcile,
    render,
    requeue,
    summarize,
)
from reconciler.sources.artifacts import (
    Artifact,
    ArtifactError,
    ArtifactNotFoundError,
    ArtifactPathError,
    ArtifactStore,
    check_object_key,
    private_dir,
)
from reconciler.sources.credentials import (
    CredentialsError,
    GitCredentials,
    ObjectLookup,
    describe_method,
    git_auth_env,
    redact,
    secret_data,
)
from reconciler.sources.gitexec import (
    NETWORK_PROTOCOLS,
    GitCommandFailed,
    GitTimedOut,
    format_seconds,
    run_git,
)
from reconciler.sources.gitspec import (
    ARTIFACT_IN_STORAGE,
    ARTIFACT_OUTDATED,
    DEFAULT_BRANCH,
    FETCH_FAILED,
    INCLUDE_UNAVAILABLE,
    INVALID_SPEC,
    INVALID_VERIFICATION_MODE,
    NEW_ARTIFACT,
    NEW_REVISION,
    RECONCILING,
    SOURCE_VERIFIED,
    STATUS_CONTENT_FIELDS,
    STORAGE_OPERATION_FAILED,
    SUCCEEDED,
    ContentConfig,
    GitAuthenticationError,
    GitIncludeError,
    GitRef,
    GitRepositorySpec,
    GitSourceError,
    GitSpecError,
    GitStorageError,
    GitVerificationError,
    Include,
    RemoteRevision,
    SourceEvent,
    SourceResult,
    check_url_allowed,
    parse_duration,
    sanitize_url,
    scrub_userinfo,
    url_transport,
)
from reconciler.sources.ignore import IgnoreRules
from reconciler.sources.proxy import GitProxy, ProxyError
from reconciler.sources.remoterefs import RemoteRefCache, parse_ls_remote
from reconciler.sources.semver import Constraint, SemverError, highest
from reconciler.sources.signatures import SignatureError, TagObject, read_tag, verify_checkout
from reconciler.sources.unpack import (
    UnpackError,
    UnsafePathError,
    open_root,
    open_subdir,
    relative_parts,
    unpack_artifact,
)

__all__ = [
    "API_VERSION", "DEFAULT_BRANCH", "KIND", "GitAuthenticationError", "GitRef",
    "GitRepositoryController", "GitRepositorySpec", "GitSourceError", "GitSpecError",
    "SourceEvent", "SourceResult", "parse_duration", "sanitize_url",
]

log = structlog.get_logger(__name__)

KIND = "GitRepository"
API_VERSION = "source.toolkit.fluxcd.io/v1"

CONDITIONS = FluxConditions(
    negative=(FETCH_FAILED, INCLUDE_UNAVAILABLE, ARTIFACT_OUTDATED),
    positive=(SOURCE_VERIFIED, ARTIFACT_IN_STORAGE),
    success_reason=SUCCEEDED,
    retry_message="retrying after a failed reconcile",
)
"""Flux's GitRepository conditions: Ready, Reconciling, Stalled, FetchFailed, IncludeUnavailable,
ArtifactOutdated, SourceVerified, ArtifactInStorage."""
LAST_GOOD = ("artifact", "includedArtifacts", *STATUS_CONTENT_FIELDS)
"""Status fields only a successful reconcile changes: they describe what consumers download."""

_AUTH_HINTS = re.compile(
    r"authentication failed|could not read (username|password)|terminal prompts disabled"
    r"|permission denied \(publickey|http (basic: )?access denied|\b(401|403)\b"
    r"|invalid username or password|host key verification failed|\b407\b",
    re.IGNORECASE,
)
# git's generic advice after a failed connection; it says nothing about this failure.
_GIT_BOILERPLATE = re.compile(
    r"^(please make sure you have the correct access rights|and the repository exists)",
    re.IGNORECASE,
)
_TELLING = re.compile(r"fatal:|error:|denied|failed|refused|not found|could not", re.IGNORECASE)
_CHECKOUT_STATE = "reconciler-checkout.json"
# Shared builds remembered (a few hundred bytes each): far more than the distinct (repository,
# credentials, commit, content) combinations polled at once; the oldest is forgotten first, and
# forgetting one costs at most one more fetch.
_BUILT_ENTRIES = 4096
# (url, credentials and proxy identity, commit, content config, verification keys and tag)
_BuildKey = tuple[str, str, str, ContentConfig, str]


@dataclass
class _PollRecord:
    """What the last reconcile of one object saw; the interval gate compares against it."""

    uid: str
    generation: int
    requested_at: str
    next_due: float
    failures: int


@dataclass(frozen=True)
class _Built:
    """An archive built for one object, to be shared with others under the same build key."""

    artifact: Artifact
    summary: str
    verified: Condition | None


@dataclass
class _Fetched:
    directory: Path
    commit: str
    summary: str
    tag: TagObject | None = None


@dataclass(frozen=True)
class _Included:
    include: Include
    artifact: Artifact


@dataclass
class _Attempt:
    """One reconcile's inputs after the cheap steps: the spec, credentials, included artifacts."""

    spec: GitRepositorySpec
    namespace: str
    name: str
    credentials: GitCredentials | None
    proxy: GitProxy | None
    includes: list[_Included]
    verify_keys: dict[str, bytes] | None
    refresh_remote: bool
    bound: Any
    # The revision being built while the stored artifact is of an older one (Flux's
    # ArtifactOutdated=True/NewRevision); empty until the new commit is checked out and verified.
    outdated: str = ""

    def redact(self, text: str) -> str:
        return redact(text, self.credentials, self.proxy)


@dataclass
class GitRun:
    """What one reconcile of one GitRepository builds up, step by step."""

    obj: Obj
    key: tuple[str, str]
    get_object: ObjectLookup | None
    generation: int
    requested_at: str
    uid: str
    previous: dict[str, Any]
    now: float
    bound: Any
    prior: Artifact | None
    conditions: Conditions = field(default_factory=Conditions)
    spec: GitRepositorySpec | None = None
    poll: _PollRecord | None = None
    credentials: GitCredentials | None = None
    proxy: GitProxy | None = None
    attempt: _Attempt | None = None
    artifact: Artifact | None = None
    events: list[SourceEvent] = field(default_factory=list)
    skipped: bool = False
    """Suspended, or within its interval with nothing changed: nothing reconciled, nothing
    written."""
    result: SourceResult | None = None


class GitRepositoryController:
    """Reconciles GitRepository objects into artifacts; safe to call from several threads.

    `ls_remote_calls` and `fetch_calls` count network operations, so tests and benchmarks can
    check that an unchanged remote costs one ls-remote per interval (shared by every object on
    the same URL) and no fetch, and that a new commit costs one fetch however many objects track
    it; `archives_built` counts archives written from a checkout (a shared one is linked, not
    built).
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
        remote_refs: RemoteRefCache | None = None,
        allow_local_urls: bool = False,
        interval_jitter: float = 0.0,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self.store = store
        # Flux's --interval-jitter-percentage as a fraction: after a success the next poll is
        # spec.interval * (1 ± interval_jitter) (`runtime/jitter`), so sources applied together
        # on one interval spread out. 0 (simulate, test): exactly the interval.
        self.interval_jitter = interval_jitter
        self.random = random
        self.clock = clock
        self.workdir = Path(workdir)
        # file:// URLs and local paths in spec.url (SourceSettings.allow_local_urls): for
        # `simulate`, `test` and `diff` on the user's own machine, never for the daemon.
        self.allow_local_urls = allow_local_urls
        self._home: Path | None = None
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.keep_artifacts = keep_artifacts
        self.remote_refs = remote_refs or RemoteRefCache(clock)
        self.ls_remote_calls = 0
        self.fetch_calls = 0
        self.archives_built = 0
        self._polls: dict[tuple[str, str], _PollRecord] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()
        # Stored archives known to hold no link (built before links were left out, they are
        # rebuilt once): digest -> link-free.
        self._link_free: dict[str, bool] = {}
        # Archives already built, by (url, credentials and proxy identity, commit, content
        # config): many objects tracking the same repository and ref share one fetch and one
        # archive instead of one each, never across credentials or proxies (what one Secret may
        # read is not another's). Oldest first, at most _BUILT_ENTRIES of them.
        self._built: OrderedDict[_BuildKey, _Built] = OrderedDict()
        # Builds under way, by the same key: an object wanting one waits for it rather than
        # fetching the same commit alongside (the daemon reconciles on several workers).
        self._building: dict[_BuildKey, threading.Event] = {}
        self.steps: tuple[Step[GitRun], ...] = (
            self.check_spec, self.check_interval, self.load_inputs, self.sync)

    def next_interval(self, interval: float) -> float:
        """Seconds until the next poll after a success: `interval`, jittered."""
        return jittered(interval, self.interval_jitter, self.random)

    def forget(self, namespace: str, name: str) -> None:
        """Drop what the controller remembers about a deleted object."""
        with self._guard:
            self._polls.pop((namespace, name), None)
            self._locks.pop((namespace, name), None)

    def reconcile(
        self, obj: Obj, get_object: ObjectLookup | None = None,
        write: Callable[[SourceResult], None] | None = None,
    ) -> SourceResult:
        """One reconcile; `get_object(api_version, kind, namespace, name)` reads Secrets and
        included GitRepositories (the engine passes its Backend's `get`). `write` persists the
        result from the `finally` that summarizes it, so a status is written even when a step
        crashes (the crash then goes on to the caller)."""
        key = (namespace_of(obj), name_of(obj))
        with self._lock_for(key):
            run = self._begin(obj, key, get_object)

            def finish(run: GitRun, ending: Ending) -> None:
                self.finish(run, ending)
                if write is not None and run.result is not None:
                    write(run.result)

            # A git failure or a spec that cannot work is recorded on the status and retried on
            # this controller's own backoff (or not at all); anything else goes on to the caller.
            with suppress(GitSourceError, GitSpecError):
                reconcile(run, self.steps, finish)
            assert run.result is not None
            return run.result

    def _lock_for(self, key: tuple[str, str]) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def _begin(
        self, obj: Obj, key: tuple[str, str], get_object: ObjectLookup | None
    ) -> GitRun:
        namespace, name = key
        m = meta(obj)
        generation = int(m.get("generation") or 0)
        annotations = m.get("annotations") if isinstance(m.get("annotations"), dict) else {}
        previous = deep_copy(status_of(obj))
        run = GitRun(
            obj=obj, key=key, get_object=get_object, generation=generation,
            requested_at=str((annotations or {}).get(REQUESTED_AT_ANNOTATION) or ""),
            uid=str(m.get("uid") or ""), previous=previous, now=self.clock.now(),
            bound=log.bind(kind=KIND, namespace=namespace, name=name, generation=generation),
            prior=Artifact.from_status(previous.get("artifact")),
        )
        if run.prior is not None and self.store.exists(run.prior.path):
            # What consumers download until a new artifact is stored.
            run.conditions.set(Condition(ARTIFACT_IN_STORAGE, TRUE, SUCCEEDED,
                                         f"stored artifact for revision '{run.prior.revision}'"))
        return run

    # --- steps ----------------------------------------------------------------------------

    def check_spec(self, run: GitRun) -> Result:
        """Parse the spec; one that cannot work as written stalls the object."""
        namespace, name = run.key
        try:
            # The name becomes a path under workdir and the store: refuse `..` and friends early.
            try:
                check_object_key(KIND, namespace, name)
            except ArtifactPathError as exc:
                raise GitSpecError(f"metadata: {exc}") from None
            run.spec = GitRepositorySpec.parse(run.obj)
            check_url_allowed(run.spec.url, self.allow_local_urls)
        except GitSpecError as exc:
            if exc.reason == INVALID_VERIFICATION_MODE:
                run.conditions.set(Condition(SOURCE_VERIFIED, FALSE, exc.reason, str(exc)))
            raise
        return DONE

    def check_interval(self, run: GitRun) -> Result:
        """Nothing to do while suspended, or before the interval is due when nothing changed:
        the run is skipped and writes nothing."""
        spec = run.spec
        assert spec is not None
        if spec.suspend:
            run.bound.info("reconciliation suspended")
            run.skipped = True
            return requeue(spec.interval)
        run.poll = self._polls.get(run.key)
        namespace = run.key[0]
        if run.poll is not None and self._may_skip(
            run.poll, run.uid, run.generation, run.requested_at, run.previous, run.now, spec,
            namespace, run.get_object,
        ):
            run.skipped = True
            return requeue(run.poll.next_due - run.now)
        old_generation = run.previous.get("observedGeneration")
        if old_generation is not None and old_generation != run.generation:
            run.conditions.set(Condition(
                RECONCILING, TRUE, PROGRESSING,
                f"processing object: new generation {old_generation} -> {run.generation}"))
        return DONE

    def load_inputs(self, run: GitRun) -> Result:
        """Credentials, the proxy, included artifacts and verification keys."""
        spec = run.spec
        assert spec is not None
        namespace, name = run.key
        run.bound = run.bound.bind(url=sanitize_url(spec.url), ref=spec.ref.describe())
        with self._recording(run):
            run.credentials = self._credentials(spec, namespace, run.get_object)
            run.proxy = self._proxy(spec, namespace, run.get_object)
            run.attempt = _Attempt(
                spec, namespace, name, run.credentials, run.proxy,
                self._includes(spec, namespace, run.get_object),
                self._verify_keys(spec, namespace, run.get_object),
                # The shared listing is for routine polls: a retry, a new generation or an
                # explicit request (new since the last reconcile, or not yet handled per the
                # status, as after a restart) deserves the remote's current word.
                refresh_remote=(run.poll is not None and (
                    run.poll.failures > 0 or run.poll.generation != run.generation
                    or run.poll.requested_at != run.requested_at
                )) or (bool(run.requested_at)
                       and run.requested_at != run.previous.get("lastHandledReconcileAt")),
                bound=run.bound.bind(auth=describe_method(spec.scheme, run.credentials)),
            )
        return DONE

    def sync(self, run: GitRun) -> Result:
        """Resolve the ref, and when it or the content moved: fetch, verify, include, store."""
        attempt = run.attempt
        assert attempt is not None
        try:
            with self._recording(run):
                run.artifact, run.events, verified = self._sync(
                    attempt, run.prior, run.previous, run.now)
        finally:
            if attempt.outdated:
                message = f"new upstream revision '{attempt.outdated}'"
                run.conditions.set(Condition(ARTIFACT_OUTDATED, TRUE, NEW_REVISION, message))
                run.conditions.set(Condition(RECONCILING, TRUE, PROGRESSING,
                                             f"building artifact: {message}"))
        message = f"stored artifact for revision '{run.artifact.revision}'"
        run.conditions.set(Condition(ARTIFACT_IN_STORAGE, TRUE, SUCCEEDED, message))
        if attempt.spec.content.verification_mode:
            # An up-to-date artifact was verified when it was built: keep saying so.
            run.conditions.set(verified or _carried(run.previous, SOURCE_VERIFIED))
        return DONE

    @contextmanager
    def _recording(self, run: GitRun) -> Iterator[None]:
        """A git failure recorded on its own condition, its message redacted of credentials."""
        try:
            yield
        except GitSourceError as exc:
            message = redact(str(exc), run.credentials, run.proxy)
            exc.args = (message,)
            # SourceVerified has positive polarity (False when failing); the others negative.
            run.conditions.set(Condition(
                exc.condition_type, FALSE if exc.condition_type == SOURCE_VERIFIED else TRUE,
                exc.reason, message))
            raise

    # --- the one place the status is summarized -------------------------------------------

    def finish(self, run: GitRun, ending: Ending) -> None:
        """The new status, events and requeue of a run, from how it ended."""
        if run.skipped:
            assert ending.result is not None and ending.result.after is not None
            run.result = SourceResult(run.previous, ending.result.after)
            return
        status = dict(run.previous)
        if run.requested_at:
            status["lastHandledReconcileAt"] = run.requested_at
        if ending.succeeded or ending.stalled:
            status["observedGeneration"] = run.generation  # Flux: on success or a stall
        if ending.succeeded:
            assert run.spec is not None and run.artifact is not None and run.attempt is not None
            for stale in (*STATUS_CONTENT_FIELDS, "includedArtifacts"):
                status.pop(stale, None)
            status.update(run.spec.content.to_status())
            if run.attempt.includes:
                status["includedArtifacts"] = _included_status(run.attempt.includes)
            status["artifact"] = run.artifact.to_status()
        # artifact, includedArtifacts and the observed content configuration describe the last
        # success, which is still what consumers download.
        status = keep_last_good(status, run.previous, ending, LAST_GOOD)
        message = f"stored artifact for revision '{run.artifact.revision}'" if (
            run.artifact is not None) else ""
        conditions = summarize(run.conditions, ending, CONDITIONS, message)
        status["conditions"] = render(run.previous.get("conditions"), conditions, CONDITIONS,
                                      ending, rfc3339(run.now), run.generation)
        failure = ending.failure
        if ending.succeeded:
            assert run.spec is not None
            interval = self.next_interval(run.spec.interval)
            self._polls[run.key] = _PollRecord(run.uid, run.generation, run.requested_at,
                                               run.now + interval, 0)
            run.result = SourceResult(status, interval, run.events)
            return
        assert failure is not None
        events = [SourceEvent("Warning", failure.reason, failure.message)]
        if ending.stalled:
            run.bound.warning("invalid spec", reason=failure.reason, error=failure.message)
            self._polls.pop(run.key, None)
            run.result = SourceResult(status, self.backoff_max, events)
            return
        poll = run.poll
        failures = (poll.failures if poll is not None and poll.uid == run.uid else 0) + 1
        delay = min(self.backoff_base * 2 ** (failures - 1), self.backoff_max)
        self._polls[run.key] = _PollRecord(run.uid, run.generation, run.requested_at,
                                           run.now + delay, failures)
        run.bound.warning("reconcile failed", reason=failure.reason, error=failure.message,
                          retry_in=delay, crashed=failure.crashed)
        run.result = SourceResult(status, delay, events)

    def _may_skip(
        self,
        poll: _PollRecord,
        uid: str,
        generation: int,
        requested_at: str,
        previous: Mapping[str, Any],
        now: float,
        spec: GitRepositorySpec,
        namespace: str,
        get_object: ObjectLookup | None,
    ) -> bool:
        if now >= poll.next_due or (poll.uid, poll.generation, poll.requested_at) != (
            uid, generation, requested_at
        ):
            return False
        if poll.failures:
            return True
        # A success is only worth repeating while its artifact is still in storage and the
        # artifacts it includes have not moved on.
        prior = Artifact.from_status(previous.get("artifact"))
        if prior is None or not self.store.exists(prior.path):
            return False
        if spec.content.include:
            try:
                current = self._includes(spec, namespace, get_object)
            except GitSourceError:
                return False
            return _included_status(current) == previous.get("includedArtifacts")
        return True

    # --- inputs ---------------------------------------------------------------------------

    def _credentials(
        self, spec: GitRepositorySpec, namespace: str, get_object: ObjectLookup | None
    ) -> GitCredentials | None:
        if not spec.secret_ref:
            return None
        try:
            data = secret_data(get_object, namespace, spec.secret_ref, "spec.secretRef")
        except CredentialsError as exc:
            raise GitAuthenticationError(str(exc)) from None
        return GitCredentials.from_secret(f"{namespace}/{spec.secret_ref}", data)

    def _proxy(
        self, spec: GitRepositorySpec, namespace: str, get_object: ObjectLookup | None
    ) -> GitProxy | None:
        if not spec.proxy_secret_ref:
            return None
        try:
            data = secret_data(get_object, namespace, spec.proxy_secret_ref,
                               "spec.proxySecretRef")
            return GitProxy.from_secret(f"{namespace}/{spec.proxy_secret_ref}", data)
        except (CredentialsError, ProxyError) as exc:
            # Flux: FetchFailed, reason AuthenticationFailed.
            raise GitAuthenticationError(f"failed to configure proxy options: {exc}") from None

    def _verify_keys(
        self, spec: GitRepositorySpec, namespace: str, get_object: ObjectLookup | None
    ) -> dict[str, bytes] | None:
        if not spec.verify_secret_ref:
            return None
        try:
            return secret_data(get_object, namespace, spec.verify_secret_ref,
                               "spec.verify.secretRef")
        except CredentialsError as exc:
            raise GitVerificationError(f"PGP public keys {exc}") from None

    def _includes(
        self, spec: GitRepositorySpec, namespace: str, get_object: ObjectLookup | None
    ) -> list[_Included]:
        out = []
        for inc in spec.content.include:
            other = get_object(API_VERSION, KIND, namespace, inc.repository) if get_object else None
            if other is None:
                raise GitIncludeError(
                    f"could not get resource for include '{inc.repository}': GitRepository "
                    f"'{namespace}/{inc.repository}' not found", "NotFound",
                )
            artifact = Artifact.from_status(status_of(other).get("artifact"))
            if artifact is None or not self.store.exists(artifact.path):
                raise GitIncludeError(
                    f"no artifact available for include '{inc.repository}': GitRepository "
                    f"'{namespace}/{inc.repository}' is not ready yet"
                )
            out.append(_Included(inc, artifact))
        return out

    # --- steps ----------------------------------------------------------------------------

    def _sync(
        self,
        attempt: _Attempt,
        prior: Artifact | None,
        previous: Mapping[str, Any],
        now: float,
    ) -> tuple[Artifact, list[SourceEvent], Condition | None]:
        spec, bound = attempt.spec, attempt.bound
        remote = self._resolve(attempt)
        if (
            prior is not None
            and remote.matches(prior.revision)
            and self.store.exists(prior.path)
            and ContentConfig.from_status(previous) == spec.content
            and _included_status(attempt.includes) == previous.get("includedArtifacts")
            and self._holds_no_links(prior)
        ):
            bound.debug("artifact up-to-date with remote revision", revision=prior.revision)
            return prior, [], None

        if attempt.includes or remote.pinned:
            # Not shareable: included artifacts are per namespace, a pinned commit may be
            # abbreviated.
            return self._build(attempt, remote, prior, now, None)
        key = (spec.url, self._identity(attempt), remote.commit, spec.content,
               _verifier(attempt, remote))
        rechecked = False
        while True:
            shared = self._shared_build(attempt, key, remote, now)
            if shared is not None:
                artifact = shared.artifact
                if prior is not None and prior.digest == artifact.digest and (
                        prior.revision == artifact.revision):
                    return artifact, [], shared.verified
                return artifact, [SourceEvent(
                    "Normal", NEW_ARTIFACT, f"stored artifact for commit '{shared.summary}'",
                )], shared.verified
            with self._guard:
                flight = self._building.get(key)
                # Stored since we looked (a build ended in between): share it, once.
                stored_meanwhile = key in self._built and not rechecked
                if flight is None and not stored_meanwhile:
                    mine = self._building[key] = threading.Event()
                    break
            if flight is None:
                rechecked = True
                continue
            # Another object is building this very archive: share it once stored. If that build
            # fails nothing is stored, and this object tries on its own (a failure is never
            # passed on as a success, nor as a failure: this object's attempt may fare better).
            flight.wait()
            if key not in self._built:
                return self._build(attempt, remote, prior, now, key)
        try:
            return self._build(attempt, remote, prior, now, key)
        finally:
            with self._guard:
                self._building.pop(key, None)
            mine.set()

    def _build(
        self,
        attempt: _Attempt,
        remote: RemoteRevision,
        prior: Artifact | None,
        now: float,
        key: _BuildKey | None,
    ) -> tuple[Artifact, list[SourceEvent], Condition | None]:
        """Fetch (unless the object's cache holds the commit), verify, include and store; a
        `key` makes the stored archive available to other objects under it."""
        spec, bound = attempt.spec, attempt.bound
        fetched = self._checkout(attempt, remote)
        actual = RemoteRevision(remote.label, fetched.commit, remote.fetch_ref, remote.pinned)
        if actual.commit != remote.commit and not remote.pinned:
            bound.info("remote moved between ls-remote and fetch", revision=actual.revision)
        verified = self._verify(attempt, fetched)
        if prior is not None and self.store.exists(prior.path) and (
                prior.revision != actual.revision):
            # Flux marks it once the new commit is checked out and verified; a failure from here
            # on (includes, storage) leaves it standing next to the old artifact.
            attempt.outdated = actual.revision
        self._copy_includes(attempt, fetched.directory)
        try:
            artifact = self.store.store_directory(
                KIND, attempt.namespace, attempt.name, actual.revision, fetched.directory,
                exclude=IgnoreRules.for_checkout(fetched.directory, spec.content.ignore),
                now=rfc3339(now),
            )
            self.store.gc(KIND, attempt.namespace, attempt.name, keep=self.keep_artifacts,
                          protect=[artifact.path])
        except (ArtifactError, OSError) as exc:
            # strerror, not str(exc): the latter names files under the store's root.
            detail = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise GitStorageError(
                f"failed to store artifact for revision '{actual.revision}': {detail}"
            ) from exc
        with self._guard:
            self.archives_built += 1
            if key is not None and actual.commit == remote.commit:
                self._built[key] = _Built(artifact, fetched.summary, verified)
                self._built.move_to_end(key)
                while len(self._built) > _BUILT_ENTRIES:
                    self._built.popitem(last=False)
        if prior is not None and prior.digest == artifact.digest and prior.revision == (
            artifact.revision
        ):
            return artifact, [], verified
        bound.info("new artifact", revision=artifact.revision, digest=artifact.digest)
        return artifact, [
            SourceEvent("Normal", NEW_ARTIFACT, f"stored artifact for commit '{fetched.summary}'")
        ], verified

    @property
    def home(self) -> Path:
        """HOME of every git command, a 0700 directory under workdir (itself 0700) created on
        first use: empty, so no ~/.gitconfig, ~/.netrc or ~/.ssh of the host is read."""
        if self._home is None:
            home = self.workdir / "home"
            private_dir(home)
            private_dir(self.workdir)
            self._home = home
        return self._home

    def _holds_no_links(self, artifact: Artifact) -> bool:
        """Whether a stored archive is free of links; one read per archive and process, so an
        archive stored before links were left out is rebuilt once rather than kept forever."""
        known = self._link_free.get(artifact.digest)
        if known is None:
            try:
                with tarfile.open(self.store.open(artifact.path), "r|gz") as tar:
                    known = not any(m.issym() or m.islnk() for m in tar)
            except (ArtifactError, OSError, tarfile.TarError):
                known = False
            self._link_free[artifact.digest] = known
        return known

    def _shared_build(
        self, attempt: _Attempt, key: _BuildKey, remote: RemoteRevision, now: float
    ) -> _Built | None:
        """The archive another object already built (and verified) under `key`, stored again
        under this object's name (a hard link); None when there is none to share."""
        with self._guard:
            built = self._built.get(key)
        if built is None:
            return None
        source = built.artifact
        revision = RemoteRevision(remote.label, remote.commit, remote.fetch_ref).revision
        try:
            artifact = self.store.store_copy(KIND, attempt.namespace, attempt.name, revision,
                                             source, now=rfc3339(now), keep=self.keep_artifacts)
        except ArtifactNotFoundError:
            # Collected with its object (deleted, or moved on): no longer there to share.
            with self._guard:
                if self._built.get(key) == built:
                    del self._built[key]
            return None
        except (ArtifactError, OSError):
            return None  # build it the ordinary way
        attempt.bound.debug("artifact shared", revision=revision, digest=artifact.digest)
        return _Built(artifact, built.summary, built.verified)

    @staticmethod
    def _identity(attempt: _Attempt) -> str:
        """Who asks the remote: a digest of the credentials and the proxy ("" for neither).
        Whatever is shared between objects (ref listings, archives) is shared only under it."""
        identity = attempt.credentials.fingerprint() if attempt.credentials else ""
        if attempt.proxy is not None:
            identity += "+proxy:" + attempt.proxy.fingerprint()
        return identity

    def _resolve(self, attempt: _Attempt) -> RemoteRevision:
        spec = attempt.spec
        ref = spec.ref
        if ref.kind == "commit":
            # The commit is the answer already: no network round trip is needed to know it.
            return RemoteRevision(ref.branch, ref.value, ref.branch and f"refs/heads/{ref.branch}",
                                  pinned=True)
        refs = self._remote_refs(attempt)
        if ref.kind in ("branch", "tag", "name"):
            wanted = {"branch": f"refs/heads/{ref.value}", "tag": f"refs/tags/{ref.value}",
                      "name": ref.value}[ref.kind]
            if wanted not in refs:
                raise self._missing(spec, wanted)
            # Annotated tags resolve to the commit they point at, as ls-remote's `^{}` line says.
            return RemoteRevision(ref.value, refs.get(f"{wanted}^{{}}", refs[wanted]), wanted,
                                  tag_object=refs[wanted] if wanted.startswith("refs/tags/")
                                  else "")
        try:
            constraint = Constraint.parse(ref.value)
        except SemverError as exc:
            raise GitSourceError(f"spec.ref.semver: {exc}", INVALID_SPEC) from None
        tags = {r.removeprefix("refs/tags/") for r in refs
                if r.startswith("refs/tags/") and not r.endswith("^{}")}
        tag = highest(constraint, tags)
        if tag is None:
            raise GitSourceError(
                f"failed to checkout and determine revision: no tag of "
                f"'{sanitize_url(spec.url)}' matches semver range '{ref.value}'"
            )
        wanted = f"refs/tags/{tag}"
        return RemoteRevision(tag, refs.get(f"{wanted}^{{}}", refs[wanted]), wanted,
                              tag_object=refs[wanted])

    def _missing(self, spec: GitRepositorySpec, ref_name: str) -> GitSourceError:
        return GitSourceError(
            f"failed to checkout and determine revision: unable to resolve "
            f"{spec.ref.describe()} on '{sanitize_url(spec.url)}': "
            f'couldn\'t find remote ref "{ref_name}"'
        )

    def _remote_refs(self, attempt: _Attempt) -> dict[str, str]:
        spec = attempt.spec

        def list_refs() -> dict[str, str]:
            with self._guard:
                self.ls_remote_calls += 1
            # "--" keeps a URL that starts with "-" from being read as an option.
            out = self._git(attempt, ["ls-remote", "--", spec.url], "unable to list remote refs")
            return parse_ls_remote(out)

        return self.remote_refs.get(
            (spec.url, self._identity(attempt)), spec.interval, list_refs,
            refresh=attempt.refresh_remote,
        ).refs

    def _git(
        self, attempt: _Attempt, args: list[str], action: str, cwd: Path | None = None
    ) -> str:
        """Run git with the attempt's credentials; failures become GitSourceErrors."""
        spec = attempt.spec
        try:
            with git_auth_env(spec.scheme, attempt.credentials, self.workdir / "tmp",
                              attempt.proxy) as env:
                return run_git(args, timeout=spec.timeout, env=env, cwd=cwd, home=self.home,
                               allow_file=self.allow_local_urls)
        except CredentialsError as exc:
            raise GitAuthenticationError(str(exc)) from None
        except GitTimedOut:
            raise GitSourceError(
                f"failed to checkout and determine revision: {action} of "
                f"'{sanitize_url(spec.url)}' for {spec.ref.describe()}: timed out after "
                f"{format_seconds(spec.timeout)} (spec.timeout)"
            ) from None
        except GitCommandFailed as exc:
            raise _git_failure(attempt, action, exc) from None

    def _checkout(self, attempt: _Attempt, remote: RemoteRevision) -> _Fetched:
        """The commit checked out in the object's cache: fetched over the network unless the
        cache already holds it with the same checkout options (a content-config-only change)."""
        spec = attempt.spec
        directory = self.workdir / "gitrepository" / attempt.namespace / attempt.name
        wanted_state = {
            "commit": remote.commit, "sparse": list(spec.content.sparse_checkout),
            "submodules": spec.content.recurse_submodules, "tag": remote.tag_object,
        }
        try:
            private_dir(directory, self.workdir)
            _init_cache(directory, spec, self.home, self.allow_local_urls)
            state_file = directory / ".git" / _CHECKOUT_STATE
            state = json.loads(state_file.read_text()) if state_file.exists() else None

            def local(*args: str) -> str:
                return self._git(attempt, list(args), "unable to check out", directory)

            if state == wanted_state or (
                remote.pinned and state is not None and str(state["commit"]).startswith(
                    remote.commit) and state["sparse"] == wanted_state["sparse"]
                and state["submodules"] == wanted_state["submodules"]
            ):
                commit = str(state["commit"])
                local("reset", "--hard", "--quiet", commit)
            else:
                with self._guard:
                    self.fetch_calls += 1
                if remote.pinned:
                    commit = self._fetch_commit(attempt, directory, remote)
                else:
                    # A tag is kept as a local ref: its object is what Tag verification reads.
                    refspec = (f"+{remote.fetch_ref}:{remote.fetch_ref}" if remote.tag_name
                               else remote.fetch_ref)
                    self._git(attempt, ["fetch", "--depth=1", "--no-tags", "--force", "--",
                                        spec.url, refspec], "unable to fetch", directory)
                    commit = local("rev-parse", "FETCH_HEAD^{commit}").strip()
                self._apply_sparse(attempt, directory)
                local("checkout", "--force", "--detach", "--quiet", commit)
                if spec.content.recurse_submodules:
                    self._check_submodules(attempt, directory, commit)
                    self._git(attempt, ["submodule", "update", "--init", "--recursive",
                                        "--depth=1", "--force"],
                              "unable to update submodules", directory)
                state_file.write_text(json.dumps({**wanted_state, "commit": commit}))
            local("clean", "-ffdxq")
            for sparse_dir in spec.content.sparse_checkout:
                if not (directory / sparse_dir).is_dir():
                    raise GitSourceError(
                        f"failed to checkout and determine revision: sparse checkout dir "
                        f"'{sparse_dir}' does not exist in repository "
                        f"'{sanitize_url(spec.url)}' at commit '{commit}'"
                    )
            summary = local("log", "-1", "--format=%s", commit).strip()
            tag = (read_tag(directory, remote.tag_name, remote.fetch_ref, timeout=spec.timeout)
                   if remote.tag_name and spec.content.verification_mode else None)
        except SignatureError as exc:
            raise GitVerificationError(str(exc), exc.reason) from None
        except (OSError, ValueError, KeyError) as exc:
            raise GitSourceError(
                f"failed to checkout and determine revision: unable to prepare the local copy of "
                f"'{sanitize_url(spec.url)}': {scrub_userinfo(str(exc))}"
            ) from None
        return _Fetched(directory, commit, summary, tag)

    def _check_submodules(self, attempt: _Attempt, directory: Path, commit: str) -> None:
        """Refuse submodules git must not fetch: only the network transports are allowed (git
        refuses `file` and local paths for submodules anyway; this says so by name)."""
        spec = attempt.spec
        try:
            listing = run_git(["config", "--blob", f"{commit}:.gitmodules", "-z",
                               "--get-regexp", r"^submodule\..*\.url$"],
                              timeout=spec.timeout, cwd=directory, home=self.home)
        except GitCommandFailed:
            return  # no .gitmodules, or no submodule URL in it
        except GitTimedOut as exc:
            raise GitSourceError(f"failed to checkout and determine revision: {exc}") from None
        parent_local = url_transport(spec.url) == "file"
        for record in filter(None, listing.split("\0")):
            key, _, url = record.partition("\n")
            name = key.removeprefix("submodule.").removesuffix(".url")
            relative = url.startswith(("./", "../"))
            transport = url_transport(url)
            if url.startswith("-") or (relative and parent_local) or (
                    not relative and transport not in NETWORK_PROTOCOLS):
                raise GitSourceError(
                    f"failed to checkout and determine revision: submodule '{name}' of "
                    f"'{sanitize_url(spec.url)}' has URL '{sanitize_url(url)}', which is not "
                    f"allowed: submodules may use only {', '.join(NETWORK_PROTOCOLS)} URLs "
                    "(or scp-like user@host:path), never file:// or a local path"
                )

    def _apply_sparse(self, attempt: _Attempt, directory: Path) -> None:
        dirs = list(attempt.spec.content.sparse_checkout)
        if dirs:
            self._git(attempt, ["sparse-checkout", "set", "--cone", "--", *dirs],
                      "unable to configure sparse checkout", directory)
        elif (directory / ".git" / "info" / "sparse-checkout").exists():
            self._git(attempt, ["sparse-checkout", "disable"],
                      "unable to disable sparse checkout", directory)

    def _fetch_commit(self, attempt: _Attempt, directory: Path, remote: RemoteRevision) -> str:
        spec, wanted = attempt.spec, remote.commit
        if len(wanted) in (40, 64) and not remote.fetch_ref:
            try:
                # Servers speaking protocol v2 hand out any reachable commit by SHA: one shallow
                # round trip instead of the whole history.
                self._git(attempt, ["fetch", "--depth=1", "--no-tags", "--", spec.url, wanted],
                          "unable to fetch", directory)
                return self._git(attempt, ["rev-parse", "FETCH_HEAD^{commit}"],
                                 "unable to fetch", directory).strip()
            except GitSourceError:
                log.debug("fetch by SHA refused; fetching full history",
                          url=sanitize_url(spec.url))
        tracking = f"refs/remotes/source/{remote.label}"
        refspecs = (
            [f"+{remote.fetch_ref}:{tracking}"]
            if remote.fetch_ref
            else ["+refs/heads/*:refs/remotes/source/*", "+refs/tags/*:refs/tags/*"]
        )
        # A shallow cache from earlier fetches must be deepened, or older commits stay invisible.
        unshallow = ["--unshallow"] if (directory / ".git" / "shallow").exists() else []
        self._git(attempt, ["fetch", *unshallow, "--no-tags", "--force", "--", spec.url,
                            *refspecs], "unable to fetch", directory)
        where = f"branch '{remote.label}' of " if remote.label else ""
        not_found = GitSourceError(
            f"failed to checkout and determine revision: commit '{wanted}' not found in "
            f"{where}'{sanitize_url(spec.url)}'"
        )
        try:
            commit = self._git(attempt, ["rev-parse", "--verify", "--quiet",
                                         f"{wanted}^{{commit}}"], "", directory).strip()
        except GitSourceError:
            raise not_found from None
        if remote.fetch_ref:
            # Flux: the commit "must exist" in the branch it is combined with.
            try:
                self._git(attempt, ["merge-base", "--is-ancestor", commit, tracking], "",
                          directory)
            except GitSourceError:
                raise not_found from None
        return commit

    def _verify(self, attempt: _Attempt, fetched: _Fetched) -> Condition | None:
        if attempt.verify_keys is None:
            return None
        spec = attempt.spec
        try:
            message = verify_checkout(
                fetched.directory, fetched.commit, fetched.tag, spec.content.verification_mode,
                attempt.verify_keys, source=f"{attempt.namespace}/{spec.verify_secret_ref}",
                timeout=spec.timeout,
            )
        except SignatureError as exc:
            raise GitVerificationError(str(exc), exc.reason) from None
        except OSError as exc:
            raise GitVerificationError(f"unable to run gpg: {exc.strerror}") from None
        attempt.bound.info("signature verified", commit=fetched.commit,
                           mode=spec.content.verification_mode,
                           tag=fetched.tag.describe() if fetched.tag else None)
        return Condition(SOURCE_VERIFIED, TRUE, SUCCEEDED, message)

    def _copy_includes(self, attempt: _Attempt, checkout: Path) -> None:
        """Unpack each included artifact at its toPath, bounded and never through a link: a
        toPath leading through a symbolic link of this repository fails the include."""
        for included in attempt.includes:
            inc, artifact = included.include, included.artifact
            failed = (f"failed to copy include '{inc.repository}' (revision "
                      f"'{artifact.revision}') to '{inc.to_path}'")
            try:
                archive = self.store.open(artifact.path)
                _clear_file_at(checkout, inc.to_path)
                stats = unpack_artifact(archive, checkout, into=inc.to_path,
                                        only=inc.from_path)
            except (UnsafePathError, UnpackError) as exc:
                raise GitIncludeError(f"{failed}: {exc}", STORAGE_OPERATION_FAILED) from None
            except (ArtifactError, OSError, tarfile.TarError) as exc:
                detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                raise GitIncludeError(f"{failed}: {detail}") from None
            if not stats.matched:
                raise GitIncludeError(
                    f"include '{inc.repository}': fromPath '{inc.from_path}' does not "
                    f"exist in artifact revision '{artifact.revision}'", "NotFound",
                )


def _verifier(attempt: _Attempt, remote: RemoteRevision) -> str:
    """What a verified build was verified with: a digest of the verification Secret's keys and
    the tag object checked ("" without verification). A build is shared only with objects that
    would verify it with the same keys, so one object's keys never vouch for another's."""
    if attempt.verify_keys is None:
        return ""
    h = hashlib.sha256()
    for name, key in sorted(attempt.verify_keys.items()):
        h.update(name.encode() + b"\0" + hashlib.sha256(key).digest())
    h.update(b"\0tag:" + remote.tag_object.encode())
    return h.hexdigest()


def _init_cache(directory: Path, spec: GitRepositorySpec, home: Path, allow_file: bool) -> None:
    if not (directory / ".git").is_dir():
        directory.mkdir(parents=True, exist_ok=True)
        run_git(["init", "--quiet"], timeout=spec.timeout, cwd=directory, home=home,
                allow_file=allow_file)
    # Submodules with relative URLs resolve against origin; the URL holds no credentials.
    run_git(["config", "remote.origin.url", spec.url], timeout=spec.timeout, cwd=directory,
            home=home, allow_file=allow_file)


def _clear_file_at(root: Path, rel: str) -> None:
    """Remove a regular file where directory `rel` (under `root`) is to be; a link on the way
    to it, or at it, is refused (UnsafePathError), never followed."""
    parts = relative_parts(rel, "toPath")
    if not parts:
        return
    root_fd = open_root(root, create=False)
    try:
        parent_fd = open_subdir(root_fd, parts[:-1], create=True)
    finally:
        os.close(root_fd)
    try:
        st = os.stat(parts[-1], dir_fd=parent_fd, follow_symlinks=False)
        if stat.S_ISREG(st.st_mode):
            os.unlink(parts[-1], dir_fd=parent_fd)
    except FileNotFoundError:
        pass
    finally:
        os.close(parent_fd)


def _included_status(includes: list[_Included]) -> list[dict[str, Any]] | None:
    if not includes:
        return None
    return [{"revision": i.artifact.revision, "digest": i.artifact.digest,
             "path": i.artifact.path, "url": i.artifact.url} for i in includes]


def _carried(previous: Mapping[str, Any], type_: str) -> Condition:
    found = find_condition(previous.get("conditions"), type_) or {}
    return Condition(type_, str(found.get("status") or TRUE), str(found.get("reason") or SUCCEEDED),
                     str(found.get("message") or "verified signature of the stored revision"))


def _git_failure(attempt: _Attempt, action: str, exc: GitCommandFailed) -> GitSourceError:
    spec = attempt.spec
    detail = attempt.redact(_stderr_of(exc))
    message = (
        f"failed to checkout and determine revision: {action} of '{sanitize_url(spec.url)}' "
        f"for {spec.ref.describe()}: {detail}"
    )
    if attempt.proxy is not None and re.search(r"\b407\b", detail):
        what = ("refused its 'username' and 'password'" if attempt.proxy.username
                else "requires a 'username' and 'password' in it")
        message += f" (the proxy of spec.proxySecretRef, secret '{attempt.proxy.source}', {what})"
    if _AUTH_HINTS.search(detail):
        return GitAuthenticationError(message)
    return GitSourceError(message)


def _stderr_of(exc: GitCommandFailed) -> str:
    lines = [
        line.strip()
        for line in exc.stderr.splitlines()
        if line.strip().strip("@") and not _GIT_BOILERPLATE.match(line.strip())
    ]
    # ssh prints banners before the verdict; the lines that say what failed come first.
    telling = [line for line in lines if _TELLING.search(line)]
    chosen = "; ".join((telling or lines)[:3]) or f"git exited with status {exc.status}"
    return scrub_userinfo(chosen)
