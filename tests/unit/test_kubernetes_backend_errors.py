"""How the API server's refusals map onto the product's errors.

Each case is a real `ApiException`, built the way the client builds one: a urllib3 response with
the API server's `Status` body goes through `RESTResponse` and `ApiException.from_response`, and,
as the `DynamicClient` raises them, through `kubernetes.dynamic.exceptions.api_exception`. The
Status bodies are the shapes the API server sends for each case.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
import urllib3
from kubernetes.client.exceptions import ApiException
from kubernetes.client.rest import RESTResponse
from kubernetes.dynamic.exceptions import DynamicApiError, api_exception

from reconciler.backends.kubernetes import Operation, apply_conflict, map_api_exception, status_of
from reconciler.model.conflicts import ApplyConflict, FieldConflict
from reconciler.model.errors import (
    BackendError,
    Conflict,
    NotFound,
    ReconcilerError,
    Rejected,
    Transient,
)


def _status(code: int, reason: str, message: str, details: dict[str, Any] | None = None
            ) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "details": details or {}, "code": code}


def _from_response(code: int, http_reason: str, body: dict[str, Any] | str) -> ApiException:
    data = body if isinstance(body, str) else json.dumps(body)
    content_type = "text/plain; charset=utf-8" if isinstance(body, str) else "application/json"
    raw = urllib3.HTTPResponse(body=io.BytesIO(data.encode()), status=code, reason=http_reason,
                               headers={"Content-Type": content_type}, preload_content=False)
    response = RESTResponse(raw)
    response.read()  # type: ignore[no-untyped-call]  # kubernetes: unannotated
    try:
        ApiException.from_response(http_resp=response, body=None, data=None)
    except ApiException as exc:
        return exc
    raise AssertionError("from_response did not raise")


def _dynamic(code: int, http_reason: str, body: dict[str, Any] | str) -> ApiException:
    error = _from_response(code, http_reason, body)
    wrapped = api_exception(error)  # type: ignore[no-untyped-call]  # kubernetes: unannotated
    assert isinstance(wrapped, DynamicApiError)
    return wrapped


MAKERS: dict[str, Callable[[int, str, dict[str, Any] | str], ApiException]] = {
    "client": _from_response, "dynamic": _dynamic}

PATCH_CM = Operation("patch", "configmaps", "team-a", "cfg")

SSA_CONFLICT = _status(
    409, "Conflict",
    'Apply failed with 2 conflicts: conflicts with "kubectl-edit" using v1:\n- .data.a\n'
    'conflict with "helm" using v1: .data.b',
    {"name": "cfg", "kind": "configmaps", "causes": [
        {"reason": "FieldManagerConflict", "message": 'conflict with "kubectl-edit" using v1',
         "field": ".data.a"},
        {"reason": "FieldManagerConflict",
         "message": 'conflict with "helm" with subresource "status" using v1',
         "field": ".data.b"},
    ]})

RBAC = _status(
    403, "Forbidden",
    'deployments.apps "web" is forbidden: User "system:serviceaccount:ops:reconciler" cannot '
    'patch resource "deployments" in API group "apps" in the namespace "team-a"',
    {"name": "web", "group": "apps", "kind": "deployments"})

CASES: list[tuple[str, int, str, dict[str, Any] | str, type[ReconcilerError], str | None,
                  str]] = [
    # id, code, HTTP reason, body, error type, Rejected field, text in the message
    ("not-found", 404, "Not Found",
     _status(404, "NotFound", 'configmaps "cfg" not found', {"name": "cfg", "kind": "configmaps"}),
     NotFound, None, 'configmaps "cfg" not found'),
    ("namespace-missing", 404, "Not Found",
     _status(404, "NotFound", 'namespaces "nope" not found',
             {"name": "nope", "kind": "namespaces"}),
     NotFound, None, 'namespaces "nope" not found'),
    ("not-found-plain-text", 404, "Not Found", "404 page not found\n",
     NotFound, None, "404 page not found"),
    ("already-exists", 409, "Conflict",
     _status(409, "AlreadyExists", 'events "cfg.1" already exists',
             {"name": "cfg.1", "kind": "events"}),
     Conflict, None, "already exists"),
    ("invalid", 422, "Unprocessable Entity",
     _status(422, "Invalid",
             'Deployment.apps "web" is invalid: spec.template.metadata.labels: Invalid value: '
             'map[string]string{"app":"x"}: `selector` does not match template `labels`',
             {"name": "web", "group": "apps", "kind": "Deployment", "causes": [
                 {"reason": "FieldValueInvalid",
                  "message": "Invalid value: ...: `selector` does not match template `labels`",
                  "field": "spec.template.metadata.labels"}]}),
     Rejected, "spec.template.metadata.labels", "selector` does not match"),
    ("bad-request-no-causes", 400, "Bad Request",
     _status(400, "BadRequest", ".spec.replicas: field not declared in schema"),
     Rejected, None, "field not declared in schema"),
    ("webhook-400", 400, "Bad Request",
     _status(400, "BadRequest",
             'admission webhook "supply-chain-validator.cartographer.com" denied the request: '
             "duplicate resource name 'source'",
             {"causes": [{"reason": "FieldValueDuplicate", "field": "spec.resources[1].name"}]}),
     Rejected, "spec.resources[1].name", "denied the request"),
    ("webhook-403", 403, "Forbidden",
     _status(403, "Forbidden",
             'admission webhook "policy.example.com" denied the request: images must be signed'),
     Rejected, None, "images must be signed"),
    ("quota", 403, "Forbidden",
     _status(403, "Forbidden", 'pods "p" is forbidden: exceeded quota: compute, requested: '
             "cpu=1, used: cpu=4, limited: cpu=4"),
     Rejected, None, "exceeded quota"),
    ("namespace-terminating", 403, "Forbidden",
     _status(403, "Forbidden", 'configmaps "cfg" is forbidden: unable to create new content in '
             'namespace team-a because it is being terminated',
             {"name": "cfg", "kind": "configmaps", "causes": [
                 {"reason": "NamespaceTerminating", "message": "namespace team-a is being "
                  "terminated", "field": "metadata.namespace"}]}),
     Transient, None, "being terminated"),
    ("rbac", 403, "Forbidden", RBAC, BackendError, None, "'patch' verb on 'deployments.apps'"),
    ("rbac-core-group", 403, "Forbidden",
     _status(403, "Forbidden", 'configmaps is forbidden: User "jane" cannot list resource '
             '"configmaps" in API group "" at the cluster scope'),
     BackendError, None, "'list' verb on 'configmaps'"),
    ("unauthorized", 401, "Unauthorized", _status(401, "Unauthorized", "Unauthorized"),
     BackendError, None, "rejected the credentials"),
    ("method-not-allowed", 405, "Method Not Allowed",
     _status(405, "MethodNotAllowed", "the server does not allow this method on the requested "
             "resource"),
     Rejected, None, "does not support this verb"),
    ("gone", 410, "Gone", _status(410, "Expired", "too old resource version: 1 (42)"),
     Transient, None, "too old resource version"),
    ("throttled", 429, "Too Many Requests",
     _status(429, "TooManyRequests", "the server has received too many requests"),
     Transient, None, "too many requests"),
    ("internal", 500, "Internal Server Error",
     _status(500, "InternalError", 'Internal error occurred: failed calling webhook "x"'),
     Transient, None, "failed calling webhook"),
    ("unavailable", 503, "Service Unavailable",
     _status(503, "ServiceUnavailable", "the server is currently unable to handle the request"),
     Transient, None, "unable to handle"),
    ("timeout", 504, "Gateway Timeout",
     _status(504, "Timeout", "the server was unable to return a response in the time allotted"),
     Transient, None, "time allotted"),
]


@pytest.mark.parametrize("maker", sorted(MAKERS))
@pytest.mark.parametrize(("code", "http_reason", "body", "error", "field", "text"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_api_exceptions_map_to_the_error_tree(
    maker: str, code: int, http_reason: str, body: dict[str, Any] | str,
    error: type[ReconcilerError], field: str | None, text: str,
) -> None:
    exc = MAKERS[maker](code, http_reason, body)
    mapped = map_api_exception(exc, PATCH_CM)
    assert type(mapped) is error, mapped
    assert text in str(mapped)
    if isinstance(mapped, Rejected):
        assert mapped.field == field


@pytest.mark.parametrize("maker", sorted(MAKERS))
def test_a_server_side_apply_conflict_lists_each_field_and_its_manager(maker: str) -> None:
    exc = MAKERS[maker](409, "Conflict", SSA_CONFLICT)
    mapped = map_api_exception(exc, PATCH_CM, applied="ConfigMap/team-a/cfg",
                               field_manager="reconciler")
    assert isinstance(mapped, ApplyConflict)
    assert mapped.conflicts == (FieldConflict(".data.a", "kubectl-edit"),
                                FieldConflict(".data.b", "helm"))
    assert str(mapped).startswith("Apply failed with 2 conflict(s) on ConfigMap/team-a/cfg for "
                                  "field manager 'reconciler': .data.a (owned by kubectl-edit)")


def test_a_conflict_outside_an_apply_is_a_plain_conflict() -> None:
    exc = _from_response(409, "Conflict", SSA_CONFLICT)
    mapped = map_api_exception(exc, PATCH_CM)
    assert type(mapped) is Conflict


def test_an_optimistic_lock_conflict_during_an_apply_is_a_plain_conflict() -> None:
    body = _status(409, "Conflict", 'Operation cannot be fulfilled on configmaps "cfg": the '
                   "object has been modified; please apply your changes to the latest version",
                   {"name": "cfg", "kind": "configmaps"})
    mapped = map_api_exception(_from_response(409, "Conflict", body), PATCH_CM, applied="cm")
    assert type(mapped) is Conflict and "has been modified" in str(mapped)


def test_the_rbac_hint_names_verb_resource_and_what_was_being_done() -> None:
    mapped = map_api_exception(_from_response(403, "Forbidden", RBAC),
                               Operation("patch", "deployments.apps", "team-a", "web"))
    message = str(mapped)
    assert "forbidden to patch deployments.apps 'web' in namespace 'team-a'" in message
    assert "Grant the reconciler's identity the 'patch' verb on 'deployments.apps'" in message


def test_a_failure_before_any_answer_is_transient() -> None:
    # What the client raises for a TLS failure: status 0 and the error in `reason`.
    exc = ApiException(status=0, reason="SSLError\ncertificate verify failed")
    mapped = map_api_exception(exc, Operation("get", "configmaps", "team-a", "cfg"))
    assert isinstance(mapped, Transient) and mapped.reason == "Unreachable"
    assert "certificate verify failed" in str(mapped)


def test_transient_errors_carry_the_status_reason() -> None:
    mapped = map_api_exception(_from_response(
        503, "Service Unavailable", _status(503, "ServiceUnavailable", "busy")), PATCH_CM)
    assert isinstance(mapped, Transient) and mapped.reason == "ServiceUnavailable"


def test_status_bodies_that_are_not_json_objects_are_ignored() -> None:
    assert status_of(ApiException(status=500, reason="x", body="<html>")) == {}
    assert status_of(ApiException(status=500, reason="x", body="[1]")) == {}
    assert status_of(ApiException(status=500, reason="x")) == {}
    assert apply_conflict({"details": {"causes": "nonsense"}}, "cm", "m") is None
