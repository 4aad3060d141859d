"""`metav1.Status` error bodies, worded and coded as kube-apiserver words and codes them.

Handlers raise `ApiError`; the server turns it into the JSON body and the HTTP status. Messages
follow the API server's (`configmaps "x" not found`, `Operation cannot be fulfilled on ...`), so
kubectl prints what a person would see against a real cluster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

REASONS = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
    405: "MethodNotAllowed", 406: "NotAcceptable", 409: "Conflict", 410: "Expired",
    411: "LengthRequired", 413: "RequestEntityTooLarge", 415: "UnsupportedMediaType",
    422: "Invalid", 500: "InternalError", 503: "ServiceUnavailable",
}


class ApiError(Exception):
    """An API request that fails: `code` (HTTP), `reason`, and the Status `details`."""

    def __init__(self, code: int, message: str, reason: str | None = None, *,
                 name: str = "", group: str = "", kind: str = "",
                 causes: Sequence[Mapping[str, str]] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason if reason is not None else REASONS.get(code, "")
        self.details: dict[str, Any] = {}
        if name:
            self.details["name"] = name
        if group:
            self.details["group"] = group
        if kind:
            self.details["kind"] = kind
        if causes:
            self.details["causes"] = [dict(c) for c in causes]

    def status(self) -> dict[str, Any]:
        return status_body(self.code, self.message, self.reason, self.details)


def status_body(code: int, message: str, reason: str,
                details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                            "status": "Failure", "message": message}
    if reason:
        body["reason"] = reason
    if details:
        body["details"] = dict(details)
    body["code"] = code
    return body


def success_status(name: str, group: str, kind: str, uid: str) -> dict[str, Any]:
    """The body of a DELETE that removed the object at once (the built-in kinds answer this)."""
    details: dict[str, Any] = {"name": name, "kind": kind, "uid": uid}
    if group:
        details["group"] = group
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": details}


def qualified(resource: str, group: str) -> str:
    """`configmaps`, `workloads.carto.run`: how the API server names a resource in messages."""
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, group: str, name: str) -> ApiError:
    return ApiError(404, f"{qualified(resource, group)} {_quote(name)} not found",
                    name=name, group=group, kind=resource)


def already_exists(resource: str, group: str, name: str) -> ApiError:
    return ApiError(409, f"{qualified(resource, group)} {_quote(name)} already exists",
                    "AlreadyExists", name=name, group=group, kind=resource)


def stale(resource: str, group: str, name: str) -> ApiError:
    return ApiError(409, f"Operation cannot be fulfilled on {qualified(resource, group)} "
                         f"{_quote(name)}: the object has been modified; please apply your "
                         "changes to the latest version and try again",
                    "Conflict", name=name, group=group, kind=resource)


def invalid(kind: str, group: str, name: str, message: str,
            field: str | None = None) -> ApiError:
    causes = [{"reason": "FieldValueInvalid", "message": message, "field": field}] if field \
        else []
    return ApiError(422, message, "Invalid", name=name, group=group, kind=kind, causes=causes)


def bad_request(message: str) -> ApiError:
    return ApiError(400, message, "BadRequest")


def method_not_allowed(method: str) -> ApiError:
    return ApiError(405, f"the server does not allow this method on the requested resource "
                         f"({method})", "MethodNotAllowed")


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(415, f"the body of the request was in an unknown format - accepted media "
                         f"types include: application/json-patch+json, "
                         f"application/merge-patch+json, application/apply-patch+yaml "
                         f"(got {content_type!r})", "UnsupportedMediaType")


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
