"""Admission validation of carto.run objects, as Cartographer's validating webhooks do it.

The OpenAPI schema (`schema.py`) checks shapes; Cartographer's webhooks add the rules a schema
cannot express: a template has exactly one of `template`/`ytt` (we also accept `jinja2`), a
blueprint selects something, names are unique, inputs come from resources of the right kind,
options are well formed, a blueprint param sets exactly one of `value` and `default`, ...

Each rule is a pure function of the object. `admission_problems` returns every problem in the
order Cartographer checks them, so the first one carries the message Cartographer's webhook would
return (it stops at the first). Each problem names the field it is about, so the loader can point
at a file and line; the simulated cluster refuses the apply with the first one, as the API server
does when a webhook denies a request.

Rules and messages follow the newest `pkg/apis/v1alpha1/*_webhook.go`, `*_validations.go` and
`common_validations.go` of Cartographer. Deliberate differences, all toward accepting what
Cartographer's releases and its own kuttl suite accept:

- field selector keys may omit the `workload.`/`deliverable.` prefix (older releases wrote
  `spec.source.git`, newer ones `workload.spec.source.git`);
- a template may set `jinja2` in place of `template` or `ytt`;
- four rules Cartographer's own kuttl suite breaks are warnings, not denials
  (`admission_warnings` says which and why);
- Workload, Deliverable and Runnable names are not checked as DNS-1035 labels: that webhook was
  dropped from Cartographer (its files never moved to the admission.Warnings signature every
  surviving webhook has).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.model.jsonpath import JSONPathError, compile_path

CARTO_GROUP = "carto.run"


@dataclass(frozen=True)
class Problem:
    """One broken rule: the field it is about (dotted, with [i]) and Cartographer's message."""

    field: str
    message: str


# The webhook that enforces each kind's rules in Cartographer (named in denial messages).
WEBHOOKS: dict[str, str] = {
    "ClusterSupplyChain": "supply-chain-validator.cartographer.com",
    "ClusterDelivery": "delivery-validator.cartographer.com",
    "ClusterSourceTemplate": "source-template-validator.cartographer.com",
    "ClusterImageTemplate": "image-template-validator.cartographer.com",
    "ClusterConfigTemplate": "config-template-validator.cartographer.com",
    "ClusterTemplate": "template-validator.cartographer.com",
    "ClusterDeploymentTemplate": "deployment-template-validator.cartographer.com",
    "ClusterRunTemplate": "run-template-validator.cartographer.com",
}

# Fields of the owner a field selector may read (Cartographer's ValidWorkloadPaths/Prefixes and
# ValidDeliverablePaths/Prefixes), without the owner prefix; see `_valid_path`.
_WORKLOAD_PATHS = frozenset({
    "spec.source", "spec.source.git", "spec.source.git.url", "spec.source.git.ref",
    "spec.source.git.ref.branch", "spec.source.git.ref.tag", "spec.source.git.ref.commit",
    "spec.source.image", "spec.source.subPath", "spec.build", "spec.image",
    "spec.serviceAccountName",
})
_WORKLOAD_PREFIXES = ("spec.params", "spec.build.env", "spec.env", "spec.resources",
                      "spec.serviceClaims", "metadata")
_DELIVERABLE_PATHS = frozenset({
    "spec.source", "spec.source.git", "spec.source.git.url", "spec.source.git.ref",
    "spec.source.git.ref.branch", "spec.source.git.ref.tag", "spec.source.git.ref.commit",
    "spec.source.image", "spec.source.subPath", "spec.serviceAccountName",
})
_DELIVERABLE_PREFIXES = ("spec.params", "metadata")


@dataclass(frozen=True)
class _OwnerPaths:
    owner: str
    exact: frozenset[str]
    prefixes: tuple[str, ...]


_WORKLOAD = _OwnerPaths("workload", _WORKLOAD_PATHS, _WORKLOAD_PREFIXES)
_DELIVERABLE = _OwnerPaths("deliverable", _DELIVERABLE_PATHS, _DELIVERABLE_PREFIXES)

_SUPPLY_CHAIN_INPUTS = (("sources", "ClusterSourceTemplate"), ("images", "ClusterImageTemplate"),
                        ("configs", "ClusterConfigTemplate"))

# Label syntax, as metav1.LabelSelectorAsSelector checks it.
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


class _Found(Exception):
    """Internal: the first problem of one Cartographer check, which stops that check."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem


def admission_problems(obj: Mapping[str, Any]) -> list[Problem]:
    """Problems Cartographer's webhook would raise for `obj`; empty for other kinds."""
    api_version = str(obj.get("apiVersion") or "")
    if api_version.rpartition("/")[0] != CARTO_GROUP:
        return []
    check = _CHECKS.get(str(obj.get("kind") or ""))
    return list(check(obj)) if check is not None else []


def admission_warnings(obj: Mapping[str, Any]) -> list[Problem]:
    """Webhook rules Cartographer's own kuttl suite breaks: reported, never refused.

    Cartographer runs its kuttl suite on a bare control plane without its webhooks, so the suite
    holds objects the webhooks would deny (a ClusterRunTemplate stamping a ConfigMap, which has
    no `spec`; a ClusterDeploymentTemplate with neither observedMatches nor observedCompletion;
    a ClusterDelivery passing a deployment to a ClusterTemplate; a template option whose
    selector is empty) and the controller handles them. Refusing them would fail Cartographer's
    own tests.
    """
    api_version = str(obj.get("apiVersion") or "")
    if api_version.rpartition("/")[0] != CARTO_GROUP:
        return []
    check = _WARNINGS.get(str(obj.get("kind") or ""))
    return list(check(obj)) if check is not None else []


def webhook_for(kind: str) -> str | None:
    return WEBHOOKS.get(kind)


# --- templates -------------------------------------------------------------------------------


def template_problems(obj: Mapping[str, Any]) -> Iterator[Problem]:
    """TemplateSpec.validate: the template, its health rule and its retention policy."""
    spec = _map(obj.get("spec"))
    given = [k for k in ("template", "ytt", "jinja2") if spec.get(k) not in (None, "")]
    if not given:
        yield Problem("spec.template", "invalid template: must specify one of template or ytt, "
                                       "found neither")
    elif len(given) > 1:
        yield Problem(f"spec.{given[1]}", "invalid template: must specify one of template or "
                                          f"ytt, found both ({' and '.join(given)})")
    template = spec.get("template")
    if isinstance(template, Mapping) and _map(template.get("metadata")).get("namespace"):
        yield Problem("spec.template.metadata.namespace",
                      "invalid template: template should not set metadata.namespace on the "
                      "child object")
    if spec.get("healthRule") is not None:
        yield from _health_rule_problems(_map(spec.get("healthRule")))
    # The CRD defaults lifecycle to mutable, so an absent lifecycle is mutable too.
    if spec.get("retentionPolicy") is not None and spec.get("lifecycle", "mutable") == "mutable":
        yield Problem("spec.retentionPolicy",
                      "invalid template: if lifecycle is mutable, no retention policy may be set")


def _health_rule_problems(rule: Mapping[str, Any]) -> Iterator[Problem]:
    given = [k for k in ("alwaysHealthy", "singleConditionType", "multiMatch")
             if rule.get(k) not in (None, "")]
    if not given:
        yield Problem("spec.healthRule",
                      "invalid health rule: must specify one of alwaysHealthy, "
                      "singleConditionType or multiMatch, found neither")
        return
    if len(given) > 1:
        yield Problem("spec.healthRule",
                      "invalid health rule: must specify one of alwaysHealthy, "
                      "singleConditionType or multiMatch, found multiple")
        return
    if given[0] == "multiMatch":
        multi = _map(rule.get("multiMatch"))
        for side in ("unhealthy", "healthy"):
            match = _map(multi.get(side))
            if not match.get("matchConditions") and not match.get("matchFields"):
                yield Problem(f"spec.healthRule.multiMatch.{side}",
                              f"invalid multi match health rule: {side} rule has no "
                              "matchFields or matchConditions")


def deployment_template_warnings(obj: Mapping[str, Any]) -> Iterator[Problem]:
    spec = _map(obj.get("spec"))
    if (spec.get("observedMatches") is None) == (spec.get("observedCompletion") is None):
        yield Problem("spec.observedCompletion",
                      "invalid spec: must set exactly one of spec.ObservedMatches and "
                      "spec.ObservedCompletion")


def run_template_problems(obj: Mapping[str, Any]) -> Iterator[Problem]:
    template = _map(obj.get("spec")).get("template")
    if not isinstance(template, Mapping):
        yield Problem("spec.template", "invalid template: failed to parse object: the template "
                                       "must be an object")
        return
    if _map(template.get("metadata")).get("namespace"):
        yield Problem("spec.template.metadata.namespace",
                      "invalid template: template should not set metadata.namespace on the "
                      "child object")


def run_template_warnings(obj: Mapping[str, Any]) -> Iterator[Problem]:
    template = _map(_map(obj.get("spec")).get("template"))
    if template and "spec" not in template:
        yield Problem("spec.template.spec",
                      "invalid template: object must have a spec; templated object: "
                      f"{dict(template)}"[:300])


# --- blueprints ------------------------------------------------------------------------------


def supply_chain_problems(obj: Mapping[str, Any]) -> Iterator[Problem]:
    """ClusterSupplyChain.validateNewState, each check in Cartographer's order."""
    name = _name(obj)
    for problem in _supply_chain_checks(obj):
        yield Problem(problem.field,
                      f"error validating clustersupplychain [{name}]: {problem.message}")


def delivery_problems(obj: Mapping[str, Any]) -> Iterator[Problem]:
    """ClusterDelivery.validateNewState, each check in Cartographer's order."""
    name = _name(obj)
    for problem in _delivery_checks(obj):
        yield Problem(problem.field,
                      f"error validating clusterdelivery [{name}]: {problem.message}")


def _supply_chain_checks(obj: Mapping[str, Any]) -> Iterator[Problem]:
    spec = _map(obj.get("spec"))
    resources = _resources(spec)
    yield from _selector_required(spec)
    yield from _params_problems(spec, resources)
    yield from _blueprint_selector_problems(spec, _WORKLOAD)
    yield from _names_unique(resources, lambda i, name: f"duplicate resource name [{name}] found")
    yield from _option_names_unique(resources)
    for i, resource in enumerate(resources):
        yield from _prefixed(_template_ref_problems(resource, i, _WORKLOAD),
                             f"error validating resource [{resource.get('name')}]: ")
    by_name = {str(r.get("name") or ""): r for r in resources}
    for i, resource in enumerate(resources):
        for key, kind in _SUPPLY_CHAIN_INPUTS:
            for j, ref in enumerate(_list(resource.get(key))):
                ref = _map(ref)
                where = f"spec.resources[{i}].{key}[{j}].resource"
                provider = by_name.get(str(ref.get("resource") or ""))
                prefix = f"invalid {key} for resource [{resource.get('name')}]: "
                if provider is None:
                    yield Problem(where, f"{prefix}[{ref.get('name')}] is provided by unknown "
                                         f"resource [{ref.get('resource')}]")
                elif _map(provider.get("templateRef")).get("kind") != kind:
                    yield Problem(where, f"{prefix}resource [{provider.get('name')}] providing "
                                         f"[{ref.get('name')}] must reference a {kind}")


def _names_unique(
    resources: list[Mapping[str, Any]], message: Callable[[int, str], str]
) -> Iterator[Problem]:
    """Resource names are unique; each webhook words the duplicate its own way."""
    seen: set[str] = set()
    for i, resource in enumerate(resources):
        name = str(resource.get("name") or "")
        if name in seen:
            yield Problem(f"spec.resources[{i}].name", message(i, name))
        seen.add(name)


def _delivery_checks(obj: Mapping[str, Any]) -> Iterator[Problem]:
    spec = _map(obj.get("spec"))
    resources = _resources(spec)
    yield from _selector_required(spec)
    yield from _params_problems(spec, resources)
    yield from _blueprint_selector_problems(spec, _DELIVERABLE)
    yield from _names_unique(
        resources, lambda i, name: f"spec.resources[{i}].name \"{name}\" cannot appear twice")
    yield from _option_names_unique(resources)
    for i, resource in enumerate(resources):
        yield from _prefixed(_template_ref_problems(resource, i, _DELIVERABLE),
                             f"error validating resource [{resource.get('name')}]: ")
    for i, resource in enumerate(resources):
        if _is_deployment(resource) and resource.get("deployment") is None:
            yield Problem(f"spec.resources[{i}].deployment",
                          f"spec.resources[{resource.get('name')}] is a "
                          "ClusterDeploymentTemplate and must "
                          "receive a deployment")
    for i, resource in enumerate(resources):
        if _is_deployment(resource) and resource.get("configs") is not None:
            yield Problem(f"spec.resources[{i}].configs",
                          f"spec.resources[{resource.get('name')}] is a "
                          "ClusterDeploymentTemplate and must not receive config")


def supply_chain_warnings(obj: Mapping[str, Any]) -> Iterator[Problem]:
    yield from _prefixed(_empty_option_selectors(obj),
                         f"error validating clustersupplychain [{_name(obj)}]: ")


def _empty_option_selectors(obj: Mapping[str, Any]) -> Iterator[Problem]:
    for i, resource in enumerate(_resources(_map(obj.get("spec")))):
        for j, raw in enumerate(_list(_map(resource.get("templateRef")).get("options"))):
            option = _map(raw)
            selector = _map(option.get("selector"))
            if not (selector.get("matchLabels") or selector.get("matchExpressions")
                    or selector.get("matchFields")):
                yield Problem(f"spec.resources[{i}].templateRef.options[{j}].selector",
                              f"error validating resource [{resource.get('name')}]: error "
                              f"validating option [{option.get('name') or 'passThrough'}] "
                              "selector: at least one of matchLabels, matchExpressions or "
                              "MatchFields must be specified")


def delivery_warnings(obj: Mapping[str, Any]) -> Iterator[Problem]:
    yield from _prefixed(_empty_option_selectors(obj),
                         f"error validating clusterdelivery [{_name(obj)}]: ")
    for i, resource in enumerate(_resources(_map(obj.get("spec")))):
        if resource.get("deployment") is not None and not _is_deployment(resource):
            yield Problem(f"spec.resources[{i}].deployment",
                          f"error validating clusterdelivery [{_name(obj)}]: "
                          f"spec.resources[{resource.get('name')}] receives a deployment but is "
                          "not a ClusterDeploymentTemplate")


def _is_deployment(resource: Mapping[str, Any]) -> bool:
    return bool(_map(resource.get("templateRef")).get("kind") == "ClusterDeploymentTemplate")


def _selector_required(spec: Mapping[str, Any]) -> Iterator[Problem]:
    if not (spec.get("selector") or spec.get("selectorMatchExpressions")
            or spec.get("selectorMatchFields")):
        yield Problem("spec.selector", "at least one selector, selectorMatchExpression, "
                                       "selectorMatchField must be specified")


def _params_problems(spec: Mapping[str, Any],
                     resources: Sequence[Mapping[str, Any]]) -> Iterator[Problem]:
    for j, param in enumerate(_list(spec.get("params"))):
        yield from _param_problem(_map(param), f"spec.params[{j}]", "")
    for i, resource in enumerate(resources):
        for j, param in enumerate(_list(resource.get("params"))):
            yield from _param_problem(_map(param), f"spec.resources[{i}].params[{j}]",
                                      f"resource [{resource.get('name')}] is invalid: ")


def _param_problem(param: Mapping[str, Any], where: str, prefix: str) -> Iterator[Problem]:
    if ("value" in param) == ("default" in param):
        yield Problem(where, f"{prefix}param [{param.get('name')}] is invalid: must set exactly "
                             "one of value and default")


def _option_names_unique(resources: Sequence[Mapping[str, Any]]) -> Iterator[Problem]:
    for i, resource in enumerate(resources):
        seen: set[str] = set()
        for j, option in enumerate(_list(_map(resource.get("templateRef")).get("options"))):
            name = str(_map(option).get("name") or "")
            if name in seen:
                yield Problem(f"spec.resources[{i}].templateRef.options[{j}].name",
                              f"duplicate template name [{name}] found in options for resource "
                              f"[{resource.get('name')}]")
            seen.add(name)


def _template_ref_problems(resource: Mapping[str, Any], index: int,
                           paths: _OwnerPaths) -> Iterator[Problem]:
    ref = _map(resource.get("templateRef"))
    where = f"spec.resources[{index}].templateRef"
    options = [_map(o) for o in _list(ref.get("options"))]
    if ref.get("name") and options:
        yield Problem(f"{where}.options", "exactly one of templateRef.Name or "
                                          "templateRef.Options must be specified, found both")
        return
    if not ref.get("name") and len(options) < 2:
        if len(options) == 1:
            yield Problem(f"{where}.options", "templateRef.Options must have more than one "
                                              "option")
        else:
            yield Problem(f"{where}.name", "exactly one of templateRef.Name or "
                                           "templateRef.Options must be specified, found neither")
        return
    yield from _first(_options_problems(options, f"{where}.options", paths))


def _options_problems(options: Sequence[Mapping[str, Any]], where: str,
                      paths: _OwnerPaths) -> Iterator[Problem]:
    """validateResourceOptions."""
    pass_throughs = sum(1 for o in options if o.get("passThrough"))
    if pass_throughs > 1:
        yield Problem(where, f"cannot have more than one pass through option, found "
                             f"{pass_throughs}")
    for j, option in enumerate(options):
        if option.get("name") and option.get("passThrough"):
            yield Problem(f"{where}[{j}]", "exactly one of option.Name or option.PassThrough "
                                           "must be specified, found both")
        if not option.get("name") and not option.get("passThrough"):
            yield Problem(f"{where}[{j}]", "exactly one of option.Name or option.PassThrough "
                                           "must be specified, found neither")
        shown = option.get("name") or "passThrough"
        yield from _prefixed(
            _first(_option_selector_problems(_map(option.get("selector")),
                                             f"{where}[{j}].selector", paths)),
            f"error validating option [{shown}] selector: ")
    for j, first in enumerate(options):
        for second in options[j + 1:]:
            if first.get("name") != second.get("name") and \
                    _map(first.get("selector")) == _map(second.get("selector")):
                yield Problem(f"{where}[{j}].selector",
                              "duplicate selector found in options "
                              f"[{first.get('name') or 'passThrough'}, "
                              f"{second.get('name') or 'passThrough'}]")
                return


def _option_selector_problems(selector: Mapping[str, Any], where: str,
                              paths: _OwnerPaths) -> Iterator[Problem]:
    """validateSelector: an option's selector must select something, and be valid."""
    # An empty selector ("at least one of matchLabels, ...") is only a warning: see
    # `admission_warnings`. It never matches, so such an option is never chosen.
    yield from _prefixed(_labels_problems(_map(selector.get("matchLabels")),
                                          f"{where}.matchLabels"), "matchLabels are not valid: ")
    yield from _prefixed(_expressions_problems(_list(selector.get("matchExpressions")),
                                               f"{where}.matchExpressions"),
                         "matchExpressions are not valid: ")
    yield from _field_requirements_problems(_list(selector.get("matchFields")),
                                            f"{where}.matchFields", paths)


def _blueprint_selector_problems(spec: Mapping[str, Any], paths: _OwnerPaths
                                 ) -> Iterator[Problem]:
    """validateLegacySelector: a blueprint's selector, selectorMatchExpressions and fields."""
    yield from _first(_prefixed(_labels_problems(_map(spec.get("selector")), "spec.selector"),
                                "selector is not valid: "))
    yield from _first(_prefixed(_expressions_problems(_list(spec.get("selectorMatchExpressions")),
                                                      "spec.selectorMatchExpressions"),
                                "selectorMatchExpressions are not valid: "))
    yield from _first(_field_requirements_problems(_list(spec.get("selectorMatchFields")),
                                                   "spec.selectorMatchFields", paths))


def _labels_problems(labels: Mapping[str, Any], where: str) -> Iterator[Problem]:
    for key, value in labels.items():
        key_problem = _label_key_problem(str(key))
        if key_problem:
            yield Problem(f"{where}.{key}", f"key: Invalid value: \"{key}\": {key_problem}")
        elif not _valid_label_value(str(value)):
            yield Problem(f"{where}.{key}",
                          f"values[0][{key}]: Invalid value: \"{value}\": a valid label must be "
                          "an empty string or consist of alphanumeric characters, '-', '_' or "
                          "'.', and must start and end with an alphanumeric character")


def _expressions_problems(expressions: Sequence[Any], where: str) -> Iterator[Problem]:
    for i, raw in enumerate(expressions):
        expr = _map(raw)
        at = f"{where}[{i}]"
        operator, values = expr.get("operator"), _list(expr.get("values"))
        if operator in ("In", "NotIn") and not values:
            yield Problem(f"{at}.values", "values: Invalid value: []: for 'in', 'notin' "
                                          "operators, values set can't be empty")
        elif operator in ("Exists", "DoesNotExist") and values:
            yield Problem(f"{at}.values", "values: Invalid value: for 'exists', "
                                          "'doesnotexist' operators, values set must be empty")
        elif operator not in _LABEL_OPERATORS:
            yield Problem(f"{at}.operator", f"\"{operator}\" is not a valid label selector "
                                            "operator")
        key_problem = _label_key_problem(str(expr.get("key") or ""))
        if key_problem:
            yield Problem(f"{at}.key", f"key: Invalid value: \"{expr.get('key')}\": "
                                       f"{key_problem}")


def _field_requirements_problems(reqs: Sequence[Any], where: str,
                                 paths: _OwnerPaths) -> Iterator[Problem]:
    """validateFieldSelectorRequirements."""
    for i, raw in enumerate(reqs):
        req = _map(raw)
        at = f"{where}[{i}]"
        operator, values, key = req.get("operator"), _list(req.get("values")), req.get("key")
        if operator in ("Exists", "DoesNotExist") and values:
            yield Problem(f"{at}.values", f"cannot specify values with operator [{operator}]")
        elif operator in ("In", "NotIn") and not values:
            yield Problem(f"{at}.values", f"must specify values with operator [{operator}]")
        elif operator not in _LABEL_OPERATORS:
            yield Problem(f"{at}.operator", f"operator [{operator}] is invalid")
        elif not _valid_path(str(key or ""), paths):
            yield Problem(f"{at}.key", f"requirement key [{key}] is not a valid path")
        else:
            try:
                compile_path(str(key))
            except JSONPathError as exc:
                yield Problem(f"{at}.key", f"invalid jsonpath for key [{key}]: {exc}")


def _valid_path(key: str, paths: _OwnerPaths) -> bool:
    # Older Cartographer releases wrote keys without the owner prefix; accept both spellings.
    path = key.strip().removeprefix(".").removeprefix(f"{paths.owner}.")
    return path in paths.exact or path.startswith(paths.prefixes)


def _label_key_problem(key: str) -> str:
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return "prefix part must be a lowercase RFC 1123 subdomain"
    if not name or len(name) > 63 or not _LABEL_NAME.match(name):
        return ("name part must consist of alphanumeric characters, '-', '_' or '.', and must "
                "start and end with an alphanumeric character, at most 63 characters")
    return ""


def _valid_label_value(value: str) -> bool:
    return value == "" or (len(value) <= 63 and bool(_LABEL_NAME.match(value)))


# --- helpers ---------------------------------------------------------------------------------


def _first(problems: Iterator[Problem]) -> Iterator[Problem]:
    """Only the first problem: where Cartographer returns on the first error of a check."""
    for problem in problems:
        yield problem
        return


def _prefixed(problems: Iterator[Problem], prefix: str) -> Iterator[Problem]:
    for problem in problems:
        yield Problem(problem.field, prefix + problem.message)


def _resources(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [_map(r) for r in _list(spec.get("resources"))]


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _name(obj: Mapping[str, Any]) -> str:
    return str(_map(obj.get("metadata")).get("name") or "")


_CHECKS: dict[str, Callable[[Mapping[str, Any]], Iterator[Problem]]] = {
    "ClusterSupplyChain": supply_chain_problems,
    "ClusterDelivery": delivery_problems,
    "ClusterSourceTemplate": template_problems,
    "ClusterImageTemplate": template_problems,
    "ClusterConfigTemplate": template_problems,
    "ClusterTemplate": template_problems,
    "ClusterDeploymentTemplate": template_problems,
    "ClusterRunTemplate": run_template_problems,
}

_WARNINGS: dict[str, Callable[[Mapping[str, Any]], Iterator[Problem]]] = {
    "ClusterSupplyChain": supply_chain_warnings,
    "ClusterDelivery": delivery_warnings,
    "ClusterDeploymentTemplate": deployment_template_warnings,
    "ClusterRunTemplate": run_template_warnings,
}
