"""Finding kuttl tests: the TestSuite file, test folders, and what each test needs installed first.

A PATH on the command line is one of:

- a kuttl `TestSuite` file, or a folder holding `kuttl-test.yaml`: its `testDirs`, `crdDir`,
  `manifestDirs`, `timeout` and `namespace` are honoured, paths relative to the suite's folder;
- a test folder (it holds `NN-*.yaml` step files): one test;
- a folder of test folders, searched recursively: each test folder found is one test.

A suite is often copied out of the repository it was written for, so its paths (relative to that
repository's root) may not exist next to it: a relative path that does not exist is tried again
with its leading folders dropped (`tests/kuttl/runnable`, then `kuttl/runnable`, then `runnable`),
and is skipped with an info log if none exists. Cartographer's own `config/crd/bases` is the
product's CRDs, which the simulator installs anyway. When a CRD or manifest folder is missing,
folders beside the suite file that hold nothing but CRDs (such as `test-crds/`) are installed in
its place, so the kinds the tests stamp are served.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from reconciler.loader import LoadedObject, load_paths
from reconciler.model.errors import InputError, LoadError
from reconciler.model.yamlsafe import load_yaml_documents

log = structlog.get_logger(__name__)

KUTTL_API = "kuttl.dev/v1beta1"
SUITE_FILE = "kuttl-test.yaml"
DEFAULT_TIMEOUT = 30.0
# kuttl's testStepRegex: a step file is `<index>-<name>.yaml` with no other dot in the name.
STEP_FILE = re.compile(r"^(\d+)-[^.]+\.yaml$")
_DNS_LABEL_MAX = 63


class SuiteError(InputError):
    """A PATH, suite file or setup folder that cannot be used; `reconciler test` exits 2."""


@dataclass(frozen=True)
class TestCase:
    """One kuttl test: a folder of steps, run in a fresh cluster and namespace."""

    __test__ = False  # not a pytest test class, despite the name

    name: str
    """How reports name it: the folder relative to its test folder's parent (`supplychain/x`)."""
    path: Path
    timeout: float
    """Virtual seconds each step's assertions may take to come true (TestAssert overrides)."""
    setup: tuple[LoadedObject, ...] = ()
    """CRDs and manifests from the suite, applied to the fresh cluster before the first step."""
    namespace: str | None = None
    """The suite's fixed namespace; None for a fresh one named after the test."""

    @property
    def test_namespace(self) -> str:
        return self.namespace or namespace_for(self.name)


@dataclass
class _SuiteSettings:
    timeout: float = DEFAULT_TIMEOUT
    namespace: str | None = None
    setup_dirs: list[Path] = field(default_factory=list)
    test_dirs: list[Path] = field(default_factory=list)


def discover(
    paths: Sequence[str | Path],
    timeout: float | None = None,
    extra_setup_dirs: Sequence[str | Path] = (),
) -> list[TestCase]:
    """Every test under `paths`, in a stable order; `timeout` overrides the suites' timeouts.

    `extra_setup_dirs` are CRD or manifest folders applied before each test in addition to the
    suite's (kuttl's `--crd-dir` / `--manifest-dir`). Raises `SuiteError` for unusable input.
    """
    cases: list[TestCase] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise SuiteError(f"{path}: no such file or folder (give a kuttl-test.yaml, a test "
                             "folder or a folder of test folders)")
        suite_file = _suite_file_of(path)
        settings = _read_suite(suite_file) if suite_file is not None else _SuiteSettings()
        if timeout is not None:
            settings.timeout = timeout
        settings.setup_dirs.extend(Path(p) for p in extra_setup_dirs)
        setup = _load_setup(settings.setup_dirs)
        roots = settings.test_dirs if suite_file is not None else [path]
        found = [
            TestCase(name, folder, settings.timeout, setup, settings.namespace)
            for root in roots
            for name, folder in _tests_under(root)
        ]
        if not found:
            raise SuiteError(f"{path}: no kuttl tests found (a test is a folder holding step "
                             "files named like 00-setup.yaml, 00-assert.yaml)")
        cases.extend(found)
    return _unique(cases)


def namespace_for(test_name: str) -> str:
    """kuttl uses `kuttl-test-<random words>`; a name derived from the test is reproducible."""
    slug = re.sub(r"[^a-z0-9]+", "-", test_name.lower()).strip("-") or "test"
    name = f"kuttl-test-{slug}"
    if len(name) <= _DNS_LABEL_MAX:
        return name
    digest = hashlib.sha256(test_name.encode()).hexdigest()[:8]
    return f"{name[: _DNS_LABEL_MAX - 9].rstrip('-')}-{digest}"


def is_test_folder(path: Path) -> bool:
    return path.is_dir() and any(
        STEP_FILE.match(p.name) for p in path.iterdir() if p.is_file())


def _suite_file_of(path: Path) -> Path | None:
    if path.is_file():
        return path
    candidate = path / SUITE_FILE
    return candidate if candidate.is_file() else None


def _read_suite(file: Path) -> _SuiteSettings:
    doc = _suite_document(file)
    settings = _SuiteSettings()
    raw_timeout = doc.get("timeout")
    if raw_timeout is not None:
        if isinstance(raw_timeout, bool) or not isinstance(raw_timeout, int | float) \
                or raw_timeout <= 0:
            raise SuiteError(f"{file}: TestSuite field timeout: must be a positive number of "
                             f"seconds, got {raw_timeout!r}")
        settings.timeout = float(raw_timeout)
    namespace = doc.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        raise SuiteError(f"{file}: TestSuite field namespace: must be a string")
    settings.namespace = namespace or None
    folders: list[str] = []
    crd_dir = doc.get("crdDir")
    if crd_dir:
        folders.append(_string(file, "crdDir", crd_dir))
    folders.extend(_strings(file, "manifestDirs", doc.get("manifestDirs")))
    missing = []
    for raw in folders:
        resolved = _resolve(file.parent, raw)
        if resolved is None:
            log.info("suite folder not found, skipped", suite=str(file), path=raw)
            missing.append(raw)
        else:
            settings.setup_dirs.append(resolved)
    if missing:
        for crds in _crd_folders_beside(file):
            if crds not in settings.setup_dirs:
                log.info("installing CRD folder found beside the suite", suite=str(file),
                         folder=str(crds), missing=missing)
                settings.setup_dirs.append(crds)
    if doc.get("commands"):
        # The simulator runs the product's controllers itself; a suite's commands start them
        # (or kind, or kubectl) in a real cluster.
        log.info("suite commands are not run in the simulator", suite=str(file))
    settings.test_dirs = _suite_test_dirs(file, doc)
    return settings


def _crd_folders_beside(file: Path) -> list[Path]:
    """Folders next to the suite file holding nothing but CustomResourceDefinitions.

    A suite copied out of its repository often brings the CRDs its tests stamp along in a
    folder of its own; when the suite's own crdDir or manifestDirs are missing, these stand in.
    """
    found = []
    for folder in sorted(p for p in file.parent.iterdir() if p.is_dir()):
        if folder.name.startswith(".") or is_test_folder(folder):
            continue
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml"))
        if files and all(_only_crds(p) for p in files):
            found.append(folder)
    return found


def _only_crds(file: Path) -> bool:
    try:
        docs = [d.data for d in load_yaml_documents(file.read_bytes(), str(file))
                if d.data is not None]
    except (OSError, LoadError):
        return False
    return bool(docs) and all(
        isinstance(d, dict) and d.get("kind") == "CustomResourceDefinition" for d in docs)


def _suite_test_dirs(file: Path, doc: dict[str, Any]) -> list[Path]:
    raw_dirs = _strings(file, "testDirs", doc.get("testDirs"))
    if not raw_dirs:
        return [file.parent]
    found = []
    for raw in raw_dirs:
        resolved = _resolve(file.parent, raw)
        if resolved is None:
            log.info("suite test folder not found, skipped", suite=str(file), path=raw)
        else:
            found.append(resolved)
    if not found:
        raise SuiteError(f"{file}: none of the testDirs {raw_dirs} exists relative to "
                         f"{file.parent} (fix testDirs, or run the test folders directly)")
    return found


def _suite_document(file: Path) -> dict[str, Any]:
    try:
        docs = [d.data for d in load_yaml_documents(file.read_bytes(), str(file))
                if d.data is not None]
    except OSError as exc:
        raise SuiteError(f"{file}: cannot read: {exc}") from exc
    except LoadError as exc:
        raise SuiteError(str(exc)) from exc
    suites = [d for d in docs if isinstance(d, dict) and d.get("kind") == "TestSuite"]
    if len(suites) != 1:
        raise SuiteError(f"{file}: expected one object of kind TestSuite "
                         f"(apiVersion {KUTTL_API}), found {len(suites)}")
    return suites[0]


def _string(file: Path, name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise SuiteError(f"{file}: TestSuite field {name}: must be a path, got {value!r}")
    return value


def _strings(file: Path, name: str, value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise SuiteError(f"{file}: TestSuite field {name}: must be a list of paths")
    return [_string(file, f"{name}[{i}]", v) for i, v in enumerate(value)]


def _resolve(base: Path, raw: str) -> Path | None:
    path = Path(raw)
    if path.is_absolute():
        return path if path.exists() else None
    parts = path.parts
    for start in range(len(parts)):
        candidate = base.joinpath(*parts[start:])
        if candidate.exists():
            if start:
                log.info("suite path found with leading folders dropped", path=raw,
                         found=str(candidate))
            return candidate
    return None


def _load_setup(folders: Sequence[Path]) -> tuple[LoadedObject, ...]:
    for folder in folders:
        if not folder.exists():
            raise SuiteError(f"{folder}: no such CRD or manifest folder")
    return tuple(load_paths(folders)) if folders else ()


def _tests_under(root: Path) -> list[tuple[str, Path]]:
    """(name, folder) of every test folder at or under `root`, named relative to root's parent."""
    base = root.parent
    if is_test_folder(root):
        # Named with its group, as it would be when run from the folder of tests above it.
        resolved = root.resolve()
        return [(f"{resolved.parent.name}/{resolved.name}".lstrip("/"), root)]
    found: list[tuple[str, Path]] = []
    for folder in sorted(p for p in root.rglob("*") if p.is_dir()):
        if any(part.startswith(".") for part in folder.relative_to(root).parts):
            continue
        if is_test_folder(folder) and not any(
                is_test_folder(parent) for parent in folder.parents if root in parent.parents):
            found.append((folder.relative_to(base).as_posix(), folder))
    return found


def _unique(cases: list[TestCase]) -> list[TestCase]:
    seen: set[Path] = set()
    out = []
    for case in cases:
        key = case.path.resolve()
        if key not in seen:
            seen.add(key)
            out.append(case)
    return out
