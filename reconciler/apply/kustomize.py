"""Building the desired objects of a Flux `Kustomization` from a folder of manifests.

Supported, and nothing more:

- a folder of plain YAML files (`*.yaml`, `*.yml`, `*.json`; multi-document; recursive, sorted),
  as Flux does when the folder has no `kustomization.yaml`;
- a `kustomization.yaml` (or `.yml`, or `Kustomization`) with `resources` (files, or folders
  that are built the same way) and `namespace` (set on every namespaced object);
- Flux's `postBuild.substitute` / `substituteFrom` (`${var}`, `${var:=default}`,
  `${var:-default}`, `$${var}` for a literal), skipped for objects annotated
  `kustomize.toolkit.fluxcd.io/substitute: disabled`.

Every other kustomize feature (patches, images, replicas, generators, components, helmCharts,
name prefixes and suffixes, common labels, remote resources, ...) is refused with a
`KustomizeError` naming the file and field, rather than half-supported: render those manifests
before committing them, or remove the field.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path

import yaml

from reconciler.loader import load_text
from reconciler.model.errors import InputError
from reconciler.model.limits import DEFAULT_LIMITS
from reconciler.model.objects import Obj, describe, meta
from reconciler.model.yamlsafe import decode_text, load_yaml

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED_FIELDS = frozenset({"apiVersion", "kind", "resources", "namespace"})
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
SUBSTITUTE_ANNOTATION = "kustomize.toolkit.fluxcd.io/substitute"

_VAR = re.compile(r"\$\$\{|\$\{([_a-zA-Z][_a-zA-Z0-9]*)(?::([=-])([^}]*))?\}")


class KustomizeError(InputError):
    """The manifests cannot be built; the message names the file and what to change."""


def build(root: Path, path: str = "./") -> list[Obj]:
    """The objects under `path` inside `root` (a source artifact's extracted tree)."""
    base = root.resolve()
    target = (base / path.lstrip("/")).resolve()
    if not target.is_relative_to(base):
        raise KustomizeError(f"spec.path {path!r} leads outside the source artifact")
    if not target.is_dir():
        raise KustomizeError(f"spec.path {path!r}: no such folder in the source artifact")
    return _build_dir(target, base, set())


def _build_dir(folder: Path, base: Path, seen: set[Path]) -> list[Obj]:
    if folder in seen:
        raise KustomizeError(f"{_rel(folder, base)}: resources refer back to this folder (cycle)")
    seen = {*seen, folder}
    kfile = next((folder / n for n in KUSTOMIZATION_FILES if (folder / n).is_file()), None)
    if kfile is None:
        objects: list[Obj] = []
        for file in sorted(folder.rglob("*")):
            hidden = any(part.startswith(".") for part in file.relative_to(folder).parts)
            if file.is_file() and file.suffix in MANIFEST_SUFFIXES and not hidden:
                objects.extend(_load(file, base))
        return objects
    return _build_kustomization(kfile, base, seen)


def _build_kustomization(kfile: Path, base: Path, seen: set[Path]) -> list[Obj]:
    where = _rel(kfile, base)
    try:
        spec = load_yaml(_read_bytes(kfile, where), where) or {}
    except InputError as exc:
        raise KustomizeError(str(exc)) from exc
    if not isinstance(spec, dict):
        raise KustomizeError(f"{where}: a kustomization must be a mapping")
    unsupported = sorted(set(spec) - SUPPORTED_FIELDS)
    if unsupported:
        raise KustomizeError(
            f"{where}: {', '.join(unsupported)}: not supported by the built-in deployer (it "
            f"supports {', '.join(sorted(SUPPORTED_FIELDS - {'apiVersion', 'kind'}))}); render "
            "these manifests before committing them, or remove the field")
    objects: list[Obj] = []
    resources = spec.get("resources") or []
    # Found by fuzzing: a number raised TypeError, a string was read letter by letter, a NUL
    # byte raised ValueError from the path resolution.
    if not isinstance(resources, list) or not all(isinstance(e, str) for e in resources):
        raise KustomizeError(f"{where}: resources must be a list of paths (strings)")
    namespace = spec.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        raise KustomizeError(f"{where}: namespace must be a string")
    for ref in resources:
        if "\x00" in ref:
            raise KustomizeError(f"{where}: resources: {ref!r} holds a NUL byte")
        if "://" in ref or ref.startswith(("github.com/", "git@")):
            raise KustomizeError(f"{where}: resources: {ref!r}: remote resources are not "
                                 "supported; vendor them into the repository")
        target = (kfile.parent / ref).resolve()
        if not target.is_relative_to(base):
            raise KustomizeError(f"{where}: resources: {ref!r} leads outside the source artifact")
        if target.is_dir():
            objects.extend(_build_dir(target, base, seen))
        elif target.is_file():
            objects.extend(_load(target, base))
        else:
            raise KustomizeError(f"{where}: resources: {ref!r}: no such file or folder")
    if namespace:
        for obj in objects:
            if obj.get("kind") not in _CLUSTER_SCOPED:
                obj.setdefault("metadata", {})["namespace"] = str(namespace)
    return objects


# Kinds that take no namespace; other kinds are assumed namespaced until the cluster says not.
_CLUSTER_SCOPED = frozenset({
    "Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding",
    "PersistentVolume", "StorageClass", "IngressClass", "PriorityClass", "Node",
    "ClusterSupplyChain", "ClusterDelivery", "ClusterSourceTemplate", "ClusterImageTemplate",
    "ClusterConfigTemplate", "ClusterTemplate", "ClusterDeploymentTemplate",
    "ClusterRunTemplate", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
    "APIService",
})


def _read_bytes(file: Path, where: str) -> bytes:
    """At most one byte more than a YAML file may hold (the bounded loader refuses that)."""
    try:
        with file.open("rb") as stream:
            return stream.read(DEFAULT_LIMITS.yaml_bytes + 1)
    except OSError as exc:
        raise KustomizeError(f"{where}: cannot read: {exc}") from exc


def _load(file: Path, base: Path) -> list[Obj]:
    where = _rel(file, base)
    data = _read_bytes(file, where)
    try:
        return [loaded.obj for loaded in load_text(decode_text(data, where), where)]
    except InputError as exc:
        raise KustomizeError(str(exc)) from exc


def _rel(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


# --- postBuild -----------------------------------------------------------------------------------


def substitute(objects: list[Obj], variables: Mapping[str, str]) -> list[Obj]:
    """Flux's post-build variable substitution, on each object's YAML text."""
    out = []
    for obj in objects:
        annotations = meta(obj).get("annotations") or {}
        if annotations.get(SUBSTITUTE_ANNOTATION) == "disabled":
            out.append(obj)
            continue
        text = yaml.safe_dump(obj, sort_keys=False)
        replaced = _VAR.sub(_replacer(variables), text)
        try:
            value = load_yaml(replaced, f"{describe(obj)} after postBuild substitution")
        except InputError as exc:
            raise KustomizeError(f"postBuild substitution produced invalid YAML: {exc}") from exc
        if not isinstance(value, dict):
            raise KustomizeError(f"{describe(obj)}: postBuild substitution did not produce an "
                                 "object")
        out.append(value)
    return out


def _replacer(variables: Mapping[str, str]) -> Callable[[re.Match[str]], str]:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        name, op, default = match.group(1), match.group(2), match.group(3)
        if name in variables and not (op == "-" and variables[name] == ""):
            return str(variables[name])
        # Unset without a default becomes empty, as in Flux (envsubst without strict mode).
        return default or "" if op is not None else ""
    return replace
