"""Admission rules of Cartographer's webhooks: one row per rule, with Cartographer's message."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler.loader import load_text
from reconciler.model.crds import product_crds
from reconciler.model.errors import Rejected, ValidationError
from reconciler.model.objects import Obj
from reconciler.model.validation import admission_problems, admission_warnings
from simulator.clock import VirtualClock
from simulator.cluster import InMemoryCluster

API = "carto.run/v1alpha1"


def _template(kind: str = "ClusterTemplate", **spec: Any) -> Obj:
    body: dict[str, Any] = {"template": {"apiVersion": "v1", "kind": "ConfigMap",
                                         "metadata": {"name": "x"}}}
    body.update(spec)
    return {"apiVersion": API, "kind": kind, "metadata": {"name": "t"},
            "spec": {k: v for k, v in body.items() if v is not None}}


def _supply_chain() -> Obj:
    return {"apiVersion": API, "kind": "ClusterSupplyChain", "metadata": {"name": "sc"},
            "spec": {"selector": {"app": "web"}, "resources": [
                {"name": "source", "templateRef": {"kind": "ClusterSourceTemplate",
                                                   "name": "src"}},
                {"name": "image", "templateRef": {"kind": "ClusterImageTemplate",
                                                  "name": "img"},
                 "sources": [{"resource": "source", "name": "source"}]},
                {"name": "config", "templateRef": {"kind": "ClusterConfigTemplate",
                                                   "name": "cfg"},
                 "images": [{"resource": "image", "name": "image"}]},
            ]}}


def _delivery() -> Obj:
    return {"apiVersion": API, "kind": "ClusterDelivery", "metadata": {"name": "d"},
            "spec": {"selector": {"app": "web"}, "resources": [
                {"name": "source", "templateRef": {"kind": "ClusterSourceTemplate",
                                                   "name": "src"}},
                {"name": "deployer", "templateRef": {"kind": "ClusterDeploymentTemplate",
                                                     "name": "dep"},
                 "deployment": {"resource": "source"}},
            ]}}


def _options(*options: dict[str, Any]) -> Callable[[Obj], None]:
    def change(obj: Obj) -> None:
        ref = obj["spec"]["resources"][0]["templateRef"]
        ref.pop("name", None)
        ref["options"] = list(options)
    return change


def _set(path: str, value: Any) -> Callable[[Obj], None]:
    def change(obj: Obj) -> None:
        target: Any = obj
        steps = path.split("/")
        for step in steps[:-1]:
            target = target[int(step)] if step.isdigit() else target[step]
        last = steps[-1]
        if value is _DELETE:
            del target[last]
        elif last.isdigit():
            target[int(last)] = value
        else:
            target[last] = value
    return change


_DELETE = object()
A = {"name": "a", "selector": {"matchLabels": {"tier": "a"}}}
B = {"name": "b", "selector": {"matchLabels": {"tier": "b"}}}

BLUEPRINT_CASES: list[tuple[str, Callable[[], Obj], Callable[[Obj], None], str, str]] = [
    ("selector required", _supply_chain, _set("spec/selector", _DELETE), "spec.selector",
     "error validating clustersupplychain [sc]: at least one selector, "
     "selectorMatchExpression, selectorMatchField must be specified"),
    ("blueprint param with value and default", _supply_chain,
     _set("spec/params", [{"name": "p", "value": 1, "default": 2}]), "spec.params[0]",
     "error validating clustersupplychain [sc]: param [p] is invalid: must set exactly one of "
     "value and default"),
    ("blueprint param with neither", _supply_chain, _set("spec/params", [{"name": "p"}]),
     "spec.params[0]", "param [p] is invalid: must set exactly one of value and default"),
    ("resource param with both", _supply_chain,
     _set("spec/resources/1/params", [{"name": "p", "value": 1, "default": 2}]),
     "spec.resources[1].params[0]",
     "resource [image] is invalid: param [p] is invalid: must set exactly one of value and "
     "default"),
    ("invalid label value in selector", _supply_chain, _set("spec/selector", {"app": "no way"}),
     "spec.selector.app", "selector is not valid: "),
    ("match expression In without values", _supply_chain,
     _set("spec/selectorMatchExpressions", [{"key": "app", "operator": "In"}]),
     "spec.selectorMatchExpressions[0].values",
     "selectorMatchExpressions are not valid: values: Invalid value"),
    ("match field on an unknown path", _supply_chain,
     _set("spec/selectorMatchFields", [{"key": "workload.status.x", "operator": "Exists"}]),
     "spec.selectorMatchFields[0].key", "requirement key [workload.status.x] is not a valid path"),
    ("match field Exists with values", _supply_chain,
     _set("spec/selectorMatchFields", [{"key": "workload.spec.image", "operator": "Exists",
                                        "values": ["x"]}]),
     "spec.selectorMatchFields[0].values", "cannot specify values with operator [Exists]"),
    ("match field In without values", _supply_chain,
     _set("spec/selectorMatchFields", [{"key": "spec.image", "operator": "In"}]),
     "spec.selectorMatchFields[0].values", "must specify values with operator [In]"),
    ("duplicate resource name", _supply_chain, _set("spec/resources/2/name", "source"),
     "spec.resources[2].name",
     "error validating clustersupplychain [sc]: duplicate resource name [source] found"),
    ("input from an unknown resource", _supply_chain,
     _set("spec/resources/1/sources", [{"resource": "nope", "name": "s"}]),
     "spec.resources[1].sources[0].resource",
     "invalid sources for resource [image]: [s] is provided by unknown resource [nope]"),
    ("input from a resource of the wrong kind", _supply_chain,
     _set("spec/resources/2/images", [{"resource": "source", "name": "i"}]),
     "spec.resources[2].images[0].resource",
     "invalid images for resource [config]: resource [source] providing [i] must reference a "
     "ClusterImageTemplate"),
    ("config input from an image template", _supply_chain,
     _set("spec/resources/2/configs", [{"resource": "image", "name": "c"}]),
     "spec.resources[2].configs[0].resource", "must reference a ClusterConfigTemplate"),
    ("templateRef with both name and options", _supply_chain,
     lambda o: o["spec"]["resources"][0]["templateRef"].update(options=[A, B]),
     "spec.resources[0].templateRef.options",
     "error validating resource [source]: exactly one of templateRef.Name or "
     "templateRef.Options must be specified, found both"),
    ("templateRef with neither name nor options", _supply_chain,
     _set("spec/resources/0/templateRef", {"kind": "ClusterSourceTemplate"}),
     "spec.resources[0].templateRef.name", "found neither"),
    ("a single option", _supply_chain, _options(A), "spec.resources[0].templateRef.options",
     "templateRef.Options must have more than one option"),
    ("duplicate option names", _supply_chain, _options(A, {**B, "name": "a"}),
     "spec.resources[0].templateRef.options[1].name",
     "duplicate template name [a] found in options for resource [source]"),
    ("option with name and passThrough", _supply_chain, _options({**A, "passThrough": "s"}, B),
     "spec.resources[0].templateRef.options[0]",
     "exactly one of option.Name or option.PassThrough must be specified, found both"),
    ("option with neither name nor passThrough", _supply_chain,
     _options({"selector": A["selector"]}, B), "spec.resources[0].templateRef.options[0]",
     "exactly one of option.Name or option.PassThrough must be specified, found neither"),
    ("two pass-through options", _supply_chain,
     _options({"passThrough": "x", "selector": A["selector"]},
              {"passThrough": "y", "selector": B["selector"]}),
     # Cartographer checks duplicate option names first; pass-throughs have none.
     "spec.resources[0].templateRef.options[1].name",
     "duplicate template name [] found in options for resource [source]"),
    ("duplicate option selectors", _supply_chain, _options(A, {**B, "selector": A["selector"]}),
     "spec.resources[0].templateRef.options[0].selector",
     "duplicate selector found in options [a, b]"),
    ("option selector with an invalid match field", _supply_chain,
     _options(A, {**B, "selector": {"matchFields": [{"key": "spec.nope",
                                                      "operator": "Exists"}]}}),
     "spec.resources[0].templateRef.options[1].selector.matchFields[0].key",
     "error validating option [b] selector: requirement key [spec.nope] is not a valid path"),
    ("option selector with a bad expression", _supply_chain,
     _options(A, {**B, "selector": {"matchExpressions": [{"key": "k", "operator": "Exists",
                                                           "values": ["v"]}]}}),
     "spec.resources[0].templateRef.options[1].selector.matchExpressions[0].values",
     "matchExpressions are not valid:"),
    ("delivery duplicate resource name", _delivery, _set("spec/resources/1/name", "source"),
     "spec.resources[1].name",
     "error validating clusterdelivery [d]: spec.resources[1].name \"source\" cannot appear "
     "twice"),
    ("deployment template without a deployment", _delivery,
     _set("spec/resources/1/deployment", _DELETE), "spec.resources[1].deployment",
     "spec.resources[deployer] is a ClusterDeploymentTemplate and must receive a deployment"),
    ("deployment template receiving configs", _delivery,
     _set("spec/resources/1/configs", []), "spec.resources[1].configs",
     "spec.resources[deployer] is a ClusterDeploymentTemplate and must not receive config"),
    ("delivery option on a workload-only path", _delivery,
     _options(A, {**B, "selector": {"matchFields": [{"key": "deliverable.spec.image",
                                                      "operator": "Exists"}]}}),
     "spec.resources[0].templateRef.options[1].selector.matchFields[0].key",
     "requirement key [deliverable.spec.image] is not a valid path"),
]


@pytest.mark.parametrize(("name", "make", "change", "field", "message"), BLUEPRINT_CASES,
                         ids=[c[0] for c in BLUEPRINT_CASES])
def test_blueprint_rules(name: str, make: Callable[[], Obj], change: Callable[[Obj], None],
                         field: str, message: str) -> None:
    obj = make()
    assert admission_problems(obj) == []
    change(obj)
    problems = admission_problems(obj)
    assert problems, name
    assert problems[0].field == field
    assert message in problems[0].message


TEMPLATE_CASES: list[tuple[str, Obj, str, str]] = [
    ("neither template nor ytt", _template(template=None), "spec.template",
     "invalid template: must specify one of template or ytt, found neither"),
    ("template and ytt", _template(ytt="x: 1"), "spec.ytt",
     "invalid template: must specify one of template or ytt, found both"),
    ("template and jinja2", _template(jinja2="x: 1"), "spec.jinja2", "found both"),
    ("child namespace", _template(template={"apiVersion": "v1", "kind": "ConfigMap",
                                            "metadata": {"name": "x", "namespace": "other"}}),
     "spec.template.metadata.namespace",
     "invalid template: template should not set metadata.namespace on the child object"),
    ("health rule with nothing", _template(healthRule={}), "spec.healthRule",
     "must specify one of alwaysHealthy, singleConditionType or multiMatch, found neither"),
    ("health rule with two rules", _template(healthRule={"alwaysHealthy": {},
                                                         "singleConditionType": "Ready"}),
     "spec.healthRule", "found multiple"),
    ("multi match without healthy rules",
     _template(healthRule={"multiMatch": {"healthy": {}, "unhealthy": {
         "matchConditions": [{"type": "Ready", "status": "False"}]}}}),
     "spec.healthRule.multiMatch.healthy",
     "invalid multi match health rule: healthy rule has no matchFields or matchConditions"),
    ("retention on a mutable template",
     _template(retentionPolicy={"maxFailedRuns": 1, "maxSuccessfulRuns": 1}),
     "spec.retentionPolicy",
     "invalid template: if lifecycle is mutable, no retention policy may be set"),
    ("source template checked too", _template("ClusterSourceTemplate", template=None),
     "spec.template", "found neither"),
    ("run template child namespace",
     {"apiVersion": API, "kind": "ClusterRunTemplate", "metadata": {"name": "r"},
      "spec": {"template": {"apiVersion": "v1", "kind": "Pod",
                            "metadata": {"namespace": "x"}, "spec": {}}}},
     "spec.template.metadata.namespace", "should not set metadata.namespace"),
]


@pytest.mark.parametrize(("name", "obj", "field", "message"), TEMPLATE_CASES,
                         ids=[c[0] for c in TEMPLATE_CASES])
def test_template_rules(name: str, obj: Obj, field: str, message: str) -> None:
    problems = admission_problems(obj)
    assert problems, name
    assert (problems[0].field, message in problems[0].message) == (field, True)


ACCEPTED: list[tuple[str, Obj]] = [
    ("plain template", _template()),
    ("jinja2 template", _template(template=None, jinja2="apiVersion: v1")),
    ("immutable template with retention",
     _template(lifecycle="immutable",
               retentionPolicy={"maxFailedRuns": 1, "maxSuccessfulRuns": 1})),
    ("supply chain", _supply_chain()),
    ("delivery", _delivery()),
    ("field keys without the owner prefix (older releases)",
     {**_supply_chain(), "spec": {**_supply_chain()["spec"], "selector": {},
                                  "selectorMatchFields": [{"key": "spec.source.git",
                                                           "operator": "Exists"}]}}),
    ("kinds without webhook rules",
     {"apiVersion": API, "kind": "Workload", "metadata": {"name": "a.b"}, "spec": {}}),
    ("other groups", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
]


@pytest.mark.parametrize(("name", "obj"), ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_accepted(name: str, obj: Obj) -> None:
    assert admission_problems(obj) == []


def _empty_option_selector() -> Obj:
    obj = _supply_chain()
    _options(A, {**B, "selector": {"matchExpressions": []}})(obj)
    return obj


def _deployment_to_plain_template() -> Obj:
    obj = _delivery()
    obj["spec"]["resources"].append({"name": "task", "deployment": {"resource": "deployer"},
                                     "templateRef": {"kind": "ClusterTemplate", "name": "t"}})
    return obj


WARNINGS: list[tuple[str, Obj, str]] = [
    ("run template without spec",
     {"apiVersion": API, "kind": "ClusterRunTemplate", "metadata": {"name": "r"},
      "spec": {"template": {"apiVersion": "v1", "kind": "ConfigMap", "data": {}}}},
     "object must have a spec"),
    ("deployment template with neither observed field", _template("ClusterDeploymentTemplate"),
     "must set exactly one of spec.ObservedMatches and spec.ObservedCompletion"),
    ("empty option selector", _empty_option_selector(),
     "at least one of matchLabels, matchExpressions or MatchFields must be specified"),
    ("deployment passed to a ClusterTemplate", _deployment_to_plain_template(),
     "spec.resources[task] receives a deployment but is not a ClusterDeploymentTemplate"),
]


@pytest.mark.parametrize(("name", "obj", "message"), WARNINGS, ids=[c[0] for c in WARNINGS])
def test_rules_cartographers_suite_breaks_are_warnings(name: str, obj: Obj,
                                                       message: str) -> None:
    assert admission_problems(obj) == []
    assert [w for w in admission_warnings(obj) if message in w.message], name


SUPPLY_CHAIN_YAML = """\
apiVersion: carto.run/v1alpha1
kind: ClusterSupplyChain
metadata:
  name: sc
spec:
  selector:
    app: web
  resources:
    - name: source
      templateRef: {kind: ClusterSourceTemplate, name: src}
    - name: image
      templateRef: {kind: ClusterImageTemplate, name: img}
      sources:
        - resource: missing
          name: source
"""


def test_the_loader_refuses_with_file_line_object_and_field(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        load_text(SUPPLY_CHAIN_YAML, "chain.yaml")
    error = caught.value
    assert error.source == "chain.yaml:14"
    assert error.obj == "ClusterSupplyChain/sc"
    assert error.field == "spec.resources[1].sources[0].resource"
    assert "[source] is provided by unknown resource [missing]" in str(error)


def test_the_simulated_cluster_denies_as_the_webhook_does() -> None:
    cluster = InMemoryCluster(VirtualClock())
    for crd in product_crds():
        cluster.apply(crd)
    bad = _supply_chain()
    bad["spec"]["resources"][2]["name"] = "source"
    with pytest.raises(Rejected) as caught:
        cluster.apply(copy.deepcopy(bad))
    assert str(caught.value) == (
        'admission webhook "supply-chain-validator.cartographer.com" denied the request: '
        "error validating clustersupplychain [sc]: duplicate resource name [source] found")
    assert caught.value.field == "spec.resources[2].name"
    assert cluster.get(API, "ClusterSupplyChain", "", "sc") is None
