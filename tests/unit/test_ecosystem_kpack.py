"""The simulated kpack: a Build per new source or spec change, detection on the real fetched
source, failures that keep the last good image, the scan report a source carries."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from reconciler.model.limits import Limits
from reconciler.sources.artifacts import ArtifactStore
from reconciler.sources.server import ArtifactServer
from simulator.ecosystem import ImageBuilder, Timing, detect
from simulator.scanning import SCAN_REPORT_ANNOTATION, parse_trivy_report
from tests.unit.ecosystem_harness import KPACK, NS, Ecosystem, condition, image

APP = {"app.py": "print('hello')\n", "README.md": "a web app\n"}
REPORTS = Path(__file__).parent / "scan_reports"


def test_first_build_takes_the_build_time_and_reports_image_and_build(tmp_path: Path) -> None:
    eco = Ecosystem(tmp_path)
    url = eco.artifact(APP)
    eco.apply(image("web", url))
    eco.step()
    img = eco.get(KPACK, "Image", "web")
    assert condition(img, "Ready")["status"] == "Unknown"
    assert "latestImage" not in img["status"]
    assert eco.names(KPACK, "Build") == ["web-build-1"]

    assert eco.settle() == 30.0
    img = eco.get(KPACK, "Image", "web")
    build = eco.get(KPACK, "Build", "web-build-1")
    tag = "registry.example.com/apps/web"
    digest = hashlib.sha256(f"{tag}\n{url}".encode()).hexdigest()
    assert img["status"]["latestImage"] == f"{tag}@sha256:{digest}"
    assert build["status"]["latestImage"] == img["status"]["latestImage"]
    assert condition(img, "Ready")["status"] == "True"
    assert condition(build, "Succeeded")["status"] == "True"
    assert (img["status"]["buildCounter"], img["status"]["latestBuildRef"],
            img["status"]["latestBuildReason"]) == (1, "web-build-1", "CONFIG")
    labels = build["metadata"]["labels"]
    assert labels["image.kpack.io/image"] == "web"
    assert labels["image.kpack.io/buildNumber"] == "1"
    owner = build["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "Image", "web", img["metadata"]["uid"], True)
    assert build["spec"]["tags"] == [tag]
    assert build["spec"]["source"] == {"blob": {"url": url}}
    assert SCAN_REPORT_ANNOTATION not in (build["metadata"].get("annotations") or {})

    # Nothing changed: no new build, no write.
    revision = eco.cluster.revision
    assert eco.settle() == 0.0
    assert eco.cluster.revision == revision


def test_a_new_source_is_a_new_build_with_reason_commit(tmp_path: Path) -> None:
    eco = Ecosystem(tmp_path)
    eco.apply(image("web", eco.artifact(APP)))
    eco.settle()
    first = eco.get(KPACK, "Image", "web")["status"]["latestImage"]

    eco.apply(image("web", eco.artifact({**APP, "VERSION": "2\n"})))
    eco.settle()
    img = eco.get(KPACK, "Image", "web")
    assert eco.names(KPACK, "Build") == ["web-build-1", "web-build-2"]
    assert img["status"]["latestImage"] != first
    assert (img["status"]["buildCounter"], img["status"]["latestBuildRef"],
            img["status"]["latestBuildReason"]) == (2, "web-build-2", "COMMIT")
    assert eco.get(KPACK, "Build", "web-build-2")["metadata"]["annotations"][
        "image.kpack.io/reason"] == "COMMIT"

    # Another spec change (build env) with the same source builds again, reason CONFIG.
    eco.apply(image("web", eco.get(KPACK, "Build", "web-build-2")["spec"]["source"]["blob"]
                    ["url"], build={"env": [{"name": "BP_DEBUG", "value": "true"}]}))
    eco.settle()
    img = eco.get(KPACK, "Image", "web")
    assert (img["status"]["latestBuildRef"], img["status"]["latestBuildReason"]) == (
        "web-build-3", "CONFIG")
    assert eco.get(KPACK, "Build", "web-build-3")["spec"]["env"] == [
        {"name": "BP_DEBUG", "value": "true"}]


def test_a_source_no_buildpack_detects_fails_and_keeps_the_last_good_image(
        tmp_path: Path) -> None:
    eco = Ecosystem(tmp_path)
    eco.apply(image("web", eco.artifact(APP)))
    eco.settle()
    good = eco.get(KPACK, "Image", "web")["status"]["latestImage"]

    eco.apply(image("web", eco.artifact({"README.md": "only docs\n", "docs/app.py": "x\n"})))
    eco.settle()
    img = eco.get(KPACK, "Image", "web")
    build = eco.get(KPACK, "Build", "web-build-2")
    failed = condition(build, "Succeeded")
    assert (failed["status"], failed["reason"]) == ("False", "BuildFailed")
    assert "No buildpack groups passed detection" in failed["message"]
    assert "requirements.txt" in failed["message"]
    assert "latestImage" not in build["status"]
    ready = condition(img, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "BuildFailed")
    assert "web-build-2" in ready["message"] and "passed detection" in ready["message"]
    assert img["status"]["latestImage"] == good
    assert img["status"]["latestBuildRef"] == "web-build-2"

    # The next good commit recovers.
    eco.apply(image("web", eco.artifact({**APP, "VERSION": "3\n"})))
    eco.settle()
    img = eco.get(KPACK, "Image", "web")
    assert condition(img, "Ready")["status"] == "True"
    assert img["status"]["latestImage"] not in (good, None)
    assert img["status"]["buildCounter"] == 3


def test_an_unfetchable_source_fails_the_build(tmp_path: Path) -> None:
    eco = Ecosystem(tmp_path)
    eco.apply(image("web", "http://127.0.0.1:9/gone.tar.gz"))
    eco.settle()
    build = eco.get(KPACK, "Build", "web-build-1")
    failed = condition(build, "Succeeded")
    assert failed["status"] == "False"
    assert "cannot fetch the source" in failed["message"]
    assert "127.0.0.1:9/gone.tar.gz" in failed["message"]
    assert condition(eco.get(KPACK, "Image", "web"), "Ready")["status"] == "False"
    assert "latestImage" not in eco.get(KPACK, "Image", "web")["status"]


def test_sources_are_not_fetched_when_turned_off(tmp_path: Path) -> None:
    eco = Ecosystem(tmp_path, fetch_sources=False)
    eco.apply(image("web", "http://127.0.0.1:9/gone.tar.gz"))
    eco.settle()
    assert condition(eco.get(KPACK, "Build", "web-build-1"), "Succeeded")["status"] == "True"


def test_sub_path_is_where_detection_looks(tmp_path: Path) -> None:
    eco = Ecosystem(tmp_path)
    url = eco.artifact({"README.md": "monorepo\n", "services/api/go.mod": "module api\n"})
    eco.apply(image("api", url, source={"blob": {"url": url}, "subPath": "services/api"}))
    eco.apply(image("root", url))
    eco.apply(image("escape", url, source={"blob": {"url": url}, "subPath": "../etc"}))
    eco.settle()
    assert condition(eco.get(KPACK, "Image", "api"), "Ready")["status"] == "True"
    assert condition(eco.get(KPACK, "Image", "root"), "Ready")["status"] == "False"
    escape = condition(eco.get(KPACK, "Build", "escape-build-1"), "Succeeded")
    assert escape["status"] == "False" and "subPath" in escape["message"]


def test_git_sources_build_without_a_fetch(tmp_path: Path) -> None:
    eco = Ecosystem(tmp_path)
    source = {"git": {"url": "https://git.example.com/app.git", "revision": "abc123"}}
    eco.apply(image("web", "", source=source))
    eco.settle()
    first = eco.get(KPACK, "Image", "web")["status"]["latestImage"]
    source["git"]["revision"] = "def456"
    eco.apply(image("web", "", source=source))
    eco.settle()
    img = eco.get(KPACK, "Image", "web")
    assert img["status"]["latestImage"] != first
    assert img["status"]["latestBuildReason"] == "COMMIT"


def test_a_spec_without_tag_or_source_is_refused(tmp_path: Path) -> None:
    eco = Ecosystem(tmp_path)
    eco.apply(image("web", "", source={}))
    eco.settle()
    ready = condition(eco.get(KPACK, "Image", "web"), "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert eco.names(KPACK, "Build") == []


def test_the_scan_report_in_the_source_is_recorded_on_the_build(tmp_path: Path) -> None:
    eco = Ecosystem(tmp_path)
    report = (REPORTS / "critical.json").read_text()
    eco.apply(image("web", eco.artifact({**APP, ".reconciler/scan-report.json": report})))
    eco.settle()
    build = eco.get(KPACK, "Build", "web-build-1")
    assert condition(build, "Succeeded")["status"] == "True"
    recorded = build["metadata"]["annotations"][SCAN_REPORT_ANNOTATION]
    assert {(f.vulnerability_id, f.severity) for f in parse_trivy_report(recorded, "x")} == {
        ("CVE-2023-30861", "HIGH"), ("CVE-2019-1010083", "LOW"), ("CVE-2024-6387", "CRITICAL"),
        ("CVE-2023-4911", "MEDIUM")}
    # Reduced to what is read: titles and the like are dropped.
    assert "Title" not in recorded and len(recorded) < len(report)


@pytest.mark.parametrize(("report", "message"), [
    ("{not json", "not a Trivy JSON report"),
    (json.dumps({"SchemaVersion": 1, "Results": []}), "SchemaVersion: expected 2"),
    (json.dumps({"SchemaVersion": 2, "Results": [{"Vulnerabilities": [
        {"VulnerabilityID": "CVE-1", "PkgName": "p", "InstalledVersion": "1",
         "Severity": "SEVERE"}]}]}), "Results[0].Vulnerabilities[0].Severity"),
    (json.dumps({"SchemaVersion": 2, "Results": [{"Vulnerabilities": [{"PkgName": "p"}]}]}),
     "Results[0].Vulnerabilities[0].VulnerabilityID"),
])
def test_an_unreadable_scan_report_fails_the_build(tmp_path: Path, report: str,
                                                   message: str) -> None:
    eco = Ecosystem(tmp_path)
    eco.apply(image("web", eco.artifact({**APP, ".reconciler/scan-report.json": report})))
    eco.settle()
    failed = condition(eco.get(KPACK, "Build", "web-build-1"), "Succeeded")
    assert failed["status"] == "False"
    assert ".reconciler/scan-report.json" in failed["message"]
    assert message in failed["message"]


def test_a_scan_report_over_the_limit_fails_the_build(tmp_path: Path) -> None:
    eco = Ecosystem(tmp_path)
    eco.kpack = ImageBuilder(eco.cluster, eco.clock, Timing(), Limits(scan_report_bytes=1024))
    eco.controllers = (eco.kpack,)
    report = (REPORTS / "critical.json").read_text()
    assert len(report) > 1024
    eco.apply(image("web", eco.artifact({**APP, ".reconciler/scan-report.json": report})))
    eco.settle()
    failed = condition(eco.get(KPACK, "Build", "web-build-1"), "Succeeded")
    assert failed["status"] == "False"
    assert "scan_report_bytes" in failed["message"]


def test_build_history_is_bounded_and_never_loses_the_latest(tmp_path: Path) -> None:
    eco = Ecosystem(tmp_path)
    for i in range(4):
        eco.apply(image("web", eco.artifact({**APP, "VERSION": f"{i}\n"}),
                        successBuildHistoryLimit=2, failedBuildHistoryLimit=1))
        eco.settle()
    eco.apply(image("web", eco.artifact({"README.md": "broken\n"}),
                    successBuildHistoryLimit=2, failedBuildHistoryLimit=1))
    eco.settle()
    eco.apply(image("web", eco.artifact({"README.md": "broken again\n"}),
                    successBuildHistoryLimit=2, failedBuildHistoryLimit=1))
    eco.settle()
    # Two successful kept (3 and 4), one failed beside the latest (5), the latest (6).
    assert eco.names(KPACK, "Build") == ["web-build-3", "web-build-4", "web-build-5",
                                         "web-build-6"]
    img = eco.get(KPACK, "Image", "web")
    assert img["status"]["latestImage"] == eco.get(KPACK, "Build", "web-build-4")[
        "status"]["latestImage"]


def test_builds_of_images_in_other_namespaces_do_not_mix(tmp_path: Path) -> None:
    eco = Ecosystem(tmp_path)
    eco.cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    url = eco.artifact(APP)
    eco.apply(image("web", url))
    other = image("web", url)
    other["metadata"]["namespace"] = "other"
    eco.cluster.apply(other)
    eco.settle()
    assert eco.cluster.get(KPACK, "Build", "other", "web-build-1") is not None
    assert eco.cluster.get(KPACK, "Build", NS, "web-build-1") is not None
    assert eco.cluster.get(KPACK, "Build", NS, "web-build-2") is None


@pytest.mark.parametrize(("files", "buildpack"), [
    ({"requirements.txt": ""}, "paketo-buildpacks/python"),
    ({"main.py": ""}, "paketo-buildpacks/python"),
    ({"package.json": "{}"}, "paketo-buildpacks/nodejs"),
    ({"go.mod": ""}, "paketo-buildpacks/go"),
    ({"pom.xml": ""}, "paketo-buildpacks/java"),
    ({"build.gradle.kts": ""}, "paketo-buildpacks/java"),
    ({"Gemfile": ""}, "paketo-buildpacks/ruby"),
    ({"App.csproj": ""}, "paketo-buildpacks/dotnet-core"),
    ({"Procfile": "web: ./run\n"}, "paketo-buildpacks/procfile"),
    ({"README.md": "", "src/main.go": ""}, None),
])
def test_detection(tmp_path: Path, files: dict[str, str], buildpack: str | None) -> None:
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    assert detect(tmp_path) == buildpack


def test_the_build_of_the_running_image_is_kept_whatever_the_history_limit(
        tmp_path: Path) -> None:
    eco = Ecosystem(tmp_path)
    report = (REPORTS / "critical.json").read_text()
    eco.apply(image("web", eco.artifact({**APP, ".reconciler/scan-report.json": report}),
                    successBuildHistoryLimit=0, failedBuildHistoryLimit=0))
    eco.settle()
    running = eco.get(KPACK, "Image", "web")["status"]["latestImage"]
    for i in range(2):
        eco.apply(image("web", eco.artifact({"README.md": f"broken {i}\n"}),
                        successBuildHistoryLimit=0, failedBuildHistoryLimit=0))
        eco.settle()
    # The failed build 2 is gone, 3 is the latest; 1 made the image that still runs.
    assert eco.names(KPACK, "Build") == ["web-build-1", "web-build-3"]
    assert eco.get(KPACK, "Build", "web-build-1")["status"]["latestImage"] == running
    assert eco.get(KPACK, "Image", "web")["status"]["latestImage"] == running


def test_an_image_being_deleted_gets_no_new_build(tmp_path: Path) -> None:
    eco = Ecosystem(tmp_path)
    eco.apply(image("web", eco.artifact(APP)))
    eco.settle()
    held = image("web", eco.artifact({**APP, "VERSION": "2\n"}))
    held["metadata"]["finalizers"] = ["example.com/hold"]
    eco.apply(held)
    _, gone = eco.cluster.delete_object(KPACK, "Image", NS, "web")
    assert not gone
    eco.settle()
    assert eco.names(KPACK, "Build") == ["web-build-1"]


def _count_detections(eco: Ecosystem) -> list[str]:
    """The URL of each archive the simulated kpack unpacks to detect its buildpacks, as it
    does it."""
    unpacked: list[str] = []
    detect = eco.kpack._detect

    def counting(archive: Path, url: str,
                 sub_path: str) -> tuple[tuple[bool, str, str | None], bool]:
        unpacked.append(url)
        return detect(archive, url, sub_path)

    eco.kpack._detect = counting  # type: ignore[method-assign]
    return unpacked


def test_one_source_built_for_many_images_is_unpacked_and_detected_once(tmp_path: Path) -> None:
    eco = Ecosystem(tmp_path)
    url = eco.artifact(APP)
    bare = eco.artifact({"README.md": "nothing to build\n"})
    unpacked = _count_detections(eco)
    for i in range(5):
        eco.apply(image(f"web-{i}", url))
    eco.apply(image("bare-0", bare))
    eco.apply(image("bare-1", bare))
    eco.settle()
    # Each archive once, however many Images build it.
    assert sorted(unpacked) == sorted([url, bare])
    for i in range(5):
        assert condition(eco.get(KPACK, "Image", f"web-{i}"), "Ready")["status"] == "True"
    for name in ("bare-0", "bare-1"):  # a failed detection is kept as the failure it was
        assert condition(eco.get(KPACK, "Image", name), "Ready")["status"] == "False"


def test_the_same_archive_stored_for_many_sources_or_downloaded_is_detected_once(
        tmp_path: Path) -> None:
    # A commit shared by many workloads: each GitRepository stores its own copy of one
    # archive (its own path and URL, the same bytes). Copies in this process's store are known
    # by their content address; downloaded ones (named by their URL here) by their bytes.
    eco = Ecosystem(tmp_path)
    tree = tmp_path / "tree"
    tree.mkdir()
    for rel, text in APP.items():
        (tree / rel).write_text(text)
    remote = ArtifactStore(tmp_path / "remote", "http://elsewhere.invalid")
    urls = [eco.store.store_directory("GitRepository", NS, f"app-{i}", "main@sha1:1", tree,
                                      now="2026-01-01T00:00:00Z").url for i in range(2)]
    unpacked = _count_detections(eco)
    with ArtifactServer(remote) as server:
        for i in range(2):
            path = remote.store_directory("GitRepository", NS, f"app-{i}", "main@sha1:1", tree,
                                          now="2026-01-01T00:00:00Z").path
            urls.append(f"{server.base_url}/{path}")
        assert len(set(urls)) == 4
        for i, url in enumerate(urls):
            eco.apply(image(f"web-{i}", url))
        eco.settle()
    assert unpacked == urls[:1]
    for i in range(4):
        assert condition(eco.get(KPACK, "Image", f"web-{i}"), "Ready")["status"] == "True"


def test_a_failure_to_unpack_is_not_kept_for_the_next_build(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import simulator.ecosystem as ecosystem

    eco = Ecosystem(tmp_path)
    url = eco.artifact(APP)
    from simulator.sourcefetch import unpack_source as real

    failures = [OSError("No space left on device")]  # the machine's trouble, once

    def unpack(archive: Path, url: str, dest: Path, limits: Limits) -> Path:
        if failures:
            raise failures.pop()
        return real(archive, url, dest, limits)

    monkeypatch.setattr(ecosystem, "unpack_source", unpack)
    eco.apply(image("first", url))
    eco.settle()
    assert condition(eco.get(KPACK, "Image", "first"), "Ready")["status"] == "False"
    eco.apply(image("second", url))  # the same archive: unpacked again, and built
    eco.settle()
    assert condition(eco.get(KPACK, "Image", "second"), "Ready")["status"] == "True"
