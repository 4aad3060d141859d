"""Stamping one run of a Runnable from its ClusterRunTemplate.

This module owns what a run looks like before it reaches the cluster: the `$(selected)$` object
chosen by `spec.selector`, the template context (`runnable`, `selected`), the carto.run labels,
the ownerReference to the Runnable, and the name. Runs are immutable: a template with
`metadata.generateName` gets the name an API server would give it (`<generateName><5 chars>`),
except that the 5 characters come from a hash of the content instead of a random source. Equal
inputs therefore give an equal name, which is how "do not stamp again while the inputs are
unchanged" is decided with one `get`.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

from reconciler.backends.base import Backend
from reconciler.chains.interpolate import InterpolationError, interpolate
from reconciler.chains.realizer import stamp_metadata
from reconciler.chains.runnable_errors import RunStampError
from reconciler.model.errors import BackendError
from reconciler.model.jsonpath import JSONPathError
from reconciler.model.objects import Obj, meta, name_of, namespace_of, spec_of

RUN_TEMPLATE_KIND: Final = "ClusterRunTemplate"
RUNNABLE_NAME_LABEL: Final = "carto.run/runnable-name"
RUN_TEMPLATE_NAME_LABEL: Final = "carto.run/run-template-name"

# The API server's `names.SimpleNameGenerator`: consonants and digits that cannot spell words.
_ALPHABET: Final = "bcdfghjklmnpqrstvwxz2456789"
_SUFFIX_LENGTH: Final = 5
_MAX_NAME_LENGTH: Final = 63


def run_labels(runnable: Obj, template_name: str) -> dict[str, str]:
    return {RUNNABLE_NAME_LABEL: name_of(runnable), RUN_TEMPLATE_NAME_LABEL: template_name}


def go_map(labels: Mapping[str, str]) -> str:
    """Go's `%v` of a map[string]string: `map[a:1 b:2]`, keys sorted."""
    return "map[" + " ".join(f"{k}:{v}" for k, v in sorted(labels.items())) + "]"


def resolve_selected(backend: Backend, runnable: Obj) -> Obj | None:
    """The one object `spec.selector` matches, in the Runnable's namespace for namespaced kinds.

    Raises `RunStampError` (Cartographer reports selector failures as TemplateStampFailure).
    """
    selector = spec_of(runnable).get("selector")
    if not isinstance(selector, Mapping):
        return None
    resource = selector.get("resource") or {}
    api_version, kind = str(resource.get("apiVersion") or ""), str(resource.get("kind") or "")
    labels = {str(k): str(v) for k, v in (selector.get("matchingLabels") or {}).items()}
    prefix = (f"unable to resolve selector [{go_map(labels)}], apiVersion [{api_version}], "
              f"kind [{kind}]")
    try:
        info = backend.kind_info(api_version, kind)
        namespace = namespace_of(runnable) if info.namespaced else None
        found = backend.list(api_version, kind, namespace, labels)
    except BackendError as exc:
        raise RunStampError(f"{prefix}: failed to list objects matching selector: {exc}. "
                            "Check spec.selector.resource of the Runnable") from exc
    if not found:
        raise RunStampError(f"{prefix}: selector did not match any objects")
    if len(found) > 1:
        names = ", ".join(name_of(o) for o in found)
        raise RunStampError(f"{prefix}: selector matched multiple objects ({names}); "
                            "add labels to spec.selector.matchingLabels so exactly one matches")
    return found[0]


def template_context(runnable: Obj, selected: Obj | None) -> dict[str, Any]:
    """`runnable` as Cartographer marshals it (runTemplateRef.kind filled in) and `selected`."""
    view = copy.deepcopy(runnable)
    meta(view).pop("managedFields", None)
    ref = spec_of(view).get("runTemplateRef")
    if isinstance(ref, dict):
        ref["kind"] = RUN_TEMPLATE_KIND
    return {"runnable": view, "selected": selected}


def stamp_run(run_template: Obj, runnable: Obj, selected: Obj | None) -> Obj:
    """The run to create: template interpolated, labelled, owned by the Runnable and named."""
    template_name = name_of(run_template)
    prefix = f"unable to stamp object for run template [{template_name}]"
    body = spec_of(run_template).get("template")
    try:
        stamped = interpolate(body, template_context(runnable, selected))
    except (InterpolationError, JSONPathError) as exc:
        raise RunStampError(f"{prefix}: {exc}") from exc
    if not (isinstance(stamped, dict) and stamped.get("apiVersion") and stamped.get("kind")):
        raise RunStampError(f"{prefix}: spec.template of ClusterRunTemplate [{template_name}] "
                            "is not a Kubernetes object (apiVersion and kind are required)")
    stamped = copy.deepcopy(stamped)
    stamped.pop("status", None)
    stamp_metadata(stamped, runnable, run_labels(runnable, template_name))
    metadata = meta(stamped)
    if not metadata.get("name"):
        if not metadata.get("generateName"):
            raise RunStampError(
                f"{prefix}: spec.template.metadata of ClusterRunTemplate [{template_name}] needs "
                "generateName (each run is a new object) or name")
        metadata["name"] = generated_name(str(metadata["generateName"]), stamped)
    return stamped


def generated_name(generate_name: str, content: Obj) -> str:
    """`generateName` plus 5 characters derived from `content` (name excluded)."""
    body = copy.deepcopy(content)
    meta(body).pop("name", None)
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).digest()
    suffix = "".join(_ALPHABET[b % len(_ALPHABET)] for b in digest[:_SUFFIX_LENGTH])
    # The API server truncates the prefix so the whole name fits 63 characters.
    return generate_name[: _MAX_NAME_LENGTH - _SUFFIX_LENGTH] + suffix


def display_name(run: Obj) -> str:
    """The name Cartographer shows before the API server named the run: generateName if set."""
    return str(meta(run).get("generateName") or name_of(run))
