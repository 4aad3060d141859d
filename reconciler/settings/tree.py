"""The settings tree of `reconciler run`: one root, its groups, where each value comes from.

`RunSettings` holds one frozen dataclass per group (`daemon`, `kubernetes`, `limits`,
`owners`); a field's docstring is its documentation, read from the source here (`field_docs`),
so the commented default file (`render_defaults`, what the Helm chart renders from) cannot
drift from the code.

`resolve` layers the sources, lowest to highest precedence:

    defaults < the YAML file (--config) < environment variables < command-line flags

The file is strict: an unknown group or key, or a value of the wrong type, is a `LoadError`
naming the file, line and key. A variable is `RECONCILER_<GROUP>_<FIELD>` (`RECONCILER_DAEMON_
CONCURRENT`); the older `RECONCILER_KUBE_*` names (`LEGACY_ENVIRONMENT`) still work, the new
name winning when both are set. An empty variable counts as unset. Flags are passed only when
given on the command line, so a flag's default never hides the file or the environment.
"""

from __future__ import annotations

import ast
import difflib
import inspect
import itertools
import math
import textwrap
import types
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from functools import cache
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from reconciler.model.errors import InputError, LoadError
from reconciler.model.limits import Limits
from reconciler.model.yamlsafe import load_yaml_documents
from reconciler.settings import DaemonSettings, KubernetesSettings, ListenAddress, OwnerSettings

__all__ = [
    "ENV_PREFIX",
    "FLAGS",
    "LEGACY_ENVIRONMENT",
    "Resolved",
    "RunSettings",
    "env_name",
    "field_docs",
    "render_defaults",
    "render_effective",
    "resolve",
]


@dataclass(frozen=True)
class RunSettings:
    """Everything `reconciler run` is configured with, one group per concern."""

    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    """The daemon itself."""
    kubernetes: KubernetesSettings = field(default_factory=KubernetesSettings)
    """The Kubernetes client (`--environment kubernetes` only)."""
    limits: Limits = field(default_factory=Limits)
    """Bounds on the work untrusted input can cause (docs/security.md)."""
    owners: OwnerSettings = field(default_factory=OwnerSettings)
    """The owner controllers' no-op fast path (docs/architecture.md)."""


ENV_PREFIX = "RECONCILER_"

Key = tuple[str, str]
"""(group, field), as in `daemon.concurrent`."""

LEGACY_ENVIRONMENT: Mapping[str, Key] = {
    "RECONCILER_KUBE_QPS": ("kubernetes", "qps"),
    "RECONCILER_KUBE_BURST": ("kubernetes", "burst"),
    "RECONCILER_KUBE_RETRIES": ("kubernetes", "retries"),
    "RECONCILER_KUBE_TIMEOUT": ("kubernetes", "request_timeout_seconds"),
    "RECONCILER_KUBE_WATCH_TIMEOUT": ("kubernetes", "watch_timeout_seconds"),
    "RECONCILER_KUBE_INFORMERS": ("kubernetes", "informers"),
    "RECONCILER_KUBE_AS": ("kubernetes", "impersonate_user"),
    "RECONCILER_KUBE_AS_GROUPS": ("kubernetes", "impersonate_groups"),
    "RECONCILER_KUBE_DEFAULT_SERVICE_ACCOUNT": ("kubernetes", "default_service_account"),
}
"""The variables the `kubernetes` environment read before the tree (README), still honoured."""

FLAGS: Mapping[str, Key] = {
    "--environment": ("daemon", "environment"),
    "--state": ("daemon", "state"),
    "--listen": ("daemon", "listen"),
    "--artifacts-listen": ("daemon", "artifacts_listen"),
    "--artifacts-url": ("daemon", "artifacts_url"),
    "--data-dir": ("daemon", "data_dir"),
    "--tick": ("daemon", "tick_seconds"),
    "--concurrent": ("daemon", "concurrent"),
    "--time-scale": ("daemon", "time_scale"),
    "--log-format": ("daemon", "log_format"),
    "--webhook-listen": ("daemon", "webhook_listen"),
    "--no-cross-namespace-refs": ("daemon", "no_cross_namespace_refs"),
    "--leader-elect": ("daemon", "leader_elect"),
    "--leader-election-namespace": ("daemon", "leader_election_namespace"),
    "--lease-name": ("daemon", "lease_name"),
    "--lease-duration": ("daemon", "lease_duration_seconds"),
    "--renew-deadline": ("daemon", "renew_deadline_seconds"),
    "--retry-period": ("daemon", "retry_period_seconds"),
    "--shard": ("daemon", "shard"),
    "--interval-jitter-percentage": ("daemon", "interval_jitter_percentage"),
}
"""`reconciler run`'s flags, by the setting each overrides."""


def env_name(group: str, name: str) -> str:
    return f"{ENV_PREFIX}{group.upper()}_{name.upper()}"


def _groups() -> dict[str, Any]:
    hints = get_type_hints(RunSettings)
    return {f.name: hints[f.name] for f in fields(RunSettings)}


@cache
def _hints(cls: Any) -> dict[str, Any]:
    hints = get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)}


@cache
def field_docs(cls: Any) -> dict[str, str]:
    """Each field's docstring (the string literal under it in the class body), dedented."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body if isinstance(tree.body[0], ast.ClassDef) else []
    docs: dict[str, str] = {}
    for here, after in itertools.pairwise(body):
        if isinstance(here, ast.AnnAssign) and isinstance(here.target, ast.Name) and \
                isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant) and \
                isinstance(after.value.value, str):
            docs[here.target.id] = inspect.cleandoc(after.value.value)
    return docs


# --- values ---------------------------------------------------------------------------------

class _WrongValue(ValueError):
    """A value that does not fit its field; the caller adds where it came from."""


def _unwrap(hint: Any) -> tuple[Any, bool]:
    """(the type, whether None is allowed) of a field's annotation."""
    if get_origin(hint) in (Union, types.UnionType):
        rest = [a for a in get_args(hint) if a is not type(None)]
        return rest[0], len(rest) < len(get_args(hint))
    return hint, False


def _describe(hint: Any) -> str:
    base, optional = _unwrap(hint)
    text = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
            Path: "a path", ListenAddress: "HOST:PORT"}.get(base, "a list of strings")
    return f"{text} or null" if optional else text


def _coerce(value: object, hint: Any) -> object:
    """A value from YAML or a flag, checked against the field's type (no silent conversion)."""
    base, optional = _unwrap(hint)
    wrong = _WrongValue(f"expected {_describe(hint)}, got {_shown(value)}")
    if value is None:
        if optional:
            return None
        raise wrong
    if base is bool:
        if isinstance(value, bool):
            return value
    elif base is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif base is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise _WrongValue(f"expected a finite number, got {value}")
            return float(value)
    elif base is str:
        if isinstance(value, str):
            return value
    elif base is Path:
        if isinstance(value, str | Path) and str(value):
            return Path(value)
    elif base is ListenAddress:
        if isinstance(value, ListenAddress):
            return value
        if isinstance(value, str):
            try:
                return ListenAddress.parse(value)
            except InputError as exc:
                raise _WrongValue(str(exc)) from None
    elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise wrong


def _from_text(text: str, hint: Any) -> object:
    """A value from an environment variable: its text parsed for the field's type."""
    base, _ = _unwrap(hint)
    if base is bool:
        lowered = text.strip().lower()
        if lowered in ("1", "true"):
            return True
        if lowered in ("0", "false"):
            return False
        raise _WrongValue(f"expected 1, 0, true or false, got {text!r}")
    if base is int or base is float:
        try:
            return _coerce(base(text), hint)
        except ValueError:
            raise _WrongValue(f"expected {_describe(base)}, got {text!r}") from None
    if base in (str, Path, ListenAddress):
        return _coerce(text, hint)
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return "null" if value is None else repr(value)


def _plain(value: object) -> object:
    if isinstance(value, Path | ListenAddress):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def _yaml_scalar(value: object) -> str:
    text = yaml.safe_dump(_plain(value), default_flow_style=True, width=1 << 30)
    return text.removesuffix("\n...\n").rstrip("\n")


# --- sources --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Resolved:
    """The effective settings, and for every field where its value came from: `default`,
    `file PATH:LINE`, `env NAME` or `flag --NAME`."""

    settings: RunSettings
    origins: Mapping[Key, str]


def _read_file(path: Path, limits: Limits) -> dict[Key, tuple[object, int]]:
    """The settings in a YAML file, each with its line; strict about groups, keys and types."""
    source = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LoadError(source, f"cannot read the settings file: {exc.strerror}") from None
    documents = load_yaml_documents(data, source, limits)
    if not documents:
        return {}
    if len(documents) > 1:
        raise LoadError(source, "a settings file is one YAML document", documents[1].line)
    groups = _groups()
    root = documents[0].node
    if not isinstance(root, MappingNode):
        raise LoadError(source, "a settings file is a mapping of groups "
                                f"({', '.join(groups)})", documents[0].line)
    values: dict[Key, tuple[object, int]] = {}
    for group_key, group_node in root.value:
        group = _key(group_key, source)
        if group not in groups:
            raise LoadError(source, f"unknown group {group!r}{_hint(group, groups)} "
                                    f"(groups: {', '.join(groups)})", _line(group_key))
        if _is_null(group_node):
            continue
        if not isinstance(group_node, MappingNode):
            raise LoadError(source, f"{group}: expected a mapping of settings",
                            _line(group_node))
        hints = _hints(groups[group])
        for name_key, value_node in group_node.value:
            name = _key(name_key, source)
            if name not in hints:
                raise LoadError(source, f"unknown setting {group}.{name}{_hint(name, hints)}",
                                _line(name_key))
            raw = documents[0].data[group][name]
            try:
                values[group, name] = (_coerce(raw, hints[name]), _line(value_node))
            except _WrongValue as exc:
                raise LoadError(source, f"{group}.{name}: {exc}", _line(value_node)) from None
    return values


def _key(node: Node, source: str) -> str:
    if not isinstance(node, ScalarNode) or node.tag != "tag:yaml.org,2002:str":
        raise LoadError(source, "keys of a settings file are names", _line(node))
    return str(node.value)


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _hint(name: str, known: Mapping[str, object]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _read_environment(environ: Mapping[str, str]) -> dict[Key, tuple[object, str]]:
    names: dict[str, Key] = dict(LEGACY_ENVIRONMENT)
    for group, cls in _groups().items():  # the new names after the old: they win
        names.update({env_name(group, f): (group, f) for f in _hints(cls)})
    values: dict[Key, tuple[object, str]] = {}
    for variable, (group, name) in names.items():
        text = environ.get(variable)
        if not text:
            continue
        try:
            values[group, name] = (_from_text(text, _hints(_groups()[group])[name]), variable)
        except _WrongValue as exc:
            raise InputError(f"{variable}={text!r}: {group}.{name}: {exc}") from None
    return values


def resolve(
    config: Path | None = None,
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, object] | None = None,
) -> Resolved:
    """The settings from defaults, `config`, `environ` and `flags` (by flag name, as in
    `FLAGS`: only the flags given on the command line). Raises `InputError` (a `LoadError`
    with file and line for the file) on an unknown key, a wrong type or an invalid value."""
    groups = _groups()
    layered: dict[Key, tuple[object, str]] = {}
    if config is not None:
        for key, (value, line) in _read_file(config, Limits()).items():
            layered[key] = (value, f"file {config}:{line}")
    for key, (value, variable) in _read_environment(environ or {}).items():
        layered[key] = (value, f"env {variable}")
    for flag, value in (flags or {}).items():
        group, name = FLAGS[flag]
        try:
            layered[group, name] = (_coerce(value, _hints(groups[group])[name]), f"flag {flag}")
        except _WrongValue as exc:
            raise InputError(f"{flag}: {exc}") from None
    built: dict[str, Any] = {}
    origins: dict[Key, str] = {}
    for group, cls in groups.items():
        chosen = {name: layered[group, name][0] for name in _hints(cls) if (group, name) in layered}
        origins.update({(group, name): layered[group, name][1] if name in chosen else "default"
                        for name in _hints(cls)})
        try:
            built[group] = replace(cls(), **chosen)
        except InputError as exc:
            where = sorted({origins[group, name] for name in chosen})
            raise InputError(f"{group} settings ({'; '.join(where)}): {exc}") from None
    return Resolved(RunSettings(**built), origins)


# --- rendering ------------------------------------------------------------------------------

_HEADER = """\
# Settings of `reconciler run` (generated by `reconciler settings --defaults`).
# Precedence, lowest to highest: these defaults < this file (--config FILE)
# < environment variables (RECONCILER_<GROUP>_<FIELD>) < command-line flags.
# Unknown keys and values of the wrong type are refused with the line.
"""


def render_defaults() -> str:
    """A complete, commented settings file holding every default; it loads back to them."""
    flags_of = {key: flag for flag, key in FLAGS.items()}
    legacy_of = {key: variable for variable, key in LEGACY_ENVIRONMENT.items()}
    defaults = RunSettings()
    root_docs = field_docs(RunSettings)
    lines = [_HEADER]
    for group, cls in _groups().items():
        lines.append(f"# {group}: {root_docs.get(group, '')}")
        lines.extend(f"# {line}".rstrip() for line in inspect.cleandoc(cls.__doc__ or "")
                     .splitlines())
        lines.append(f"{group}:")
        docs = field_docs(cls)
        values = getattr(defaults, group)
        for name in _hints(cls):
            lines.extend(f"  # {line}".rstrip() for line in docs.get(name, "").splitlines())
            also = [env_name(group, name)]
            if (group, name) in legacy_of:
                also.append(legacy_of[group, name])
            where = f"  # env: {', '.join(also)}"
            if (group, name) in flags_of:
                where += f"; flag: {flags_of[group, name]}"
            lines.append(where)
            lines.append(f"  {name}: {_yaml_scalar(getattr(values, name))}")
        lines.append("")
    return "\n".join(lines)


def render_effective(resolved: Resolved) -> str:
    """The effective settings as YAML, each value with where it came from as a comment."""
    lines = ["# Effective settings of `reconciler run`; each comment says where the value "
             "came from."]
    for group, cls in _groups().items():
        lines.append(f"{group}:")
        values = getattr(resolved.settings, group)
        for name in _hints(cls):
            lines.append(f"  {name}: {_yaml_scalar(getattr(values, name))}  "
                         f"# {resolved.origins[group, name]}")
    return "\n".join(lines) + "\n"
