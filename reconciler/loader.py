"""Reading input files: YAML files and folders, `${VAR}` expansion, schema validation.

Everything a real API server would refuse is refused here, before anything is applied, with the
file, line, object and field in the message.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
import yaml

from reconciler.model.apivalidation import object_problems
from reconciler.model.errors import EnvExpansionError, LoadError, ValidationError
from reconciler.model.limits import DEFAULT_LIMITS
from reconciler.model.objects import Obj, describe
from reconciler.model.schema import schema_for, validate
from reconciler.model.validation import admission_problems, admission_warnings
from reconciler.model.yamlsafe import check_text, decode_text, load_yaml_documents

log = structlog.get_logger(__name__)

_ENV_REF = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}")
_YAML_SUFFIXES = (".yaml", ".yml")
# DNS-1123 subdomain, as the API server checks metadata.name.


@dataclass(frozen=True)
class LoadedObject:
    obj: Obj
    path: str
    line: int

    @property
    def source(self) -> str:
        return f"{self.path}:{self.line}"


def expand_env(text: str, path: str, env: Mapping[str, str]) -> str:
    """Replace `${VAR}` with its value; `$${VAR}` stays as the literal `${VAR}`.

    References inside YAML comments are left alone (an unset variable in a comment is not an
    error): comment spans are found with YAML's own scanner, so a `#` inside a quoted string or
    a block scalar does not start one.
    """
    if "${" not in text:
        return text
    comments = _comment_spans(text) if "#" in text else []
    out: list[str] = []
    pos = 0
    span = 0
    for match in _ENV_REF.finditer(text):
        start = match.start()
        while span < len(comments) and comments[span][1] <= start:
            span += 1
        if span < len(comments) and comments[span][0] <= start:
            continue  # inside a comment
        out.append(text[pos:start])
        escaped, name = match.group(1), match.group(2)
        if escaped:
            out.append("${" + name + "}")
        elif name not in env:
            raise EnvExpansionError(path, text.count("\n", 0, start) + 1, name)
        else:
            out.append(env[name])
        pos = match.end()
    out.append(text[pos:])
    return "".join(out)


class _CommentScanner(yaml.reader.Reader, yaml.scanner.Scanner):
    """PyYAML's scanner, recording the (start, end) character span of every comment."""

    def __init__(self, text: str) -> None:
        yaml.reader.Reader.__init__(self, text)
        yaml.scanner.Scanner.__init__(self)
        self.comments: list[tuple[int, int]] = []

    def _skip_comment(self) -> None:
        if self.peek() == "#":
            start = self.index
            while self.peek() not in "\0\r\n\x85\u2028\u2029":
                self.forward()
            self.comments.append((start, self.index))

    def scan_to_next_token(self) -> None:
        if self.index == 0 and self.peek() == "\ufeff":
            self.forward()
        while True:
            while self.peek() == " ":
                self.forward()
            self._skip_comment()
            if self.scan_line_break():  # type: ignore[no-untyped-call]
                if not self.flow_level:
                    self.allow_simple_key = True
            else:
                return

    def scan_block_scalar_ignored_line(self, start_mark: yaml.Mark) -> None:
        while self.peek() == " ":
            self.forward()
        self._skip_comment()
        super().scan_block_scalar_ignored_line(start_mark)

    def scan_directive_ignored_line(self, start_mark: yaml.Mark) -> None:
        while self.peek() == " ":
            self.forward()
        self._skip_comment()
        super().scan_directive_ignored_line(start_mark)


def _comment_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the comments in `text`, in order.

    Text the scanner cannot read (broken YAML, which the parser will report with its line) falls
    back to whole-line comments outside block scalars being unknown: only lines whose first
    non-blank character is `#` are treated as comments.
    """
    scanner = _CommentScanner(text)
    try:
        while not scanner.check_token(yaml.tokens.StreamEndToken):
            scanner.get_token()  # type: ignore[no-untyped-call]
    except yaml.YAMLError:
        spans: list[tuple[int, int]] = []
        offset = 0
        for line in text.splitlines(keepends=True):
            stripped = line.lstrip(" \t")
            if stripped.startswith("#"):
                spans.append((offset + len(line) - len(stripped), offset + len(line)))
            offset += len(line)
        return spans
    return scanner.comments


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
        with file.open("rb") as stream:
            # One byte more than the limit is enough to know the file is too large.
            data = stream.read(DEFAULT_LIMITS.yaml_bytes + 1)
    except OSError as exc:
        raise LoadError(str(file), f"cannot read: {exc}") from exc
    raw = decode_text(data, str(file))
    # Bad characters are reported before ${VAR} expansion could move them to another line.
    check_text(raw, str(file))
    return load_text(expand_env(raw, str(file), env), str(file))


def load_text(text: str, path: str) -> list[LoadedObject]:
    """The objects of YAML `text`, read with the bounds of `reconciler.model.yamlsafe`."""
    out: list[LoadedObject] = []
    for document in load_yaml_documents(text, path):
        line = document.line
        for obj in _flatten_lists(document.data, path, line):
            _check_object(obj, path, line, document.node)
            out.append(LoadedObject(obj, path, line))
    return out


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
    # What kube-apiserver itself refuses: names for the kind, label and annotation syntax,
    # owner references, Secret and ConfigMap data, sizes.
    refused = object_problems(obj)
    if refused:
        first = refused[0]
        raise ValidationError(_line_of(path, node, _field_steps(first.field), line),
                              describe(obj), first.field or "(object)", first.message)
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
        index = index.rstrip("]")
        if index.isdigit() and isinstance(current, yaml.SequenceNode):
            if int(index) < len(current.value):
                current = current.value[int(index)]
        elif index and isinstance(current, yaml.MappingNode):  # `data[key]`: a map's key
            current = next((v for k, v in current.value
                            if isinstance(k, yaml.ScalarNode) and k.value == index), current)
    line = current.start_mark.line + 1 if current is not node else default
    return f"{path}:{line}"
