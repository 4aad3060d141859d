"""Simulated ecosystem controllers: what kpack and Knative would do in a real cluster.

They fill in the status outputs real controllers would, on the virtual clock, so supply chains
that read `status.latestImage` or wait for a `Ready` condition run end to end without them.

kpack (`ImageBuilder`). A `kpack.io/v1alpha2` `Image` gets one `Build` per new source (blob URL,
Git revision or source image) or other spec change, as kpack creates them: `<image>-build-<N>`,
labels `image.kpack.io/image`, `image.kpack.io/buildNumber` and `image.kpack.io/imageGeneration`,
annotation `image.kpack.io/reason` (CONFIG for the first build and spec changes, COMMIT for a new
source), an owner reference to the Image. A Build takes `Timing.image_build` virtual seconds
(`Succeeded` Unknown meanwhile), then:

- fetches its blob source (`simulator.sourcefetch`, bounded) and runs a detect phase on
  `spec.source.subPath` (or the root): some buildpack must recognise the app by one of
  `DETECT_FILES` (requirements.txt, setup.py, pyproject.toml, Pipfile, any *.py, package.json,
  go.mod, pom.xml, build.gradle(.kts), Gemfile, composer.json, *.csproj/*.fsproj/*.vbproj,
  Procfile or project.toml) at that directory's top level. None, or a source that cannot be
  fetched, fails the Build: `Succeeded` False, reason `BuildFailed`, the message saying why.
  Git and registry-image sources are not fetched (nothing to detect on: they build, annotated
  `simulator.reconciler.dev/source-not-read` with why, so the scanner reports no vulnerability
  data for their image rather than a clean scan);
- reads `.reconciler/scan-report.json` when the source has one: a Trivy JSON report the scenario
  provides as the simulated registry's vulnerability data for the image. It is validated
  (`Limits.scan_report_bytes`, Trivy's schema; a bad one fails the Build, it never passes as
  clean) and recorded, reduced, as annotation `simulator.reconciler.dev/scan-report` for the
  scanner (`simulator.scanning`);
- succeeds with `status.latestImage` `<spec.tag>@sha256:<sha256 of the tag and the source's
  identity>` (the blob URL, which is content addressed; the Git URL and revision; the image).

The Image mirrors its latest Build: `buildCounter`, `latestBuildRef`, `latestBuildReason`,
`latestBuildImageGeneration`; `Ready` Unknown while it runs, True with `latestImage` when it
succeeds, False (reason `BuildFailed`, the Build's message) when it fails, keeping the last good
`latestImage`, so what was deployed keeps running. Builds beyond `successBuildHistoryLimit` /
`failedBuildHistoryLimit` (10 each by default) are deleted, oldest first, never the latest.

`reconciler serve` calls `configure_for_serving`: there the API's clients are not this machine's
user, so sources are not fetched (builds skip detection and scan data, and are annotated
`simulator.reconciler.dev/source-not-read`) unless `RECONCILER_SIMULATOR_FETCH_SOURCES=true`.

Knative (`KnativeServing`). A `serving.knative.dev/v1` `Service` gets a new `Revision` for each
distinct `spec.template` (`<name>-00001`, `-00002`, ...; labels `serving.knative.dev/service`,
`.../configuration`, `.../configurationGeneration`; owned by the Service). A Revision becomes
Ready `Timing.knative_rollout` virtual seconds after it is created. The Service reports
`latestCreatedRevisionName`, `latestReadyRevisionName`, 100% of its traffic to the latest ready
revision (the previous one keeps serving while a new one rolls out), `url` and `address`, and
`Ready` once the latest created revision is ready. The newest `_REVISIONS_KEPT` revisions are
kept.
"""

from __future__ import annotations

import collections
import hashlib
import json
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Final, NamedTuple

import structlog

from reconciler.backends.base import Backend, write_status
from reconciler.model.conditions import FALSE, TRUE, UNKNOWN, Condition, merge_conditions
from reconciler.model.kinds import KindInfo
from reconciler.model.limits import DEFAULT_LIMITS, Limits
from reconciler.model.objects import Obj, meta, spec_of, status_of
from reconciler.runtime.clock import Clock, rfc3339
from simulator.cluster import ObjectView
from simulator.kube_common import (
    annotations_of,
    condition_in,
    conditions_hold,
    env_flag,
    field_of,
    generation,
    namespace_name,
    parse_time,
    succeeded,
)
from simulator.scanning import (
    SCAN_REPORT_ANNOTATION,
    SCAN_REPORT_PATH,
    SCANNING_KINDS,
    SOURCE_NOT_READ_ANNOTATION,
    ReportError,
    compact_report,
    parse_trivy_report,
)
from simulator.sourcefetch import SourceFetchError, archive_with_digest, unpack_source

log = structlog.get_logger(__name__)

ECOSYSTEM_KINDS: tuple[KindInfo, ...] = (
    KindInfo("kpack.io", ("v1alpha2", "v1alpha1"), "Image", "images", True),
    KindInfo("kpack.io", ("v1alpha2", "v1alpha1"), "Build", "builds", True),
    KindInfo("kpack.io", ("v1alpha2",), "ClusterBuilder", "clusterbuilders", False),
    KindInfo("serving.knative.dev", ("v1",), "Service", "services", True),
    KindInfo("serving.knative.dev", ("v1",), "Revision", "revisions", True),
    KindInfo("tekton.dev", ("v1", "v1beta1"), "PipelineRun", "pipelineruns", True),
    KindInfo("tekton.dev", ("v1", "v1beta1"), "TaskRun", "taskruns", True),
    KindInfo("tekton.dev", ("v1", "v1beta1"), "Pipeline", "pipelines", True),
    KindInfo("tekton.dev", ("v1", "v1beta1"), "Task", "tasks", True),
    *SCANNING_KINDS,
)

KPACK_API: Final = "kpack.io/v1alpha2"
KNATIVE_API: Final = "serving.knative.dev/v1"
IMAGE_LABEL: Final = "image.kpack.io/image"
BUILD_NUMBER_LABEL: Final = "image.kpack.io/buildNumber"
IMAGE_GENERATION_LABEL: Final = "image.kpack.io/imageGeneration"
REASON_ANNOTATION: Final = "image.kpack.io/reason"
BUILD_SPEC_ANNOTATION: Final = "simulator.reconciler.dev/image-spec"
"""On a Build: the digest of the Image spec it builds, so a changed spec gets a new Build."""
TEMPLATE_ANNOTATION: Final = "simulator.reconciler.dev/template"
"""On a Revision: the digest of the Service template it was created for."""
FETCH_ENV: Final = "RECONCILER_SIMULATOR_FETCH_SOURCES"
NOT_FETCHED: Final = f"sources are not fetched here unless {FETCH_ENV}=true"
"""The `source-not-read` annotation of a blob-source Build when fetching is off (`serve`)."""
KPACK_MANAGER: Final = "kpack-controller"
KNATIVE_MANAGER: Final = "knative-serving-controller"
SERVICE_LABEL: Final = "serving.knative.dev/service"
CONFIGURATION_LABEL: Final = "serving.knative.dev/configuration"
CONFIGURATION_GENERATION_LABEL: Final = "serving.knative.dev/configurationGeneration"
_BUILD_HISTORY = 10  # kpack's default successBuildHistoryLimit and failedBuildHistoryLimit
_REVISIONS_KEPT = 10

DETECT_FILES: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("paketo-buildpacks/python", ("requirements.txt", "setup.py", "pyproject.toml", "Pipfile",
                                  "*.py")),
    ("paketo-buildpacks/nodejs", ("package.json",)),
    ("paketo-buildpacks/go", ("go.mod",)),
    ("paketo-buildpacks/java", ("pom.xml", "build.gradle", "build.gradle.kts")),
    ("paketo-buildpacks/ruby", ("Gemfile",)),
    ("paketo-buildpacks/php", ("composer.json",)),
    ("paketo-buildpacks/dotnet-core", ("*.csproj", "*.fsproj", "*.vbproj")),
    ("paketo-buildpacks/procfile", ("Procfile",)),
    ("project.toml", ("project.toml",)),
)
"""Which (simulated) buildpack recognises an app by which top-level file (a glob)."""


@dataclass
class Timing:
    """Virtual seconds each simulated controller takes, so waiting is exercised."""

    image_build: float = 30.0
    knative_rollout: float = 5.0
    image_scan: float = 10.0


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":"))
                          .encode()).hexdigest()


# --- kpack ----------------------------------------------------------------------------------


def source_identity(source: Mapping[str, Any]) -> str:
    """What a build's image digest derives from: the blob URL (content addressed), the Git URL
    and revision, or the source image; "" for a source that names none of them."""
    blob = source.get("blob") or {}
    git = source.get("git") or {}
    registry = source.get("registry") or {}
    if isinstance(blob, Mapping) and blob.get("url"):
        return str(blob["url"])
    if isinstance(git, Mapping) and git.get("url"):
        return f"{git['url']}@{git.get('revision') or ''}"
    if isinstance(registry, Mapping) and registry.get("image"):
        return str(registry["image"])
    return ""


def detect(root: Path) -> str | None:
    """The first buildpack of `DETECT_FILES` that recognises the app at `root`, or None."""
    try:
        names = [p.name for p in root.iterdir() if p.is_file() and not p.is_symlink()]
    except OSError:
        return None
    for buildpack, patterns in DETECT_FILES:
        for pattern in patterns:
            if any(PurePosixPath(name).match(pattern) for name in names):
                return buildpack
    return None


def _detect_list() -> str:
    return ", ".join(p for _, patterns in DETECT_FILES for p in patterns)


@dataclass(frozen=True)
class BuildOutcome:
    ok: bool
    message: str
    image: str = ""
    scan_report: str | None = None
    source_not_read: str | None = None
    """Why the build did not read its source (so its image has no scan data), if it did not."""


_DETECTIONS_KEPT = 256




class ImageBuilder:
    """kpack `Image` and `Build`: one Build per source or spec change, on the virtual clock."""

    name = "simulated-kpack"

    def __init__(self, backend: Backend, clock: Clock, timing: Timing,
                 limits: Limits = DEFAULT_LIMITS, fetch_sources: bool | None = None) -> None:
        self.backend, self.clock, self.timing, self.limits = backend, clock, timing, limits
        self.fetch_sources = env_flag(FETCH_ENV, True) if fetch_sources is None else fetch_sources
        # (archive digest, subPath) -> (ok, message, scan report) of a detection already run
        self._detected: collections.OrderedDict[tuple[str, str],
                                                tuple[bool, str, str | None]] = (
            collections.OrderedDict())
        self._detected_lock = threading.Lock()

    def configure_for_serving(self) -> None:
        """`reconciler serve`: fetch no source unless `RECONCILER_SIMULATOR_FETCH_SOURCES`
        asks (the API's clients are not this machine's user)."""
        self.fetch_sources = env_flag(FETCH_ENV, False)

    def watches(self) -> Sequence[tuple[str, str]]:
        return [(KPACK_API, "Image"), (KPACK_API, "Build")]

    def reconcile(self, obj: Obj) -> float | None:
        if meta(obj).get("deletionTimestamp"):
            return None
        if obj.get("kind") == "Build":
            return self._reconcile_build(obj)
        return self._reconcile_image(obj)

    # The Image.

    def _reconcile_image(self, image: Obj) -> float | None:
        spec = spec_of(image)
        source = spec.get("source") if isinstance(spec.get("source"), Mapping) else {}
        tag = str(spec.get("tag") or "")
        if not tag or not source_identity(source or {}):
            self._write_image(image, Condition(
                "Ready", FALSE, "InvalidSpec", "spec.tag and spec.source (blob.url, git.url or "
                                               "registry.image) are required"))
            return None
        ns, name = namespace_name(image)
        builds = self._builds(ns, name)
        latest = builds[-1] if builds else None
        wanted = _digest(spec)
        created = latest is None or annotations_of(latest).get(BUILD_SPEC_ANNOTATION) != wanted
        if created:
            latest = self._create_build(image, latest, wanted, builds)
            builds.append(latest)
        self._prune(builds, spec, status_of(image).get("latestImage"))
        self._write_image(image, None, latest)
        if created and latest is not None:
            # kpack's build pod starts as soon as the Build exists: take that step now, after
            # the Image says it is building (the order the two controllers write in), rather
            # than in a reconcile of the new Build that would only wake the Image again.
            self._start_build(latest)
        return None

    def _builds(self, namespace: str, image: str) -> list[Mapping[str, Any]]:
        builds = _read_all(self.backend, KPACK_API, "Build", namespace, {IMAGE_LABEL: image})
        return sorted(builds, key=_build_number)

    def _create_build(self, image: Obj, previous: Mapping[str, Any] | None, wanted: str,
                      builds: Sequence[Mapping[str, Any]]) -> Obj:
        ns, name = namespace_name(image)
        spec = spec_of(image)
        counter = int(status_of(image).get("buildCounter") or 0)
        number = max([counter, *(_build_number(b) for b in builds)]) + 1
        reason = "CONFIG"
        if previous is not None and source_identity(
                field_of(previous, "spec").get("source") or {}) != (
                source_identity(spec.get("source") or {})):
            reason = "COMMIT"
        build_spec: dict[str, Any] = {"tags": [str(spec.get("tag"))],
                                      "source": spec.get("source")}
        for key in ("builder", "serviceAccountName"):
            if spec.get(key):
                build_spec[key] = spec[key]
        env = (spec.get("build") or {}).get("env") if isinstance(spec.get("build"), Mapping) \
            else None
        if env:
            build_spec["env"] = env
        build: Obj = {
            "apiVersion": KPACK_API, "kind": "Build",
            "metadata": {
                "name": f"{name}-build-{number}", "namespace": ns,
                "labels": {IMAGE_LABEL: name, BUILD_NUMBER_LABEL: str(number),
                           IMAGE_GENERATION_LABEL: str(generation(image))},
                "annotations": {REASON_ANNOTATION: reason, BUILD_SPEC_ANNOTATION: wanted},
                "ownerReferences": [_owner(image)],
            },
            "spec": build_spec,
        }
        log.info("kpack build created", image=f"{ns}/{name}", build=f"{name}-build-{number}",
                 reason=reason)
        return self.backend.apply(build, KPACK_MANAGER)

    def _prune(self, builds: list[Mapping[str, Any]], spec: Mapping[str, Any],
               running: Any) -> None:
        """Delete the oldest finished Builds beyond the history limits; never the latest, nor
        one that made the running image (the scanner reads its findings there)."""
        if len(builds) <= 1:
            return
        limits = {TRUE: _history(spec.get("successBuildHistoryLimit")),
                  FALSE: _history(spec.get("failedBuildHistoryLimit"))}
        older = builds[:-1]
        if len(older) <= min(limits.values()):
            return  # neither state can have more Builds than its limit: no need to read them
        for state, limit in limits.items():
            done = [b for b in older if succeeded(b) == state]
            for build in done[:max(0, len(done) - limit)]:
                if running and field_of(build, "status").get("latestImage") == running:
                    continue
                ns, name = namespace_name(build)
                self.backend.delete(KPACK_API, "Build", ns, name)
                builds.remove(build)

    def _write_image(self, image: Obj, invalid: Condition | None,
                     latest: Mapping[str, Any] | None = None) -> None:
        status = dict(status_of(image))
        status["observedGeneration"] = generation(image)
        ready = invalid
        if latest is not None:
            # Read once: `latest` may be a view, where every field read costs more.
            m = field_of(latest, "metadata")
            build_name = str(m.get("name") or "")
            labels = m.get("labels") or {}
            number = str(labels.get(BUILD_NUMBER_LABEL) or "0")
            annotations = m.get("annotations")
            reason = annotations.get(REASON_ANNOTATION) if isinstance(
                annotations, (dict, Mapping)) else None
            status["buildCounter"] = int(number) if number.isdigit() else 0
            status["latestBuildRef"] = build_name
            status["latestBuildReason"] = str(reason or "CONFIG")
            status["latestBuildImageGeneration"] = int(
                str(labels.get(IMAGE_GENERATION_LABEL) or generation(image)))
            build_status = field_of(latest, "status")
            cond = condition_in(build_status, "Succeeded")
            state = None if cond.get("status") is None else str(cond.get("status"))
            if state == TRUE:
                status["latestImage"] = build_status.get("latestImage")
                ready = Condition("Ready", TRUE, "", "")
            elif state == FALSE:
                ready = Condition("Ready", FALSE, "BuildFailed",
                                  f"Build {build_name} failed: {cond.get('message') or ''}")
            else:
                ready = Condition("Ready", UNKNOWN, "Building",
                                  f"Build {build_name} is running")
        assert ready is not None
        builder = Condition("BuilderReady", TRUE, "", "")
        status["conditions"] = merge_conditions(status.get("conditions"), [ready, builder],
                                                rfc3339(self.clock.now()))
        if status != status_of(image):
            write_status(self.backend, {**image, "status": status})

    # A Build. Its Image follows it through the runner: the Image's reconcile lists its Builds,
    # so a change to one (running, finished) offers the Image again.

    def _reconcile_build(self, build: Obj) -> float | None:
        if succeeded(build) in (TRUE, FALSE):
            return None
        remaining = self._start_build(build)
        if remaining > 0:
            return remaining
        status = dict(status_of(build))
        status["podName"] = _pod_name(build)
        now = self.clock.now()
        outcome = self.run_build(build)
        notes = {SCAN_REPORT_ANNOTATION: outcome.scan_report,
                 SOURCE_NOT_READ_ANNOTATION: outcome.source_not_read}
        if any(v is not None for v in notes.values()):
            ns, name = namespace_name(build)
            build = self.backend.apply({
                "apiVersion": KPACK_API, "kind": "Build",
                "metadata": {"name": name, "namespace": ns,
                             "annotations": {k: v for k, v in notes.items() if v is not None}}},
                KPACK_MANAGER + "-scan-report")
            status = {**status_of(build), **status}
        status["stepsCompleted"] = (["prepare", "detect", "analyze", "restore", "build",
                                     "export"] if outcome.ok else ["prepare"])
        if outcome.ok:
            status["latestImage"] = outcome.image
            cond = Condition("Succeeded", TRUE, "", "")
        else:
            cond = Condition("Succeeded", FALSE, "BuildFailed", outcome.message)
        status["conditions"] = merge_conditions(status.get("conditions"), [cond], rfc3339(now))
        write_status(self.backend, {**build, "status": status})
        log.info("kpack build finished", build="/".join(namespace_name(build)),
                 succeeded=outcome.ok, message=outcome.message)
        return None

    def _start_build(self, build: Mapping[str, Any]) -> float:
        """A running Build's status (its pod, `Succeeded` Unknown), written if it is not there
        yet; the seconds until it is done (<= 0: due now)."""
        now = self.clock.now()
        # A build starts when it is created (kpack's pod starts at once here).
        started = parse_time(field_of(build, "metadata").get("creationTimestamp"))
        started = now if started is None else started
        remaining = started + self.timing.image_build - now
        if remaining > 0:
            status, before = _writable_status(build)
            status["podName"] = _pod_name(build)
            status["conditions"] = merge_conditions(
                status.get("conditions"), [Condition("Succeeded", UNKNOWN, "", "")],
                rfc3339(now))
            if status != before:
                write_status(self.backend, _with_status(build, status))
        return remaining

    def run_build(self, build: Obj) -> BuildOutcome:
        """What the build's pod would do: fetch, detect, export the image."""
        spec = spec_of(build)
        source = spec.get("source") if isinstance(spec.get("source"), Mapping) else {}
        identity = source_identity(source or {})
        tags = spec.get("tags") or []
        tag = str(tags[0]) if isinstance(tags, list) and tags else ""
        if not tag or not identity:
            return BuildOutcome(False, "spec.tags and spec.source are required")
        digest = hashlib.sha256((tag + "\n" + identity).encode()).hexdigest()
        image = f"{tag}@sha256:{digest}"
        blob = (source or {}).get("blob") or {}
        if not (isinstance(blob, Mapping) and blob.get("url")):
            kind = "a Git source" if (source or {}).get("git") else "a registry-image source"
            return BuildOutcome(True, "", image,
                                source_not_read=f"{kind} is not fetched by the simulator")
        if not self.fetch_sources:
            return BuildOutcome(True, "", image, source_not_read=NOT_FETCHED)
        url = str(blob["url"])
        sub_path = str((source or {}).get("subPath") or "")
        where = PurePosixPath(sub_path)
        if sub_path and (where.is_absolute() or ".." in where.parts):
            return BuildOutcome(False, f"spec.source.subPath {sub_path!r} must be a relative "
                                       "path inside the source")
        try:
            archive, digest = archive_with_digest(url, self.limits)
            key = (digest, sub_path)
        except (SourceFetchError, OSError) as exc:
            return BuildOutcome(False, f"cannot fetch the source: {exc}")
        with self._detected_lock:
            done = self._detected.get(key)
            if done is not None:
                self._detected.move_to_end(key)
        if done is None:
            done, keep = self._detect(archive, url, sub_path)
            if keep:
                with self._detected_lock:
                    self._detected[key] = done
                    while len(self._detected) > _DETECTIONS_KEPT:
                        self._detected.popitem(last=False)
        ok, message, report = done
        return BuildOutcome(ok, message, image if ok else "", report)

    def _detect(self, archive: Path, url: str,
                sub_path: str) -> tuple[tuple[bool, str, str | None], bool]:
        """Unpack the archive (the one whose digest keys the answer, not the URL again: what
        it names may have changed since) and run detection and the scan report's reading:
        ((ok, message, report), whether to keep the answer). The same archive and subPath
        always give the same answer, so it is kept (`_detected`) and a commit shared by many
        workloads is unpacked once; a failure to unpack may be the machine's (disk, temporary
        folder) and is not kept."""
        where = PurePosixPath(sub_path)
        with tempfile.TemporaryDirectory(prefix="reconciler-kpack-") as tmp:
            root = Path(tmp) / "source"
            try:
                unpack_source(archive, url, root, self.limits)
            except (SourceFetchError, OSError) as exc:
                return (False, f"cannot fetch the source: {exc}", None), False
            app = root.joinpath(*where.parts) if sub_path else root
            if not app.is_dir() or app.is_symlink():
                return (False, f"spec.source.subPath {sub_path!r} is not a directory of the "
                               "source", None), True
            buildpack = detect(app)
            if buildpack is None:
                return (False, (
                    "ERROR: No buildpack groups passed detection: no buildpack recognises the "
                    f"app in {sub_path or 'the source root'} (looked for {_detect_list()})"),
                    None), True
            try:
                report = self._scan_report(root)
            except ReportError as exc:
                return (False, str(exc), None), True
        return (True, f"built by {buildpack}", report), True

    def _scan_report(self, root: Path) -> str | None:
        path = root / SCAN_REPORT_PATH
        if path.is_symlink() or not path.exists():
            return None
        if not path.is_file():
            raise ReportError(SCAN_REPORT_PATH, "not a regular file")
        size = path.stat().st_size
        if size > self.limits.scan_report_bytes:
            raise ReportError(SCAN_REPORT_PATH, f"{size} bytes, more than the "
                                                f"{self.limits.scan_report_bytes} bytes allowed "
                                                "(limit scan_report_bytes)")
        text = path.read_bytes()
        return compact_report(parse_trivy_report(text, SCAN_REPORT_PATH, self.limits))


def _pod_name(build: Mapping[str, Any]) -> str:
    return f"{namespace_name(build)[1]}-build-pod"


def _build_number(build: Mapping[str, Any]) -> int:
    value = str((field_of(build, "metadata").get("labels") or {}).get(BUILD_NUMBER_LABEL)
                or "0")
    return int(value) if value.isdigit() else 0


def _history(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 \
        else _BUILD_HISTORY


# --- Knative --------------------------------------------------------------------------------


class KnativeServing:
    """Knative `Service`: a Revision per template, traffic to the latest ready one."""

    name = "simulated-knative"

    def __init__(self, backend: Backend, clock: Clock, timing: Timing) -> None:
        self.backend, self.clock, self.timing = backend, clock, timing

    def watches(self) -> Sequence[tuple[str, str]]:
        return [(KNATIVE_API, "Service")]

    def reconcile(self, obj: Obj) -> float | None:
        if meta(obj).get("deletionTimestamp"):
            return None
        ns, name = namespace_name(obj)
        template = spec_of(obj).get("template") or {}
        wanted = _digest(template)
        revisions = sorted((_Revision.read(r, self.timing) for r in _read_all(
            self.backend, KNATIVE_API, "Revision", ns, {SERVICE_LABEL: name})),
            key=_number)
        latest = revisions[-1] if revisions else None
        if latest is None or latest.template != wanted:
            latest = _Revision.read(self._create_revision(obj, template, wanted, revisions),
                                    self.timing)
            revisions.append(latest)
        now = self.clock.now()
        for revision in revisions:
            self._mark_ready(revision, now)
        ready_revisions = [r for r in revisions if r.ready_at <= now]
        self._prune(revisions, ready_revisions[-1] if ready_revisions else None)
        remaining = latest.ready_at - now
        self._write_service(obj, latest, ready_revisions[-1] if ready_revisions else None,
                            remaining)
        return remaining if remaining > 0 else None

    def _create_revision(self, service: Obj, template: Mapping[str, Any], wanted: str,
                         revisions: Sequence[_Revision]) -> Obj:
        ns, name = namespace_name(service)
        number = max([0, *(r.number for r in revisions)]) + 1
        template_meta = template.get("metadata") or {}
        labels = dict(template_meta.get("labels") or {}) if isinstance(template_meta, Mapping) \
            else {}
        labels.update({SERVICE_LABEL: name, CONFIGURATION_LABEL: name,
                       CONFIGURATION_GENERATION_LABEL: str(number)})
        revision: Obj = {
            "apiVersion": KNATIVE_API, "kind": "Revision",
            "metadata": {"name": f"{name}-{number:05d}", "namespace": ns, "labels": labels,
                         "annotations": {TEMPLATE_ANNOTATION: wanted},
                         "ownerReferences": [_owner(service)]},
            "spec": template.get("spec") or {},
        }
        return self.backend.apply(revision, KNATIVE_MANAGER)

    def _mark_ready(self, revision: _Revision, now: float) -> None:
        conditions = _READY if revision.ready_at <= now else _DEPLOYING
        obj = revision.obj
        observed = generation(obj)
        containers = (field_of(obj, "spec").get("containers") or [])
        running: list[dict[str, str]] | None = None
        if containers and isinstance(containers[0], (dict, Mapping)) and (
                containers[0].get("image")):
            running = [{"name": str(containers[0].get("name") or ""),
                        "imageDigest": str(containers[0]["image"])}]
        status, before = _writable_status(obj)
        # Every reconcile of a Service looks at every Revision it keeps, and all but the newest
        # are settled: tell "nothing to write" without rendering the conditions again.
        if status.get("observedGeneration") == observed and (
                running is None or status.get("containerStatuses") == running) and (
                conditions_hold(status.get("conditions"), conditions)):
            return
        status["observedGeneration"] = observed
        if running is not None:
            status["containerStatuses"] = running
        status["conditions"] = merge_conditions(status.get("conditions"), conditions,
                                                rfc3339(now))
        if status != before:
            write_status(self.backend, _with_status(obj, status))

    def _prune(self, revisions: list[_Revision], serving: _Revision | None) -> None:
        for revision in revisions[:max(0, len(revisions) - _REVISIONS_KEPT)]:
            if revision is not serving:
                ns, name = namespace_name(revision.obj)
                self.backend.delete(KNATIVE_API, "Revision", ns, name)

    def _write_service(self, service: Obj, latest: _Revision, ready: _Revision | None,
                       remaining: float) -> None:
        ns, name = namespace_name(service)
        status = dict(status_of(service))
        status["observedGeneration"] = generation(service)
        status["latestCreatedRevisionName"] = latest.name
        if ready is not None:
            ready_name = ready.name
            status["latestReadyRevisionName"] = ready_name
            status["url"] = f"http://{name}.{ns}.example.com"
            status["address"] = {"url": f"http://{name}.{ns}.svc.cluster.local"}
            status["traffic"] = [{"revisionName": ready_name, "latestRevision": True,
                                  "percent": 100}]
        if remaining > 0:
            cond = Condition("Ready", UNKNOWN, "RevisionMissing",
                             f"Configuration \"{name}\" is waiting for a Revision to become "
                             "ready.")
        else:
            cond = Condition("Ready", TRUE, "", "")
        conds = [Condition(t, cond.status, cond.reason, cond.message)
                 for t in ("ConfigurationsReady", "RoutesReady")] + [cond]
        status["conditions"] = merge_conditions(status.get("conditions"), conds,
                                                rfc3339(self.clock.now()))
        if status != status_of(service):
            write_status(self.backend, {**service, "status": status})


_READY: Final = tuple(Condition(t, TRUE, "", "")
                     for t in ("ResourcesAvailable", "ContainerHealthy", "Ready"))
_DEPLOYING: Final = tuple(Condition(t, UNKNOWN, "Deploying", "")
                         for t in ("ResourcesAvailable", "ContainerHealthy", "Ready"))
"""A Revision's conditions once it is ready, and while it rolls out."""


class _Revision(NamedTuple):
    """What a Service's reconcile reads of one of its Revisions, read once (through a view,
    every field read costs more than on a dict)."""

    obj: Mapping[str, Any]
    name: str
    number: int
    template: Any  # the digest of the template it was created for
    ready_at: float

    @classmethod
    def read(cls, revision: Mapping[str, Any], timing: Timing) -> _Revision:
        m = field_of(revision, "metadata")
        labels = m.get("labels") or {}
        annotations = m.get("annotations")
        value = str(labels.get(CONFIGURATION_GENERATION_LABEL) or "0")
        created = parse_time(m.get("creationTimestamp"))
        return cls(revision, str(m.get("name") or ""), int(value) if value.isdigit() else 0,
                   annotations.get(TEMPLATE_ANNOTATION)
                   if isinstance(annotations, (dict, Mapping)) else None,
                   (created or 0.0) + timing.knative_rollout)


def _number(revision: _Revision) -> int:
    return revision.number


# --- helpers --------------------------------------------------------------------------------


def _read_all(backend: Backend, api_version: str, kind: str, namespace: str,
              labels: Mapping[str, str]) -> list[Mapping[str, Any]]:
    """The objects a list selects, as read-only views where the backend has them (the
    simulated cluster's `views`): an Image's Builds and a Service's Revisions are read on every
    reconcile of their owner, and only read; a copy of each would cost more than the reading.
    A view follows later writes: what is read from it is read at once."""
    views = getattr(backend, "views", None)
    if callable(views):
        found: list[Mapping[str, Any]] = views(api_version, kind, namespace, labels)
        return found
    return list(backend.list(api_version, kind, namespace, labels))


def _writable_status(obj: Mapping[str, Any]) -> tuple[dict[str, Any], Mapping[str, Any]]:
    """(the status to change and write, the status as read, to tell whether it changed): a
    shallow copy of a dict's (its parts are replaced, never changed in place), plain data from a
    view's (what is written must never hold a view)."""
    status = obj.get("status")
    if isinstance(status, dict):
        return dict(status), status
    if isinstance(status, ObjectView):
        plain = status.copy()
        return dict(plain), plain
    return {}, {}


def _with_status(obj: Mapping[str, Any], status: dict[str, Any]) -> Obj:
    """What `write_status` takes to write `status` on `obj`: the object with it, or, for a view,
    just what names the object (the status subresource reads nothing else)."""
    if isinstance(obj, dict):
        return {**obj, "status": status}
    m = field_of(obj, "metadata")
    return {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"),
            "metadata": {"name": m.get("name"), "namespace": m.get("namespace")},
            "status": status}


def _owner(obj: Obj) -> dict[str, Any]:
    return {"apiVersion": str(obj.get("apiVersion") or ""), "kind": str(obj.get("kind") or ""),
            "name": namespace_name(obj)[1], "uid": str(meta(obj).get("uid") or ""),
            "controller": True, "blockOwnerDeletion": True}
