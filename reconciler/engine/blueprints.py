"""The blueprint (ClusterSupplyChain, ClusterDelivery) status controller.

A blueprint is ready when every template its resources name exists. This module owns that test
(`templates_ready`, also used by the owner controller so an owner's SupplyChainReady/DeliveryReady
mirrors its blueprint) and writes the blueprint's own `TemplatesReady` and `Ready` conditions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import structlog

from reconciler.backends.base import Backend, write_status
from reconciler.chains.blueprint import CARTO_API, TemplateUse, referenced_templates
from reconciler.model.conditions import FALSE, TRUE, Condition, merge_conditions
from reconciler.model.errors import ReconcilerError
from reconciler.model.objects import Obj, meta, spec_of, status_of
from reconciler.runtime.clock import Clock, rfc3339

log = structlog.get_logger(__name__)

TEMPLATES_READY = "TemplatesReady"
READY = "Ready"
TEMPLATES_NOT_FOUND = "TemplatesNotFound"

TemplateExists = Callable[[str, str], bool]


def templates_ready(blueprint: Obj, exists: TemplateExists) -> Condition:
    """`TemplatesReady`: False naming each resource whose template (or option) is missing."""
    return templates_ready_of(referenced_templates(spec_of(blueprint).get("resources")), exists)


def templates_ready_of(uses: Sequence[TemplateUse], exists: TemplateExists) -> Condition:
    """`templates_ready` of a blueprint's `referenced_templates`."""
    missing = [resource for resource, kind, name in uses if not exists(kind, name)]
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
            write_status(self.backend, {**obj, "status": status})
            log.info("blueprint status written", blueprint=meta(obj).get("name"),
                     kind=self.kind, ready=templates.status)
        return None
