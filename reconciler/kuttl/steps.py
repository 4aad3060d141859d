"""Reading one kuttl test folder into ordered steps.

Files are grouped into steps by their numeric prefix (`00-`, `01-`, ...) and run in that order.
Within a step, kuttl's file name rule decides a file's role: a name whose first word is `assert`
(`02-assert.yaml`, `02-assert-more.yaml`) holds objects that must come to exist, `errors` holds
objects that must not, and every other file holds objects to apply. Apply files are validated as
`reconciler` validates any input; assert and errors files hold partial objects, so they are only
required to name `apiVersion` and `kind`.

kuttl's own objects are honoured where the simulator can: a `TestStep` (in an apply file) for
`delete`, `apply`, `assert` and `error`; a `TestAssert` (in an assert file) for `timeout`.
Commands cannot run against an in-memory cluster, so a step that has them is refused.
Apply files get `${VAR}` expansion from the environment, as `reconciler simulate` inputs do.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.kuttl.suite import KUTTL_API, STEP_FILE
from reconciler.loader import LoadedObject, expand_env, load_text
from reconciler.model.errors import InputError, LoadError
from reconciler.model.limits import DEFAULT_LIMITS
from reconciler.model.objects import Obj
from reconciler.model.yamlsafe import check_text, decode_text, load_yaml_documents

# kuttl's fileNameRegex: the first word after the index says what the file is for.
_FILE_ROLE = re.compile(r"^(?:\d+-)?([^-.]+)(-[^.]+)?(?:\.yaml)?$")


class StepError(InputError):
    """A step file that cannot be used; the test fails with this message."""


@dataclass(frozen=True)
class Expectation:
    """An object from an assert or errors file: a partial object, matched as a subset."""

    obj: Obj
    source: str
    """`file:line` where it is written."""

    @property
    def label(self) -> str:
        name = (self.obj.get("metadata") or {}).get("name")
        return f"{self.obj.get('kind')} {name}" if name else f"any {self.obj.get('kind')}"


@dataclass(frozen=True)
class DeleteRef:
    """One entry of a TestStep's `delete` list: a named object, or every object with labels."""

    api_version: str
    kind: str
    name: str = ""
    namespace: str = ""
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class Step:
    index: int
    prefix: str
    """The file prefix as written (`02`), for reports."""
    name: str = ""
    applies: list[LoadedObject] = field(default_factory=list)
    asserts: list[Expectation] = field(default_factory=list)
    errors: list[Expectation] = field(default_factory=list)
    deletes: list[DeleteRef] = field(default_factory=list)
    timeout: float | None = None
    """From a TestAssert; overrides the suite's timeout for this step."""

    @property
    def label(self) -> str:
        # A step with nothing to apply is named after its checks, as its files are.
        return f"{self.prefix}-{self.name or ('assert' if self.asserts else 'errors')}"


def load_steps(test_dir: Path) -> list[Step]:
    """The steps of a test folder in order; raises `StepError` (or another `InputError`)."""
    steps: dict[int, Step] = {}
    for file in sorted(p for p in test_dir.iterdir() if p.is_file()):
        match = STEP_FILE.match(file.name)
        if match is None:
            continue
        index = int(match.group(1))
        step = steps.setdefault(index, Step(index, match.group(1)))
        _load_file(step, file, test_dir)
    return [steps[i] for i in sorted(steps)]


def _load_file(step: Step, file: Path, test_dir: Path) -> None:
    role_match = _FILE_ROLE.match(file.name)
    role = role_match.group(1).lower() if role_match else ""
    text = _read(file)
    if role in ("assert", "errors"):
        expectations, kuttl_objects = _load_expectations(text, str(file))
        for obj, source in kuttl_objects:
            if role == "assert" and obj.get("kind") == "TestAssert":
                _apply_test_assert(step, obj, source)
            else:
                raise StepError(f"{source}: kuttl kind {obj.get('kind')} is not allowed in an "
                                f"{role} file (TestAssert belongs in NN-assert.yaml, TestStep "
                                "in an apply file)")
        (step.asserts if role == "assert" else step.errors).extend(expectations)
        return
    if not step.name and role_match is not None:
        step.name = role_match.group(1) + (role_match.group(2) or "")
    plain, kuttl_objects = _split_kuttl(text, str(file))
    # `${VAR}` as `reconciler simulate` expands it, so a suite can name a repository that only
    # exists where it runs (the app's Git URL); an unset variable fails the test, naming it.
    step.applies.extend(load_text(expand_env(plain, str(file), os.environ), str(file)))
    for obj, source in kuttl_objects:
        if obj.get("kind") != "TestStep":
            raise StepError(f"{source}: kuttl kind {obj.get('kind')} is not allowed in an "
                            "apply file (only TestStep is)")
        _apply_test_step(step, obj, source, test_dir)


def _read(file: Path) -> str:
    """The file's text, bounded in size, UTF-8 and free of control characters."""
    try:
        with file.open("rb") as stream:
            data = stream.read(DEFAULT_LIMITS.yaml_bytes + 1)
    except OSError as exc:
        raise StepError(f"{file}: cannot read: {exc}") from exc
    try:
        text = decode_text(data, str(file))
        check_text(text, str(file))
    except LoadError as exc:
        raise StepError(str(exc)) from exc
    return text


def _documents(text: str, path: str) -> list[tuple[Any, int, int]]:
    """(data, first line, end line) of every non-empty YAML document: lines 0-based, the end
    exclusive. Read with the bounds of `reconciler.model.yamlsafe`."""
    try:
        return [(doc.data, doc.first, doc.end) for doc in load_yaml_documents(text, path)]
    except LoadError as exc:
        raise StepError(str(exc)) from exc


def _is_kuttl(data: Any) -> bool:
    return isinstance(data, dict) and str(data.get("apiVersion", "")).startswith("kuttl.dev/")


def _split_kuttl(text: str, path: str) -> tuple[str, list[tuple[Obj, str]]]:
    """The text without kuttl's documents (blanked, so line numbers stay), and those documents."""
    lines = text.splitlines(keepends=True)
    kuttl: list[tuple[Obj, str]] = []
    for data, first, end in _documents(text, path):
        if _is_kuttl(data):
            kuttl.append((data, f"{path}:{first + 1}"))
            for number in range(first, min(end, len(lines))):
                lines[number] = "\n"
    return "".join(lines), kuttl


def _load_expectations(text: str, path: str) -> tuple[list[Expectation], list[tuple[Obj, str]]]:
    expectations: list[Expectation] = []
    kuttl: list[tuple[Obj, str]] = []
    for data, first, _ in _documents(text, path):
        source = f"{path}:{first + 1}"
        if _is_kuttl(data):
            kuttl.append((data, source))
            continue
        if not isinstance(data, dict):
            raise StepError(f"{source}: a YAML document must be a Kubernetes object (a mapping), "
                            f"got {type(data).__name__}")
        for key in ("apiVersion", "kind"):
            if not isinstance(data.get(key), str) or not data.get(key):
                raise StepError(f"{source}: field {key} is required (an assertion names the "
                                "kind of the object it looks for)")
        if not isinstance(data.get("metadata", {}), dict):
            raise StepError(f"{source}: field metadata: must be a map")
        expectations.append(Expectation(data, source))
    return expectations, kuttl


def _apply_test_assert(step: Step, obj: Obj, source: str) -> None:
    if obj.get("commands"):
        raise StepError(f"{source}: TestAssert field commands: commands cannot run against the "
                        "simulator (assert objects instead)")
    timeout = obj.get("timeout")
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise StepError(f"{source}: TestAssert field timeout: must be a positive number of "
                            f"seconds, got {timeout!r}")
        step.timeout = float(timeout)


def _apply_test_step(step: Step, obj: Obj, source: str, test_dir: Path) -> None:
    if obj.get("apiVersion") != KUTTL_API:
        raise StepError(f"{source}: TestStep apiVersion {obj.get('apiVersion')!r} is not "
                        f"supported (use {KUTTL_API})")
    if obj.get("commands"):
        raise StepError(f"{source}: TestStep field commands: commands cannot run against the "
                        "simulator (apply objects, or use delete:, instead)")
    if obj.get("name"):
        step.name = str(obj["name"])
    for i, raw in enumerate(obj.get("delete") or []):
        step.deletes.append(_delete_ref(raw, f"{source}: TestStep field delete[{i}]"))
    for key, role in (("apply", "apply"), ("assert", "assert"), ("error", "errors")):
        for i, raw in enumerate(obj.get(key) or []):
            if not isinstance(raw, str):
                raise StepError(f"{source}: TestStep field {key}[{i}]: must be a path")
            for file in _yaml_files(test_dir / raw, f"{source}: TestStep field {key}[{i}]"):
                text = _read(file)
                if role == "apply":
                    step.applies.extend(load_text(text, str(file)))
                else:
                    found, _ = _load_expectations(text, str(file))
                    (step.asserts if role == "assert" else step.errors).extend(found)


def _delete_ref(raw: Any, where: str) -> DeleteRef:
    if not isinstance(raw, dict):
        raise StepError(f"{where}: must be an object reference (apiVersion, kind, name)")
    api_version, kind = raw.get("apiVersion"), raw.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str) or not kind:
        raise StepError(f"{where}: apiVersion and kind are required")
    labels = raw.get("labels") or {}
    if not isinstance(labels, dict):
        raise StepError(f"{where}: labels must be a map")
    return DeleteRef(api_version, kind, str(raw.get("name") or ""),
                     str(raw.get("namespace") or ""), {str(k): str(v) for k, v in labels.items()})


def _yaml_files(path: Path, where: str) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and p.suffix == ".yaml")
    raise StepError(f"{where}: {path} does not exist")
