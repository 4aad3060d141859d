"""The blueprint (ClusterSupplyChain, ClusterDelivery) status controller.

A blueprint is ready when every template its resources name exists. This module owns that test
(`templates_ready`, also used by the owner controller so an owner's SupplyChainReady/DeliveryReady
mirrors its blueprint) and writes the blueprint's own `TemplatesReady` and `Ready` conditions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import structlog

from reconciler.backends.base import Backend
from reconciler.chains.blueprint import CARTO_API
from reconciler.model.conditions import FALSE, TRUE, Condition, merge_conditions
from reconciler.model.errors import ReconcilerError
from reconciler.model.objects import Obj, meta, spec_of, status_of
from reconciler.runtime.clock import Clock, rfc3339

log = structlog.get_logger(__name__)

TEMPLATES_READY = "TemplatesReady"
READY = "Ready"
TEMPLATES_NOT_FOUND = "TemplatesNotFound"

TemplateExists = Callable[[str, str], bool]


def _referenced(resource: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(kind, name) of each template a resource may use: its name, or every named option."""
    ref = resource.get("templateRef") or {}
    kind = str(ref.get("kind") or "")
    if ref.get("name"):
        return [(kind, str(ref["name"]))]
    return [(kind, str(opt["name"])) for opt in ref.get("options") or []
            if isinstance(opt, Mapping) and opt.get("name")]


def templates_ready(blueprint: Obj, exists: TemplateExists) -> Condition:
    """`TemplatesReady`: False naming each resource whose template (or option) is missing."""
    missing = [str(res.get("name")) for res in spec_of(blueprint).get("resources") or []
               if isinstance(res, Mapping)
               for kind, name in _referenced(res) if not exists(kind, name)]
    if missing:
        return Condition(TEMPLATES_READY, FALSE, TEMPLATES_NOT_FOUND,
                         f"did not find the template of the resource(s) [{', '.join(missing)}]")
    return Condition(TEMPLATES_READY, TRUE, "Ready")


def blueprint_ready(templates: Condition) -> Condition:
    if templates.status == TRUE:
        return Condition(READY, TRUE, "Ready")
    return Condition(READY, templates.status, templates.reason, templates.message)


class BlueprintController:
    """Writes `status.conditions` and `status.observedGeneration` of one blueprint kind."""

    def __init__(self, backend: Backend, clock: Clock, kind: str) -> None:
        self.backend = backend
        self.clock = clock
        self.kind = kind
        self.name = f"{kind.lower()}-controller"

    def watches(self) -> Sequence[tuple[str, str]]:
        return [(CARTO_API, self.kind)]

    def template_exists(self, kind: str, name: str) -> bool:
        try:
            return self.backend.get(CARTO_API, kind, "", name) is not None
        except ReconcilerError:
            # A kind no API serves cannot hold the template: it is missing.
            return False

    def reconcile(self, obj: Obj) -> float | None:
        templates = templates_ready(obj, self.template_exists)
        previous = status_of(obj)
        status = dict(previous)
        status["observedGeneration"] = meta(obj).get("generation", 1)
        status["conditions"] = merge_conditions(
            previous.get("conditions"), [templates, blueprint_ready(templates)],
            rfc3339(self.clock.now()))
        if status != previous:
            self.backend.update_status({**obj, "status": status})
            log.info("blueprint status written", blueprint=meta(obj).get("name"),
                     kind=self.kind, ready=templates.status)
        return None
