"""When a ClusterDeploymentTemplate's stamped object has finished deploying, and what it passes on.

A deployment template passes its `deployment` input (url, revision) through as its output, but
only once the stamped object shows the deployment is complete: every `observedMatches` input/output
pair agrees, or `observedCompletion` holds (observedGeneration caught up, the succeeded condition
met and the failed one not).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.chains.errors import (
    DeploymentConditionNotMetError,
    DeploymentFailedConditionMetError,
    ResourceError,
    TemplateStampError,
    UnknownResourceError,
)
from reconciler.model.jsonpath import JSONPathError, PathNotFoundError, evaluate_single
from reconciler.model.objects import Obj
from reconciler.model.selectors import display


def deployment_outputs(
    resource_name: str,
    template_spec: Mapping[str, Any],
    stamped: Obj,
    deployment_input: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The url and revision to pass on; raises a `ResourceError` until the deployment is done."""
    completion = template_spec.get("observedCompletion")
    if isinstance(completion, Mapping):
        _observed_completion(resource_name, completion, stamped)
    else:
        _observed_matches(resource_name, template_spec.get("observedMatches") or [], stamped)
    if deployment_input is None:
        raise UnknownResourceError(
            f"resource [{resource_name}]: deployment not found in upstream template")
    return {"url": deployment_input.get("url"), "revision": deployment_input.get("revision")}


def _not_met(resource_name: str, message: str) -> ResourceError:
    return DeploymentConditionNotMetError(
        f"resource [{resource_name}] condition not met: {message}")


def _observed_matches(resource_name: str, matches: Any, stamped: Obj) -> None:
    for match in matches:
        in_path, out_path = str(match.get("input")), str(match.get("output"))
        try:
            got_in = evaluate_single(in_path, stamped)
        except JSONPathError as exc:
            raise _not_met(resource_name,
                           f"could not find value on input [{in_path}]: {exc}") from exc
        try:
            got_out = evaluate_single(out_path, stamped)
        except JSONPathError as exc:
            raise _not_met(resource_name,
                           f"could not find value on output [{out_path}]: {exc}") from exc
        if got_in != got_out:
            raise _not_met(resource_name,
                           f"input [{in_path}] and output [{out_path}] do not match: "
                           f"{display(got_in)} != {display(got_out)}")


def _observed_completion(resource_name: str, completion: Mapping[str, Any], stamped: Obj) -> None:
    generation = evaluate_single("metadata.generation", stamped)
    try:
        observed = evaluate_single("status.observedGeneration", stamped)
    except JSONPathError as exc:
        raise TemplateStampError(
            f"resource [{resource_name}] cannot satisfy observedCompletion without "
            "observedGeneration in object status") from exc
    if display(observed) != display(generation):
        raise _not_met(resource_name,
                       f"status.observedGeneration does not equal metadata.generation: "
                       f"{display(observed)} != {display(generation)}")
    failed = completion.get("failed")
    if isinstance(failed, Mapping):
        key = str(failed.get("key"))
        try:
            value = evaluate_single(key, stamped)
        except PathNotFoundError:
            value = None
        except JSONPathError as exc:
            raise _not_met(resource_name, f"failed to evaluate {key}: {exc}") from exc
        if value is not None and display(value) == display(failed.get("value")):
            raise DeploymentFailedConditionMetError(
                f"resource [{resource_name}] failed condition met: deployment failure "
                f"condition [{key}] was: {display(value)}")
    succeeded = completion.get("succeeded") or {}
    key = str(succeeded.get("key"))
    try:
        value = evaluate_single(key, stamped)
    except JSONPathError as exc:
        raise _not_met(resource_name,
                       f"failed to evaluate succeededCondition.Key [{key}]: {exc}") from exc
    if display(value) != display(succeeded.get("value")):
        raise _not_met(resource_name,
                       f"deployment success condition [{key}] was: {display(value)}, "
                       f"expected: {display(succeeded.get('value'))}")
