"""Reading input files: YAML files and folders, `${VAR}` expansion, schema validation.

Everything a real API server would refuse is refused here, before anything is applied, with the
file, line, object and field in the message.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
import yaml

from reconciler.model.errors import EnvExpansionError, LoadError, ValidationError
from reconciler.model.objects import Obj, describe
from reconciler.model.schema import schema_for, validate
from reconciler.model.validation import admission_problems, admission_warnings

log = structlog.get_logger(__name__)

_ENV_REF = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}")
_YAML_SUFFIXES = (".yaml", ".yml")
# DNS-1123 subdomain, as the API server checks metadata.name.
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass(frozen=True)
class LoadedObject:
    obj: Obj
    path: str
    line: int

    @property
    def source(self) -> str:
        return f"{self.path}:{self.line}"


def expand_env(text: str, path: str, env: Mapping[str, str]) -> str:
    """Replace `${VAR}` with its value; `$${VAR}` stays as the literal `${VAR}`."""

    def lines() -> Iterator[str]:
        for number, line in enumerate(text.splitlines(keepends=True), start=1):
            if "${" not in line:
                yield line
                continue

            def substitute(match: re.Match[str], number: int = number) -> str:
                escaped, name = match.group(1), match.group(2)
                if escaped:
                    return "${" + name + "}"
                if name not in env:
                    raise EnvExpansionError(path, number, name)
                return env[name]

            yield _ENV_REF.sub(substitute, line)

    return "".join(lines())


def iter_yaml_files(paths: Iterable[str | Path]) -> list[Path]:
    """Files named on the command line, and folders searched recursively, in a stable order."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(
                sorted(
                    p for p in path.rglob("*")
                    if p.is_file() and p.suffix in _YAML_SUFFIXES
                    and not any(part.startswith(".") for part in p.relative_to(path).parts)
                )
            )
        elif path.is_file():
            found.append(path)
        else:
            raise LoadError(str(path), "no such file or directory")
    return found


def load_paths(
    paths: Iterable[str | Path],
    env: Mapping[str, str] | None = None,
    *,
    allow_empty: bool = True,
) -> list[LoadedObject]:
    """Every object in `paths`; with `allow_empty=False`, finding none is an error (a user who
    points at the wrong folder should hear so, not see a run over nothing succeed)."""
    environment = dict(os.environ) if env is None else dict(env)
    wanted = [str(p) for p in paths]
    files = iter_yaml_files(wanted)
    objects: list[LoadedObject] = []
    for file in files:
        objects.extend(load_file(file, environment))
    if not objects and not allow_empty:
        where = ", ".join(wanted)
        found = f"{len(files)} YAML file(s) but no objects" if files else "no *.yaml or *.yml files"
        raise LoadError(where, f"no Kubernetes objects to load: found {found}")
    return objects


def load_file(file: Path, env: Mapping[str, str]) -> list[LoadedObject]:
    try:
        raw = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LoadError(str(file), f"cannot read: {exc}") from exc
    return load_text(expand_env(raw, str(file), env), str(file))


def load_text(text: str, path: str) -> list[LoadedObject]:
    out: list[LoadedObject] = []
    for node, data in _documents(text, path):
        line = node.start_mark.line + 1
        if data is None:
            continue
        for obj in _flatten_lists(data, path, line):
            _check_object(obj, path, line, node)
            out.append(LoadedObject(obj, path, line))
    return out


def _documents(text: str, path: str) -> Iterator[tuple[yaml.Node, Any]]:
    """Each YAML document as its node (for line numbers) and its plain value."""
    loader = yaml.SafeLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            yield node, loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise LoadError(path, f"invalid YAML: {problem}", line) from exc
    finally:
        loader.dispose()


def _flatten_lists(data: Any, path: str, line: int) -> list[Obj]:
    if not isinstance(data, dict):
        raise LoadError(path, f"a YAML document must be a Kubernetes object (a mapping), "
                              f"got {type(data).__name__}", line)
    if data.get("kind") == "List" or (str(data.get("kind", "")).endswith("List")
                                      and isinstance(data.get("items"), list)):
        items = data.get("items") or []
        return [item for item in items if isinstance(item, dict)]
    return [data]


def _check_object(obj: Obj, path: str, line: int, node: yaml.Node) -> None:
    where = f"{path}:{line}"
    for field in ("apiVersion", "kind"):
        if not isinstance(obj.get(field), str) or not obj.get(field):
            raise ValidationError(where, describe(obj), field,
                                  "required field is missing (every object needs apiVersion "
                                  "and kind)")
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        raise ValidationError(where, describe(obj), "metadata", "required field is missing")
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        raise ValidationError(where, describe(obj), "metadata.name", "required field is missing")
    if not _NAME.match(name) or len(name) > 253:
        raise ValidationError(where, describe(obj), "metadata.name",
                              f"invalid name {name!r}: must be lowercase letters, digits, '-' "
                              "and '.', starting and ending with a letter or digit")
    for field in ("labels", "annotations"):
        values = metadata.get(field)
        if values is None:
            continue
        if not isinstance(values, dict):
            raise ValidationError(where, describe(obj), f"metadata.{field}", "must be a map")
        for key, value in values.items():
            if not isinstance(value, str):
                raise ValidationError(
                    _line_of(path, node, ["metadata", field, key], line), describe(obj),
                    f"metadata.{field}.{key}",
                    f"must be a string, got {value!r} (quote it in YAML)")
    kind_schema = schema_for(str(obj["apiVersion"]), str(obj["kind"]))
    if kind_schema is None:
        return
    problems = validate(obj, kind_schema.openapi)
    if problems:
        field, message = problems[0]
        raise ValidationError(_line_of(path, node, field.split("."), line), describe(obj),
                              field, message)
    # What Cartographer's validating webhooks refuse, refused here too, before anything runs.
    admission = admission_problems(obj)
    if admission:
        problem = admission[0]
        raise ValidationError(_line_of(path, node, _field_steps(problem.field), line),
                              describe(obj), problem.field, problem.message)
    for warning in admission_warnings(obj):
        log.warning("cartographer webhook rule not enforced",
                    source=_line_of(path, node, _field_steps(warning.field), line),
                    object=describe(obj), field=warning.field, problem=warning.message)


def _field_steps(field: str) -> list[str]:
    """`spec.resources[1].sources[0]` as the steps `_line_of` walks: `resources[1]`, ..."""
    return [step for step in re.split(r"\.(?![^\[]*\])", field) if step]


def _line_of(path: str, node: yaml.Node, fields: list[str], default: int) -> str:
    """Best-effort `file:line` of a field path inside a composed YAML document."""
    current: yaml.Node = node
    for field in fields:
        name, _, index = field.partition("[")
        if not isinstance(current, yaml.MappingNode):
            break
        for key, value in current.value:
            if isinstance(key, yaml.ScalarNode) and key.value == name:
                current = value
                break
        else:
            break
        if index and isinstance(current, yaml.SequenceNode):
            i = int(index.rstrip("]"))
            if i < len(current.value):
                current = current.value[i]
    line = current.start_mark.line + 1 if current is not node else default
    return f"{path}:{line}"
