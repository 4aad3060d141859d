"""Typed views of blueprints (ClusterSupplyChain, ClusterDelivery) and the templates they use."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from reconciler.model.objects import Obj, name_of, spec_of

CARTO_API = "carto.run/v1alpha1"

SOURCE_TEMPLATE = "ClusterSourceTemplate"
IMAGE_TEMPLATE = "ClusterImageTemplate"
CONFIG_TEMPLATE = "ClusterConfigTemplate"
DEPLOYMENT_TEMPLATE = "ClusterDeploymentTemplate"
PLAIN_TEMPLATE = "ClusterTemplate"

# Which outputs each template kind produces, and from which spec field their path comes.
OUTPUT_PATHS: dict[str, tuple[tuple[str, str], ...]] = {
    SOURCE_TEMPLATE: (("url", "urlPath"), ("revision", "revisionPath")),
    DEPLOYMENT_TEMPLATE: (),
    IMAGE_TEMPLATE: (("image", "imagePath"),),
    CONFIG_TEMPLATE: (("config", "configPath"),),
    PLAIN_TEMPLATE: (),
}


@dataclass(frozen=True)
class ResourceRef:
    resource: str
    name: str


@dataclass(frozen=True)
class BlueprintResource:
    name: str
    template_kind: str
    template_name: str
    options: tuple[Mapping[str, Any], ...]
    params: tuple[Mapping[str, Any], ...]
    sources: tuple[ResourceRef, ...]
    images: tuple[ResourceRef, ...]
    configs: tuple[ResourceRef, ...]
    deployment: ResourceRef | None

    @cached_property
    def inputs(self) -> tuple[str, ...]:
        """Resource names this resource reads, in Cartographer's order for `status.inputs`
        (worked out once: a parsed blueprint serves every owner reconcile of its version)."""
        names = [r.resource for r in self.sources] + [r.resource for r in self.images]
        if self.deployment is not None:
            names.append(self.deployment.resource)
        names += [r.resource for r in self.configs]
        return tuple(names)


TemplateUse = tuple[str, str, str]
"""(resource name, template kind, template name): one template a blueprint resource may use."""


def referenced_templates(resources: Any) -> tuple[TemplateUse, ...]:
    """Each template the blueprint's `spec.resources` name: a resource's `templateRef.name`, or
    every named option when it has none."""
    found: list[TemplateUse] = []
    for res in resources or ():
        if not isinstance(res, Mapping):
            continue
        ref = res.get("templateRef") or {}
        kind = str(ref.get("kind") or "")
        if ref.get("name"):
            found.append((str(res.get("name")), kind, str(ref["name"])))
            continue
        found.extend((str(res.get("name")), kind, str(opt["name"]))
                     for opt in ref.get("options") or []
                     if isinstance(opt, Mapping) and opt.get("name"))
    return tuple(found)


@dataclass(frozen=True)
class Blueprint:
    kind: str
    name: str
    obj: Obj
    resources: tuple[BlueprintResource, ...]
    params: tuple[Mapping[str, Any], ...] = field(default=())

    @cached_property
    def templates(self) -> tuple[TemplateUse, ...]:
        """`referenced_templates` of this blueprint (worked out once: a parsed blueprint serves
        every owner reconcile of its version)."""
        return referenced_templates(spec_of(self.obj).get("resources"))

    @classmethod
    def of(cls, obj: Obj) -> Blueprint:
        spec = spec_of(obj)
        return cls(
            kind=str(obj.get("kind")),
            name=name_of(obj),
            obj=obj,
            resources=tuple(_resource(r) for r in spec.get("resources") or []),
            params=tuple(spec.get("params") or []),
        )


def _refs(items: Any) -> tuple[ResourceRef, ...]:
    return tuple(
        ResourceRef(str(i.get("resource", "")), str(i.get("name") or i.get("resource", "")))
        for i in items or []
        if isinstance(i, Mapping)
    )


def _resource(raw: Mapping[str, Any]) -> BlueprintResource:
    ref = raw.get("templateRef") or {}
    deployment = raw.get("deployment")
    return BlueprintResource(
        name=str(raw.get("name", "")),
        template_kind=str(ref.get("kind", "")),
        template_name=str(ref.get("name") or ""),
        options=tuple(ref.get("options") or []),
        params=tuple(raw.get("params") or []),
        sources=_refs(raw.get("sources")),
        images=_refs(raw.get("images")),
        configs=_refs(raw.get("configs")),
        deployment=(
            ResourceRef(str(deployment.get("resource", "")),
                        str(deployment.get("name") or deployment.get("resource", "")))
            if isinstance(deployment, Mapping) else None
        ),
    )


@dataclass(frozen=True)
class Template:
    kind: str
    name: str
    obj: Obj

    @cached_property
    def spec(self) -> dict[str, Any]:
        return spec_of(self.obj)

    @property
    def output_paths(self) -> list[tuple[str, str]]:
        """(output name, JSONPath) pairs this template's kind reads from the stamped object."""
        return [(out, str(self.spec.get(field_)))
                for out, field_ in OUTPUT_PATHS.get(self.kind, ()) if self.spec.get(field_)]

    @property
    def lifecycle(self) -> str:
        return str(self.spec.get("lifecycle") or "mutable")

    @property
    def health_rule(self) -> Mapping[str, Any] | None:
        rule = self.spec.get("healthRule")
        if isinstance(rule, Mapping):
            return rule
        # A tekton template's runs report success in their `Succeeded` condition.
        if self.lifecycle == "tekton":
            return {"singleConditionType": "Succeeded"}
        # A ClusterTemplate has no outputs to wait for: Cartographer treats it as always healthy.
        if self.kind == PLAIN_TEMPLATE:
            return {"alwaysHealthy": {}}
        return None

    @property
    def default_params(self) -> dict[str, Any]:
        return {str(p.get("name")): p.get("default") for p in self.spec.get("params") or []
                if isinstance(p, Mapping)}
