"""Owner status as Cartographer writes it: `status.resources[]` and the owner's conditions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.chains.blueprint import CARTO_API, PLAIN_TEMPLATE
from reconciler.chains.health import health_condition
from reconciler.chains.realizer import Realized
from reconciler.chains.yamlenc import summarize
from reconciler.model.conditions import FALSE, TRUE, UNKNOWN, Condition, merge_conditions
from reconciler.model.kinds import KindInfo
from reconciler.model.objects import Obj, meta

READY = "Ready"
RESOURCES_SUBMITTED = "ResourcesSubmitted"
RESOURCES_HEALTHY = "ResourcesHealthy"
RESOURCE_SUBMITTED = "ResourceSubmitted"


@dataclass(frozen=True)
class ResourceStatus:
    entry: dict[str, Any]
    # None for a pass-through: Cartographer evaluates health only for a resource with a template,
    # so a pass-through carries ResourceSubmitted and Ready and takes no part in ResourcesHealthy.
    healthy: Condition | None
    submitted: Condition


def _submitted_of(realized: Realized) -> Condition:
    """The resource's `ResourceSubmitted` condition."""
    if realized.error is not None:
        return Condition(RESOURCE_SUBMITTED, realized.error.status, realized.error.reason,
                         str(realized.error))
    if realized.pass_through:
        return Condition(RESOURCE_SUBMITTED, TRUE, "PassThrough")
    return Condition(RESOURCE_SUBMITTED, TRUE, "ResourceSubmissionComplete")


def resource_status(
    realized: Realized,
    previous: Mapping[str, Any] | None,
    kind_info: KindInfo | None,
    now: str,
) -> ResourceStatus:
    """One `status.resources[]` entry; keeps the previous entry when nothing was stamped."""
    res = realized.resource
    submitted = _submitted_of(realized)

    keep_previous = (realized.stamped is None or realized.template is None) and previous
    if keep_previous and previous is not None and not realized.pass_through:
        entry = {k: v for k, v in previous.items() if k != "conditions"}
        old_healthy = next((c for c in previous.get("conditions") or []
                            if c.get("type") == "Healthy"), None)
        healthy = (Condition("Healthy", str(old_healthy.get("status")),
                             str(old_healthy.get("reason") or ""),
                             str(old_healthy.get("message") or ""))
                   if old_healthy else Condition("Healthy", UNKNOWN, "NoResource"))
    else:
        entry = {"name": res.name}
        stamped = realized.stamped
        if stamped is not None:
            m = meta(stamped)
            ref = {"apiVersion": stamped.get("apiVersion"), "kind": stamped.get("kind"),
                   "name": str(m.get("name", ""))}
            namespace = m.get("namespace")
            if namespace:
                ref["namespace"] = str(namespace)
            if kind_info is not None:
                ref["resource"] = kind_info.qualified_resource
            entry["stampedRef"] = ref
        if realized.template is not None:
            entry["templateRef"] = {"apiVersion": CARTO_API, "kind": realized.template.kind,
                                    "name": realized.template.name}
        if res.inputs:
            entry["inputs"] = [{"name": n} for n in res.inputs]
        outputs = _outputs(realized, previous, now)
        if outputs:
            entry["outputs"] = outputs
        if realized.pass_through:
            healthy = None
        elif realized.template is not None and realized.stamped is None and (
                realized.template.kind == PLAIN_TEMPLATE
                and "healthRule" not in realized.template.spec):
            # A ClusterTemplate is always healthy once it stamped something; before, it is not.
            healthy = Condition("Healthy", UNKNOWN, "NoStampedObject")
        elif realized.health is not None:
            healthy = realized.health  # derived by the realizer, by the same rule as below
        elif realized.template is not None:
            healthy = health_condition(realized.template.health_rule, realized.stamped,
                                       bool(realized.outputs))
        else:
            healthy = Condition("Healthy", UNKNOWN, "NoResource")
    own = [submitted] if healthy is None else [submitted, healthy]
    ready = _summarize("Ready", own, true_reason="Ready")
    previous_conditions = (previous or {}).get("conditions")
    entry["conditions"] = merge_conditions(previous_conditions, [*own, ready], now)
    return ResourceStatus(entry, healthy, submitted)


def _outputs(realized: Realized, previous: Mapping[str, Any] | None, now: str) -> list[Obj]:
    if realized.outputs is None:
        return list((previous or {}).get("outputs") or [])
    before = {o.get("name"): o for o in (previous or {}).get("outputs") or []}
    out = []
    for name, value in realized.outputs.items():
        shown, digest = summarize(value)
        entry = {"name": name, "preview": shown, "digest": digest,
                 "lastTransitionTime": now}
        old = before.get(name)
        if old is not None and old.get("digest") == entry["digest"]:
            entry["lastTransitionTime"] = old.get("lastTransitionTime", now)
        out.append(entry)
    return out


def _summarize(type_: str, conditions: Sequence[Condition], true_reason: str) -> Condition:
    """False if any is False, else Unknown if any is Unknown, else True: reason of the first."""
    for wanted in (FALSE, UNKNOWN):
        for cond in conditions:
            if cond.status == wanted:
                return Condition(type_, wanted, cond.reason, cond.message)
    return Condition(type_, TRUE, true_reason)


def ready_of(conditions: Sequence[Condition]) -> Condition:
    """Cartographer's Ready of an owner: the first False, else the first Unknown, else True."""
    return _summarize(READY, conditions, true_reason="Ready")


def submitted_conditions(
    first_error: Realized | None, healths: Sequence[Condition]
) -> tuple[Condition, Condition]:
    """ResourcesSubmitted (the first resource error, as Cartographer reports it) and
    ResourcesHealthy of an owner whose blueprint is ready and was realized."""
    if first_error is not None and first_error.error is not None:
        err = first_error.error
        submitted = Condition(RESOURCES_SUBMITTED, err.status, err.reason, str(err))
    else:
        submitted = Condition(RESOURCES_SUBMITTED, TRUE, "ResourceSubmissionComplete")
    return submitted, resources_healthy(healths)


def resources_healthy(healths: Sequence[Condition]) -> Condition:
    if any(h.status == FALSE for h in healths):
        bad = next(h for h in healths if h.status == FALSE)
        return Condition(RESOURCES_HEALTHY, FALSE, "HealthyConditionRule", bad.message)
    if any(h.status == UNKNOWN for h in healths):
        return Condition(RESOURCES_HEALTHY, UNKNOWN, "HealthyConditionRule")
    return Condition(RESOURCES_HEALTHY, TRUE, "HealthyConditionRule")

