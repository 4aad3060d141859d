"""Simulated image scanning: TAP's `scanning.apps.tanzu.vmware.com/v1beta1` `ImageScan`, judged
by a `ScanPolicy`, in the role Grype/Trivy play in a real supply chain.

Where findings come from. The simulated registry's vulnerability data for an image is the
Trivy JSON report (SchemaVersion 2) the image's source carried as `.reconciler/scan-report.json`:
the simulated kpack Build that produced the image records it, validated and reduced to the
fields read here, as annotation `simulator.reconciler.dev/scan-report` (`parse_trivy_report`,
`compact_report`). The scanner finds the Build whose `status.latestImage` is the scanned image
(in the ImageScan's namespace first, then anywhere; the newest if several). A Build that read
its source and found no report is a scan with no findings. An image no simulated Build made, or
one whose Build did not read its source (annotation `simulator.reconciler.dev/source-not-read`:
a Git or registry-image source, or `reconciler serve`, which fetches no source by default), has
no vulnerability data: the scan fails with reason `NoVulnerabilityData` (its findings are
unknown, so promotion must not pass on it) and reports no `scanResult`.

The policy. A ScanPolicy's `spec.regoFile` is Rego, and no Rego is evaluated here: of TAP's sample
policy only its two data rules are read, written as the sample writes them:

    notAllowedSeverities := ["Critical", "High", "UnknownSeverity"]
    ignoreCves := ["CVE-2016-1000027"]

Severities are Grype's names, as TAP's sample uses them ("Critical", "High", "Medium", "Low",
"Negligible", "UnknownSeverity"); Trivy's CRITICAL/HIGH/MEDIUM/LOW/UNKNOWN map onto them
(`UNKNOWN` is "UnknownSeverity"; Trivy has no "Negligible"). A policy without a readable
`notAllowedSeverities` (or with a value outside those names) is refused: the scan fails with
reason `PolicyUnreadable` rather than passing on a rule it did not understand.

Status, as TAP's scan controller writes it: `Succeeded` True (reason `ScanCompleted`) when no
finding reaches a not-allowed severity except ignored CVEs; otherwise False, reason
`EvaluationFailed`, message `Policy violated because of N CVEs: ...` listing them with their
severity and package. `status.compliantArtifact.registry.image` is set only when compliant;
`status.scanResult.cveCount` counts the findings by severity (all of them, ignored ones
included); `status.phase` is Completed / Failed / Error. A missing ScanPolicy, or a scan with no
image, fails with reason `ScanPolicyNotFound` / `InvalidSpec`. A scan takes `Timing.image_scan`
virtual seconds from when the simulator first sees the ImageScan's generation (a scan under way
when the process stops starts again), and is judged again, at once, when its ScanPolicy changes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from reconciler.backends.base import Backend, write_status
from reconciler.model.conditions import FALSE, TRUE, UNKNOWN, Condition, merge_conditions
from reconciler.model.errors import LoadError
from reconciler.model.kinds import KindInfo
from reconciler.model.limits import DEFAULT_LIMITS, Limits
from reconciler.model.objects import Obj, meta, spec_of, status_of
from reconciler.model.yamlsafe import load_json_bounded
from reconciler.runtime.clock import Clock, rfc3339
from simulator.kube_common import namespace_name, succeeded

SCANNING_API: Final = "scanning.apps.tanzu.vmware.com/v1beta1"
SCAN_REPORT_ANNOTATION: Final = "simulator.reconciler.dev/scan-report"
SOURCE_NOT_READ_ANNOTATION: Final = "simulator.reconciler.dev/source-not-read"
"""On a simulated kpack Build that did not read its source: why. Its image has no scan data."""
SCAN_REPORT_PATH: Final = ".reconciler/scan-report.json"
SCANNER_NAME: Final = "simulated-trivy"
SCAN_REPORT_ANNOTATION_BYTES: Final = 192 * 1024
"""The most a reduced report may take as an annotation (the API's limit on all of an object's
annotations together is 256 KiB)."""

SCANNING_KINDS: tuple[KindInfo, ...] = (
    KindInfo("scanning.apps.tanzu.vmware.com", ("v1beta1",), "ImageScan", "imagescans", True),
    KindInfo("scanning.apps.tanzu.vmware.com", ("v1beta1",), "ScanPolicy", "scanpolicies",
             True),
)

TRIVY_SEVERITIES: Final = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN")
_POLICY_SEVERITY: Final = {"CRITICAL": "Critical", "HIGH": "High", "MEDIUM": "Medium",
                           "LOW": "Low", "UNKNOWN": "UnknownSeverity"}
POLICY_SEVERITIES: Final = ("Critical", "High", "Medium", "Low", "Negligible", "UnknownSeverity")
_MAX_LISTED = 20  # violations named in a condition message; the rest are counted
_STARTED_KEPT = 4096  # scans under way remembered before finished ones are forgotten


# --- Trivy reports --------------------------------------------------------------------------


class ReportError(LoadError):
    """A scan report that is not a Trivy JSON report this simulator can read."""


@dataclass(frozen=True)
class Finding:
    vulnerability_id: str
    package: str
    installed_version: str
    severity: str
    """Trivy's: CRITICAL, HIGH, MEDIUM, LOW or UNKNOWN."""
    target: str = ""
    fixed_version: str = ""


def parse_trivy_report(text: str | bytes, where: str,
                       limits: Limits = DEFAULT_LIMITS) -> list[Finding]:
    """The findings of a Trivy JSON report (SchemaVersion 2): `Results[].Vulnerabilities[]`
    with `VulnerabilityID`, `PkgName`, `InstalledVersion`, `Severity`. Raises `ReportError`
    naming the field for anything else (a report that cannot be read must not pass as clean)."""
    try:
        doc = load_json_bounded(text, where, limits, max_bytes=limits.scan_report_bytes)
    except LoadError as exc:
        reason = str(exc).removeprefix(f"{where}: ")
        raise ReportError(where, f"not a Trivy JSON report: {reason}") from None
    if not isinstance(doc, dict):
        raise ReportError(where, "not a Trivy JSON report: expected an object")
    if doc.get("SchemaVersion") != 2:
        raise ReportError(where, f"SchemaVersion: expected 2 (Trivy's JSON report), got "
                                 f"{json.dumps(doc.get('SchemaVersion'))}")
    results = doc.get("Results")
    if results is None:
        return []
    if not isinstance(results, list):
        raise ReportError(where, "Results: expected a list")
    findings: list[Finding] = []
    for i, result in enumerate(results):
        if not isinstance(result, dict):
            raise ReportError(where, f"Results[{i}]: expected an object")
        vulns = result.get("Vulnerabilities")
        if vulns is None:
            continue
        if not isinstance(vulns, list):
            raise ReportError(where, f"Results[{i}].Vulnerabilities: expected a list")
        target = result.get("Target")
        for j, vuln in enumerate(vulns):
            findings.append(_finding(vuln, f"Results[{i}].Vulnerabilities[{j}]", where,
                                     target if isinstance(target, str) else ""))
    return findings


def _finding(vuln: Any, field: str, where: str, target: str) -> Finding:
    if not isinstance(vuln, dict):
        raise ReportError(where, f"{field}: expected an object")
    values: dict[str, str] = {}
    for key in ("VulnerabilityID", "PkgName", "InstalledVersion", "Severity"):
        value = vuln.get(key)
        if not isinstance(value, str) or not value:
            raise ReportError(where, f"{field}.{key}: expected a non-empty string")
        values[key] = value
    severity = values["Severity"].upper()
    if severity not in TRIVY_SEVERITIES:
        raise ReportError(where, f"{field}.Severity: {values['Severity']!r} is not one of "
                                 f"{', '.join(TRIVY_SEVERITIES)}")
    fixed = vuln.get("FixedVersion")
    return Finding(values["VulnerabilityID"], values["PkgName"], values["InstalledVersion"],
                   severity, target, fixed if isinstance(fixed, str) else "")


def compact_report(findings: Sequence[Finding]) -> str:
    """The findings as a small Trivy JSON report (only the fields read), for the annotation.
    Raises `ReportError` when even that is over `SCAN_REPORT_ANNOTATION_BYTES`."""
    by_target: dict[str, list[dict[str, str]]] = {}
    for f in findings:
        entry = {"VulnerabilityID": f.vulnerability_id, "PkgName": f.package,
                 "InstalledVersion": f.installed_version, "Severity": f.severity}
        if f.fixed_version:
            entry["FixedVersion"] = f.fixed_version
        by_target.setdefault(f.target, []).append(entry)
    doc = {"SchemaVersion": 2,
           "Results": [{"Target": target, "Vulnerabilities": vulns}
                       for target, vulns in by_target.items()]}
    text = json.dumps(doc, separators=(",", ":"), sort_keys=True)
    if len(text.encode()) > SCAN_REPORT_ANNOTATION_BYTES:
        raise ReportError(SCAN_REPORT_PATH, f"{len(findings)} findings take "
                          f"{len(text.encode())} bytes, more than the "
                          f"{SCAN_REPORT_ANNOTATION_BYTES} bytes an image's scan data may take")
    return text


def count_by_severity(findings: Sequence[Finding]) -> dict[str, int]:
    counts = {s.lower(): 0 for s in TRIVY_SEVERITIES}
    for f in findings:
        counts[f.severity.lower()] += 1
    return counts


# --- policies -------------------------------------------------------------------------------


class PolicyError(LoadError):
    """A ScanPolicy whose Rego the simulator cannot read."""


@dataclass(frozen=True)
class Policy:
    not_allowed: frozenset[str]
    """Grype/TAP severity names."""
    ignore_cves: frozenset[str]


# `[ \t]*`, not `\s*`, before the name: `\s` crosses lines, and with MULTILINE every line start
# would then scan all the blank lines after it (quadratic in the policy's lines). For the same
# reason the items stop at the next `[` too: a `name := [` line with no `]` after it would else
# scan to the end of the policy from each such line.
_RULE = r"^[ \t]*{name}\s*(?::=|=)\s*\[(?P<items>[^\[\]]*)\]"
_NOT_ALLOWED = re.compile(_RULE.format(name="notAllowedSeverities"), re.MULTILINE)
_IGNORE = re.compile(_RULE.format(name="ignoreCves"), re.MULTILINE)


def parse_policy(rego: str, where: str, limits: Limits = DEFAULT_LIMITS) -> Policy:
    """`notAllowedSeverities` (required) and `ignoreCves` (optional) as TAP's sample writes them:
    a list of double-quoted strings on a `name := [...]` line (the list may span lines). A
    regoFile over `Limits.scan_policy_bytes` is refused unread."""
    size = len(rego.encode())
    if size > limits.scan_policy_bytes:
        raise PolicyError(where, f"spec.regoFile: {size} bytes, more than the "
                                 f"{limits.scan_policy_bytes} bytes the simulated scanner reads "
                                 "(limit scan_policy_bytes)")
    found = _NOT_ALLOWED.search(rego)
    if found is None:
        raise PolicyError(where, "spec.regoFile: no `notAllowedSeverities := [...]` rule; the "
                                 "simulated scanner reads only that rule and `ignoreCves`")
    severities = _strings(found.group("items"), where, "notAllowedSeverities")
    unknown = sorted(set(severities) - set(POLICY_SEVERITIES))
    if unknown:
        raise PolicyError(where, f"spec.regoFile: notAllowedSeverities: {', '.join(unknown)} "
                                 f"not among {', '.join(POLICY_SEVERITIES)}")
    ignored = _IGNORE.search(rego)
    cves = _strings(ignored.group("items"), where, "ignoreCves") if ignored else []
    return Policy(frozenset(severities), frozenset(cves))


def _strings(items: str, where: str, rule: str) -> list[str]:
    try:
        value = json.loads("[" + items + "]")
    except ValueError:
        value = None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(where, f"spec.regoFile: {rule}: expected a list of double-quoted "
                                 "strings")
    return [str(v) for v in value]


def violations(findings: Sequence[Finding], policy: Policy) -> list[Finding]:
    """The findings the policy does not allow, each CVE once, most severe first."""
    seen: set[tuple[str, str]] = set()
    out: list[Finding] = []
    for f in sorted(findings, key=lambda f: (TRIVY_SEVERITIES.index(f.severity),
                                             f.vulnerability_id, f.package)):
        if (_POLICY_SEVERITY[f.severity] in policy.not_allowed
                and f.vulnerability_id not in policy.ignore_cves
                and (f.vulnerability_id, f.package) not in seen):
            seen.add((f.vulnerability_id, f.package))
            out.append(f)
    return out


def violation_message(bad: Sequence[Finding]) -> str:
    listed = ", ".join(f"{f.vulnerability_id} ({_POLICY_SEVERITY[f.severity]}, {f.package} "
                       f"{f.installed_version})" for f in bad[:_MAX_LISTED])
    more = f" and {len(bad) - _MAX_LISTED} more" if len(bad) > _MAX_LISTED else ""
    return f"Policy violated because of {len(bad)} CVEs: {listed}{more}"


# --- the controller -------------------------------------------------------------------------


class ImageScanner:
    """`ImageScan`: judges an image's findings by its `ScanPolicy` on the virtual clock."""

    name = "simulated-scanning"

    def __init__(self, backend: Backend, clock: Clock, scan_seconds: float = 10.0,
                 limits: Limits = DEFAULT_LIMITS) -> None:
        self.backend, self.clock, self.scan_seconds, self.limits = (
            backend, clock, scan_seconds, limits)
        self._started: dict[tuple[str, int], float] = {}

    def watches(self) -> Sequence[tuple[str, str]]:
        return [(SCANNING_API, "ImageScan"), (SCANNING_API, "ScanPolicy")]

    def reconcile(self, obj: Obj) -> float | None:
        if obj.get("kind") == "ScanPolicy":
            # A changed policy judges again every scan that names it.
            ns, name = namespace_name(obj)
            wait: float | None = None
            for scan in self.backend.list(SCANNING_API, "ImageScan", ns):
                if str(spec_of(scan).get("scanPolicy") or "") == name:
                    again = self._scan(scan)
                    wait = again if wait is None or (again is not None and again < wait) else wait
            return wait
        return self._scan(obj)

    def _scan(self, scan: Obj) -> float | None:
        status = dict(status_of(scan))
        generation = int(meta(scan).get("generation", 1))
        now = self.clock.now()
        key = (str(meta(scan).get("uid") or ""), generation)
        judged = (status.get("observedGeneration") == generation
                  and succeeded(scan) in (TRUE, FALSE))
        if not judged:
            # A new generation is scanned first; a judged one is only judged again (a changed
            # policy). A scan under way when the process restarted starts again.
            if len(self._started) > _STARTED_KEPT:
                # Scans deleted while under way leave entries; only pending ones matter.
                self._started = {k: t for k, t in self._started.items()
                                 if t + self.scan_seconds > now}
            started = self._started.setdefault(key, now)
            remaining = started + self.scan_seconds - now
            if remaining > 0:
                status = {"observedGeneration": generation,
                          "conditions": status.get("conditions") or []}
                return self._write(scan, status, Condition(
                    "Succeeded", UNKNOWN, "Scanning", "scanning the image"), "Scanning",
                    remaining)
            self._started.pop(key, None)
        status["observedGeneration"] = generation
        spec = spec_of(scan)
        image = str(((spec.get("registry") or {}).get("image")) or "")
        policy_name = str(spec.get("scanPolicy") or "")
        for field in ("compliantArtifact", "scanResult", "scannedBy", "phase"):
            status.pop(field, None)
        if not image:
            return self._write(scan, status, Condition(
                "Succeeded", FALSE, "InvalidSpec", "spec.registry.image is required"), "Error")
        ns, _ = namespace_name(scan)
        try:
            findings = self._findings(ns, image)
        except ReportError as exc:
            return self._write(scan, status, Condition(
                "Succeeded", FALSE, "ScanFailed", f"{image}: {exc}"), "Error")
        except _NoData as exc:
            return self._write(scan, status, Condition(
                "Succeeded", FALSE, "NoVulnerabilityData", f"{image}: {exc}"), "Error")
        status["scannedBy"] = {"scanner": {"name": SCANNER_NAME, "vendor": "reconciler"}}
        status["scanResult"] = {"cveCount": count_by_severity(findings)}
        if not policy_name:
            return self._write(scan, status, Condition(
                "Succeeded", FALSE, "ScanPolicyNotFound", "spec.scanPolicy is required"), "Error")
        policy_obj = self.backend.get(SCANNING_API, "ScanPolicy", ns, policy_name)
        if policy_obj is None:
            return self._write(scan, status, Condition(
                "Succeeded", FALSE, "ScanPolicyNotFound",
                f'ScanPolicy "{policy_name}" not found in namespace "{ns}"'), "Error")
        rego = spec_of(policy_obj).get("regoFile")
        try:
            policy = parse_policy(rego if isinstance(rego, str) else "",
                                  f"ScanPolicy/{ns}/{policy_name}", self.limits)
        except PolicyError as exc:
            return self._write(scan, status, Condition(
                "Succeeded", FALSE, "PolicyUnreadable", str(exc)), "Error")
        bad = violations(findings, policy)
        if bad:
            return self._write(scan, status, Condition(
                "Succeeded", FALSE, "EvaluationFailed", violation_message(bad)), "Failed")
        status["compliantArtifact"] = {"registry": {"image": image}}
        return self._write(scan, status, Condition(
            "Succeeded", TRUE, "ScanCompleted",
            f"{len(findings)} findings, none the policy disallows"), "Completed")

    def _findings(self, namespace: str, image: str) -> list[Finding]:
        """The image's findings; raises `_NoData` when the simulation has none for it."""
        build = find_build(self.backend, namespace, image)
        if build is None:
            raise _NoData("no simulated kpack Build made this image, so the simulated registry "
                          "has no vulnerability data for it and its findings are unknown")
        where = f"Build/{namespace_name(build)[0]}/{namespace_name(build)[1]}"
        annotations = meta(build).get("annotations") or {}
        not_read = annotations.get(SOURCE_NOT_READ_ANNOTATION)
        if not_read is not None:
            raise _NoData(f"{where} did not read its source ({not_read}), so the simulated "
                          "registry has no vulnerability data for the image and its findings "
                          "are unknown")
        text = annotations.get(SCAN_REPORT_ANNOTATION)
        if not isinstance(text, str) or not text:
            return []
        return parse_trivy_report(text, where + " annotation " + SCAN_REPORT_ANNOTATION,
                                  self.limits)

    def _write(self, scan: Obj, status: dict[str, Any], succeeded: Condition, phase: str,
               again: float | None = None) -> float | None:
        status["phase"] = phase
        status["conditions"] = merge_conditions(status.get("conditions"), [succeeded],
                                                rfc3339(self.clock.now()))
        if status != status_of(scan):
            write_status(self.backend, {**scan, "status": status})
        return again


class _NoData(Exception):
    """No vulnerability data exists for the image: the scan cannot say it is clean."""


def find_build(backend: Backend, namespace: str, image: str) -> Obj | None:
    """The newest kpack Build whose `status.latestImage` is `image`: in `namespace`, else in
    any namespace."""
    for ns in (namespace, None):
        builds = [b for b in backend.list("kpack.io/v1alpha2", "Build", ns)
                  if status_of(b).get("latestImage") == image]
        if builds:
            return max(builds, key=_build_order)
    return None


def _build_order(build: Obj) -> tuple[str, int, str]:
    labels = meta(build).get("labels") or {}
    number = str(labels.get("image.kpack.io/buildNumber") or "0")
    return (str(meta(build).get("creationTimestamp") or ""),
            int(number) if number.isdigit() else 0, str(meta(build).get("name") or ""))
