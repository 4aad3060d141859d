"""The simulated scanner: an ImageScan judged by its ScanPolicy against the Trivy report the
image's source carried, as TAP reports it (Succeeded, compliantArtifact, the counts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.model.limits import Limits
from simulator.ecosystem import FETCH_ENV
from simulator.scanning import (
    SCAN_REPORT_ANNOTATION,
    SOURCE_NOT_READ_ANNOTATION,
    PolicyError,
    parse_policy,
    parse_trivy_report,
    violations,
)
from tests.unit.ecosystem_harness import KPACK, SCANNING, Ecosystem, condition, image

APP = {"app.py": "print('hello')\n"}
REPORTS = Path(__file__).parent / "scan_reports"

# A policy in the form of TAP's sample (only its two data rules are read).
TAP_POLICY = (REPORTS / "tap-policy.rego").read_text()


def _policy(name: str, rego: str) -> dict[str, Any]:
    return {"apiVersion": SCANNING, "kind": "ScanPolicy", "metadata": {"name": name},
            "spec": {"regoFile": rego}}


def _scan(name: str, image_ref: str, policy: str = "strict") -> dict[str, Any]:
    return {"apiVersion": SCANNING, "kind": "ImageScan", "metadata": {"name": name},
            "spec": {"registry": {"image": image_ref}, "scanPolicy": policy}}


def _built(eco: Ecosystem, files: dict[str, str], name: str = "web") -> str:
    eco.apply(image(name, eco.artifact(files)))
    eco.settle()
    latest: str = eco.get(KPACK, "Image", name)["status"]["latestImage"]
    return latest


def _scanned(eco: Ecosystem, image_ref: str, rego: str = TAP_POLICY) -> dict[str, Any]:
    """The ImageScan `web` of `image_ref` under the ScanPolicy `strict` (`rego`), settled."""
    eco.apply(_policy("strict", rego))
    eco.apply(_scan("web", image_ref))
    eco.settle()
    scan: dict[str, Any] = eco.get(SCANNING, "ImageScan", "web")
    return scan


def _report(name: str) -> dict[str, str]:
    return {**APP, ".reconciler/scan-report.json": (REPORTS / name).read_text()}


def test_critical_and_high_findings_violate_the_policy(tmp_path: Path) -> None:
    eco = Ecosystem(tmp_path)
    built = _built(eco, _report("critical.json"))
    eco.apply(_policy("strict", TAP_POLICY))
    eco.apply(_scan("web", built))
    eco.step()
    running = eco.get(SCANNING, "ImageScan", "web")
    assert condition(running, "Succeeded")["status"] == "Unknown"
    assert eco.settle() == 10.0
    scan = eco.get(SCANNING, "ImageScan", "web")
    failed = condition(scan, "Succeeded")
    assert (failed["status"], failed["reason"]) == ("False", "EvaluationFailed")
    assert failed["message"] == (
        "Policy violated because of 2 CVEs: CVE-2024-6387 (Critical, openssh-client 1:9.2p1-2), "
        "CVE-2023-30861 (High, flask 2.2.2)")
    assert "compliantArtifact" not in scan["status"]
    assert scan["status"]["scanResult"]["cveCount"] == {
        "critical": 1, "high": 1, "medium": 1, "low": 1, "unknown": 0}
    assert scan["status"]["phase"] == "Failed"


def test_only_low_findings_pass_and_name_the_compliant_image(tmp_path: Path) -> None:
    eco = Ecosystem(tmp_path)
    built = _built(eco, _report("low-only.json"))
    scan = _scanned(eco, built, TAP_POLICY.replace(', "UnknownSeverity"', ""))
    ok = condition(scan, "Succeeded")
    assert (ok["status"], ok["reason"]) == ("True", "ScanCompleted")
    assert scan["status"]["compliantArtifact"] == {"registry": {"image": built}}
    assert scan["status"]["scanResult"]["cveCount"]["low"] == 1
    assert scan["status"]["phase"] == "Completed"


def test_an_image_without_a_report_has_no_findings(tmp_path: Path) -> None:
    eco = Ecosystem(tmp_path)
    scan = _scanned(eco, _built(eco, APP))
    assert condition(scan, "Succeeded")["status"] == "True"
    assert sum(scan["status"]["scanResult"]["cveCount"].values()) == 0


def test_ignored_cves_do_not_count_and_a_policy_change_judges_again(tmp_path: Path) -> None:
    eco = Ecosystem(tmp_path)
    built = _built(eco, _report("critical.json"))
    failed = condition(_scanned(eco, built, TAP_POLICY.replace(
        "ignoreCves := []", 'ignoreCves := ["CVE-2024-6387"]')), "Succeeded")
    assert failed["message"] == ("Policy violated because of 1 CVEs: CVE-2023-30861 (High, flask "
                                 "2.2.2)")

    eco.apply(_policy("strict", TAP_POLICY.replace(
        "ignoreCves := []", 'ignoreCves := [\n  "CVE-2024-6387",\n  "CVE-2023-30861"\n]')))
    eco.settle()
    scan = eco.get(SCANNING, "ImageScan", "web")
    assert condition(scan, "Succeeded")["status"] == "True"
    assert scan["status"]["compliantArtifact"]["registry"]["image"] == built


def test_a_new_image_is_scanned_again(tmp_path: Path) -> None:
    eco = Ecosystem(tmp_path)
    clean = _built(eco, APP)
    assert condition(_scanned(eco, clean), "Succeeded")["status"] == "True"

    vulnerable = _built(eco, _report("critical.json"))
    assert vulnerable != clean
    eco.apply(_scan("web", vulnerable))
    eco.settle()
    scan = eco.get(SCANNING, "ImageScan", "web")
    assert condition(scan, "Succeeded")["status"] == "False"
    # The clean image is no longer named compliant once the scan is of another image.
    assert "compliantArtifact" not in scan["status"]


def test_a_missing_policy_fails_clearly(tmp_path: Path) -> None:
    eco = Ecosystem(tmp_path)
    eco.apply(_scan("web", _built(eco, APP), policy="nowhere"))
    eco.settle()
    failed = condition(eco.get(SCANNING, "ImageScan", "web"), "Succeeded")
    assert (failed["status"], failed["reason"]) == ("False", "ScanPolicyNotFound")
    assert failed["message"] == 'ScanPolicy "nowhere" not found in namespace "apps"'


@pytest.mark.parametrize(("rego", "message"), [
    ("package main\ndeny[msg] { true }\n", "no `notAllowedSeverities := [...]` rule"),
    ('notAllowedSeverities := ["Critical", "Severe"]\n', "Severe not among"),
    ("notAllowedSeverities := [critical]\n", "expected a list of double-quoted strings"),
])
def test_a_policy_it_cannot_read_is_refused(tmp_path: Path, rego: str, message: str) -> None:
    eco = Ecosystem(tmp_path)
    eco.apply(_policy("odd", rego))
    eco.apply(_scan("web", _built(eco, _report("low-only.json")), policy="odd"))
    eco.settle()
    scan = eco.get(SCANNING, "ImageScan", "web")
    failed = condition(scan, "Succeeded")
    assert (failed["status"], failed["reason"]) == ("False", "PolicyUnreadable")
    assert "ScanPolicy/apps/odd" in failed["message"] and message in failed["message"]
    assert "compliantArtifact" not in scan["status"]


def _no_data(eco: Ecosystem) -> dict[str, Any]:
    scan = eco.get(SCANNING, "ImageScan", "web")
    failed = condition(scan, "Succeeded")
    assert (failed["status"], failed["reason"]) == ("False", "NoVulnerabilityData")
    assert "findings are unknown" in failed["message"]
    # No scan happened: no counts that would read as zero findings, nothing compliant.
    assert "scanResult" not in scan["status"] and "compliantArtifact" not in scan["status"]
    assert scan["status"]["phase"] == "Error"
    return failed


def test_an_image_no_simulated_build_made_has_no_vulnerability_data(tmp_path: Path) -> None:
    eco = Ecosystem(tmp_path)
    eco.apply(_policy("strict", TAP_POLICY))
    nginx = "docker.io/library/nginx@sha256:" + "0" * 64
    eco.apply(_scan("web", nginx))
    eco.settle()
    failed = _no_data(eco)
    assert failed["message"].startswith(f"{nginx}: no simulated kpack Build made this image")


def test_a_build_that_did_not_read_its_source_gives_no_vulnerability_data(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `reconciler serve` fetches no source by default: the Build says so, and the scan of its
    # image (whose source carries a critical finding) does not pass as clean.
    monkeypatch.delenv(FETCH_ENV, raising=False)
    eco = Ecosystem(tmp_path)
    eco.kpack.configure_for_serving()
    built = _built(eco, _report("critical.json"))
    build = eco.get(KPACK, "Build", "web-build-1")
    assert FETCH_ENV in build["metadata"]["annotations"][SOURCE_NOT_READ_ANNOTATION]
    assert SCAN_REPORT_ANNOTATION not in build["metadata"]["annotations"]
    _scanned(eco, built)
    failed = _no_data(eco)
    assert "Build/apps/web-build-1 did not read its source" in failed["message"]


def test_a_git_source_build_gives_no_vulnerability_data(tmp_path: Path) -> None:
    eco = Ecosystem(tmp_path)
    eco.apply(image("web", "unused", source={
        "git": {"url": "https://git.example.com/app.git", "revision": "abc123"}}))
    eco.settle()
    _scanned(eco, eco.get(KPACK, "Image", "web")["status"]["latestImage"])
    assert "a Git source is not fetched" in _no_data(eco)["message"]


def test_a_policy_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    # Blank lines by the ten thousand before the rule: refused by size, unread.
    eco = Ecosystem(tmp_path)
    eco.apply(_policy("huge", " \n" * 40_000 + TAP_POLICY))
    eco.apply(_scan("web", _built(eco, _report("low-only.json")), policy="huge"))
    eco.settle()
    failed = condition(eco.get(SCANNING, "ImageScan", "web"), "Succeeded")
    assert (failed["status"], failed["reason"]) == ("False", "PolicyUnreadable")
    assert "more than the 65536 bytes" in failed["message"]
    assert "(limit scan_policy_bytes)" in failed["message"]


def test_rules_are_read_line_by_line_within_the_limit() -> None:
    # Shapes that made the rule's pattern scan the rest of the policy from every line.
    blank = " \n" * 30_000 + 'notAllowedSeverities := ["High"]\n'
    assert parse_policy(blank, "p").not_allowed == {"High"}
    with pytest.raises(PolicyError, match="no `notAllowedSeverities"):
        parse_policy("notAllowedSeverities := [\n" * 2_500, "p")
    # A rule still spans lines, and its name may sit on its own line before `:=`.
    assert parse_policy('  notAllowedSeverities\n  := [\n "Low"\n]', "p").not_allowed == {"Low"}
    with pytest.raises(PolicyError, match="scan_policy_bytes"):
        parse_policy(TAP_POLICY, "p", Limits(scan_policy_bytes=len(TAP_POLICY) - 1))


def test_a_scan_without_an_image_is_invalid(tmp_path: Path) -> None:
    eco = Ecosystem(tmp_path)
    eco.apply(_policy("strict", TAP_POLICY))
    eco.apply(_scan("web", ""))
    eco.settle()
    failed = condition(eco.get(SCANNING, "ImageScan", "web"), "Succeeded")
    assert (failed["status"], failed["reason"]) == ("False", "InvalidSpec")


def test_policy_and_report_parsing() -> None:
    policy = parse_policy(TAP_POLICY, "p")
    assert policy.not_allowed == {"Critical", "High", "UnknownSeverity"}
    assert policy.ignore_cves == frozenset()
    findings = parse_trivy_report((REPORTS / "low-only.json").read_text(), "r")
    assert [f.vulnerability_id for f in violations(findings, policy)] == ["CVE-2022-0001"]
    with pytest.raises(PolicyError):
        parse_policy("", "p")
    # A result without vulnerabilities (null or absent) is fine; none at all is no findings.
    assert parse_trivy_report('{"SchemaVersion": 2}', "r") == []
    assert parse_trivy_report('{"SchemaVersion": 2, "Results": [{"Target": "x", '
                              '"Vulnerabilities": null}]}', "r") == []
