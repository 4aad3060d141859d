"""The authentication and authorization APIs a client posts to, answered as kube-apiserver
answers them (201 with the object and its `status`):

- authorization.k8s.io/v1 `selfsubjectaccessreviews` (`kubectl auth can-i`),
  `selfsubjectrulesreviews` (`kubectl auth can-i --list`), `subjectaccessreviews` and
  `namespaces/NS/localsubjectaccessreviews` (for those allowed to create them);
- authentication.k8s.io/v1 `selfsubjectreviews` (`kubectl auth whoami`) and `tokenreviews`;
- core/v1 `namespaces/NS/serviceaccounts/NAME/token`, the TokenRequest subresource
  (`kubectl create token NAME`).

The gate has already authorized the `create` on each; these only evaluate and answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.model.errors import LoadError
from reconciler.model.yamlsafe import load_json_bounded
from simulator.apiserver import errors
from simulator.apiserver.authn import (
    BINDABLE,
    DEFAULT_EXPIRATION_SECONDS,
    MIN_EXPIRATION_SECONDS,
    Lookup,
    Tokens,
    UserInfo,
    rfc3339,
)
from simulator.apiserver.errors import ApiError
from simulator.apiserver.protobuf import PROTOBUF, ProtobufError, decode_review
from simulator.apiserver.rbac import Attributes, Rule

AUTHZ = "authorization.k8s.io"
AUTHN = "authentication.k8s.io"
MAX_REVIEW_BYTES = 1024 * 1024
MAX_EXPIRATION_REQUEST = 2**32
REVIEWS = {(AUTHZ, "selfsubjectaccessreviews"): "SelfSubjectAccessReview",
           (AUTHZ, "selfsubjectrulesreviews"): "SelfSubjectRulesReview",
           (AUTHZ, "subjectaccessreviews"): "SubjectAccessReview",
           (AUTHZ, "localsubjectaccessreviews"): "LocalSubjectAccessReview",
           (AUTHN, "selfsubjectreviews"): "SelfSubjectReview",
           (AUTHN, "tokenreviews"): "TokenReview"}
NAMESPACED = {"localsubjectaccessreviews"}


@dataclass(frozen=True)
class Answer:
    code: int
    body: Any


Authorize = Callable[[Attributes], tuple[bool, str]]
RulesFor = Callable[[UserInfo, str], tuple[list[Rule], list[str]]]


def is_review(attrs: Attributes) -> bool:
    """Whether the request is one of those served here (whatever its method)."""
    if not attrs.resource_request:
        return False
    if (attrs.group, attrs.resource) in REVIEWS:
        return not attrs.subresource and not attrs.name
    return (attrs.group, attrs.resource, attrs.subresource) == ("", "serviceaccounts", "token")


class Reviews:
    def __init__(self, authorize: Authorize, rules_for: RulesFor, tokens: Tokens,
                 lookup: Lookup, now: Callable[[], float]) -> None:
        self.authorize, self.rules_for, self.tokens = authorize, rules_for, tokens
        self.lookup, self.now = lookup, now

    def answer(self, method: str, attrs: Attributes, body: bytes,
               content_type: str = "application/json") -> Answer:
        if attrs.version != "v1":
            raise _not_found()
        if attrs.resource == "serviceaccounts":
            if attrs.verb != "create":
                raise errors.method_not_allowed(method)
            return self._token_request(attrs, _decode(body, "TokenRequest", AUTHN,
                                                              content_type))
        kind = REVIEWS[(attrs.group, attrs.resource)]
        if (attrs.resource in NAMESPACED) != bool(attrs.namespace):
            raise _not_found()
        if attrs.verb != "create":
            raise errors.method_not_allowed(method)
        review = _decode(body, kind, attrs.group, content_type)
        spec = review.get("spec") or {}
        if not isinstance(spec, dict):
            raise errors.bad_request(f"{kind} in version \"v1\" cannot be handled as a {kind}: "
                                     "spec is not an object")
        user = attrs.user
        if kind == "SelfSubjectReview":
            return self._reply(review, kind, AUTHN, {"userInfo": user.to_json()})
        if kind == "TokenReview":
            return self._token_review(review, spec)
        if kind == "SelfSubjectRulesReview":
            return self._rules_review(review, spec, user)
        if kind in ("SubjectAccessReview", "LocalSubjectAccessReview"):
            user = _spec_user(kind, spec)
        return self._access_review(review, kind, spec, user, attrs.namespace)

    # --- reviews ----------------------------------------------------------------------------

    def _access_review(self, review: dict[str, Any], kind: str, spec: Mapping[str, Any],
                       user: UserInfo, namespace: str) -> Answer:
        resource = spec.get("resourceAttributes")
        non_resource = spec.get("nonResourceAttributes")
        if (resource is None) == (non_resource is None):
            raise _invalid(kind, "spec.resourceAttributes: Invalid value: \"null\": exactly one "
                                 "of nonResourceAttributes or resourceAttributes must be "
                                 "specified", "spec.resourceAttributes")
        if kind == "LocalSubjectAccessReview":
            if non_resource is not None:
                raise _invalid(kind, "spec.nonResourceAttributes: Invalid value: \"...\": "
                                     "disallowed on this kind of request",
                               "spec.nonResourceAttributes")
            if str(_mapping(resource).get("namespace") or "") != namespace:
                raise errors.bad_request(
                    f"spec.resourceAttributes.namespace must match namespace: {namespace}")
        if resource is not None:
            r = _mapping(resource)
            attrs = Attributes(user, str(r.get("verb") or ""), True, "",
                               str(r.get("group") or ""), str(r.get("version") or ""),
                               str(r.get("resource") or ""), str(r.get("subresource") or ""),
                               str(r.get("namespace") or ""), str(r.get("name") or ""))
        else:
            n = _mapping(non_resource)
            attrs = Attributes(user, str(n.get("verb") or ""), False, str(n.get("path") or ""))
        allowed, reason = self.authorize(attrs)
        status: dict[str, Any] = {"allowed": allowed}
        if reason:
            status["reason"] = reason
        return self._reply(review, kind, AUTHZ, status)

    def _rules_review(self, review: dict[str, Any], spec: Mapping[str, Any],
                      user: UserInfo) -> Answer:
        rules, problems = self.rules_for(user, str(spec.get("namespace") or ""))
        resource_rules: list[dict[str, Any]] = []
        non_resource_rules: list[dict[str, Any]] = []
        for rule in rules:
            verbs = [str(v) for v in rule.get("verbs") or []]
            if rule.get("nonResourceURLs"):
                non_resource_rules.append({"verbs": verbs, "nonResourceURLs": [
                    str(u) for u in rule.get("nonResourceURLs") or []]})
            if rule.get("resources") or rule.get("apiGroups"):
                one: dict[str, Any] = {"verbs": verbs}
                for field in ("apiGroups", "resources", "resourceNames"):
                    if rule.get(field):
                        one[field] = [str(v) for v in rule.get(field) or []]
                resource_rules.append(one)
        status: dict[str, Any] = {"resourceRules": resource_rules,
                                  "nonResourceRules": non_resource_rules,
                                  "incomplete": bool(problems)}
        if problems:
            status["evaluationError"] = "; ".join(dict.fromkeys(problems))
        return self._reply(review, "SelfSubjectRulesReview", AUTHZ, status)

    def _token_review(self, review: dict[str, Any], spec: Mapping[str, Any]) -> Answer:
        token = spec.get("token")
        if not isinstance(token, str) or not token:
            raise _invalid("TokenReview", "spec.token: Required value: token must be "
                                          "specified", "spec.token", name="")
        audiences = [str(a) for a in spec.get("audiences") or []]
        found = self.tokens.review(token, self.lookup, *([audiences] if audiences else []))
        if found is None:
            return self._reply(review, "TokenReview", AUTHN,
                               {"user": {}, "error": "invalid bearer token"})
        user, shared = found
        return self._reply(review, "TokenReview", AUTHN, {
            "authenticated": True, "user": user.to_json(), "audiences": list(shared)})

    def _token_request(self, attrs: Attributes, request: dict[str, Any]) -> Answer:
        name, namespace = attrs.name, attrs.namespace
        sa = self.lookup("ServiceAccount", namespace, name)
        if sa is None:
            raise errors.not_found("serviceaccounts", "", name)
        spec = request.get("spec") or {}
        if not isinstance(spec, dict):
            raise errors.bad_request("TokenRequest: spec is not an object")
        seconds = spec.get("expirationSeconds")
        if seconds is None:
            seconds = DEFAULT_EXPIRATION_SECONDS
        if not isinstance(seconds, int) or isinstance(seconds, bool):
            raise errors.bad_request("TokenRequest: spec.expirationSeconds must be an integer")
        if seconds < MIN_EXPIRATION_SECONDS:
            raise _invalid("TokenRequest", f"spec.expirationSeconds: Invalid value: {seconds}: "
                                           "may not specify a duration less than 10 minutes",
                           "spec.expirationSeconds", name=name, group=AUTHN)
        if seconds > MAX_EXPIRATION_REQUEST:
            raise _invalid("TokenRequest", f"spec.expirationSeconds: Invalid value: {seconds}: "
                                           "may not specify a duration larger than 2^32 seconds",
                           "spec.expirationSeconds", name=name, group=AUTHN)
        audiences = [str(a) for a in spec.get("audiences") or []]
        bound = None
        ref = spec.get("boundObjectRef")
        if ref:
            bound = self._bound(_mapping(ref), namespace, name)
        issued = self.tokens.issue(sa, audiences, seconds, bound)
        out_spec = {**spec, "audiences": list(issued.audiences),
                    "expirationSeconds": issued.seconds, "boundObjectRef": ref or None}
        return Answer(201, {
            "kind": "TokenRequest", "apiVersion": f"{AUTHN}/v1",
            "metadata": {"name": name, "namespace": namespace,
                         "creationTimestamp": rfc3339(self.now())},
            "spec": out_spec,
            "status": {"token": issued.token, "expirationTimestamp": rfc3339(issued.expires)}})

    def _bound(self, ref: Mapping[str, Any], namespace: str, sa_name: str) -> Mapping[str, Any]:
        kind = str(ref.get("kind") or "")
        if kind not in BINDABLE:
            raise errors.bad_request(f"cannot bind token for serviceaccount {sa_name!r} to "
                                     f"object of kind {kind!r}: only Pod, Secret and Node are "
                                     "supported")
        name = str(ref.get("name") or "")
        obj = self.lookup(kind, namespace if kind != "Node" else "", name)
        if obj is None:
            raise errors.not_found(BINDABLE[kind], "", name)
        uid = (obj.get("metadata") or {}).get("uid")
        if ref.get("uid") and ref.get("uid") != uid:
            raise ApiError(409, f"the UID in the bound object reference ({ref.get('uid')}) "
                                f"does not match the UID in record. The object might have "
                                f"been deleted and then recreated", "Conflict")
        return {**obj, "kind": kind}

    def _reply(self, review: dict[str, Any], kind: str, group: str,
               status: dict[str, Any]) -> Answer:
        meta = review.get("metadata") if isinstance(review.get("metadata"), dict) else {}
        return Answer(201, {"kind": kind, "apiVersion": f"{group}/v1",
                            "metadata": {**(meta or {}), "creationTimestamp": None},
                            "spec": review.get("spec") or {}, "status": status})


def _spec_user(kind: str, spec: Mapping[str, Any]) -> UserInfo:
    user = str(spec.get("user") or "")
    groups = tuple(str(g) for g in spec.get("groups") or [])
    if not user and not groups:
        raise _invalid(kind, "spec.user: Invalid value: \"\": at least one of user or group "
                             "must be specified", "spec.user")
    extra = {str(k): tuple(str(v) for v in values or [])
             for k, values in _mapping(spec.get("extra")).items()}
    return UserInfo(user, str(spec.get("uid") or ""), groups, extra)


def _decode(body: bytes, kind: str, group: str, content_type: str) -> dict[str, Any]:
    media = content_type.split(";")[0].strip().lower()
    try:
        if len(body) > MAX_REVIEW_BYTES:
            raise errors.bad_request(f"a {kind} body may be at most {MAX_REVIEW_BYTES} bytes")
        if media == PROTOBUF:
            value: Any = decode_review(body)
        else:
            value = load_json_bounded(body or b"{}", "request body", max_bytes=MAX_REVIEW_BYTES)
    except (LoadError, ProtobufError) as exc:
        raise errors.bad_request(f"error decoding the request body: {exc}") from exc
    if not isinstance(value, dict):
        raise errors.bad_request(f"{kind} in version \"v1\" cannot be handled as a {kind}: "
                                 "the body is not an object")
    api_version, given = value.get("apiVersion"), value.get("kind")
    if (api_version and api_version != f"{group}/v1") or (given and given != kind):
        raise errors.bad_request(f"the body of the request ({api_version}, Kind={given}) does "
                                 f"not match the resource it was sent to ({group}/v1, "
                                 f"Kind={kind})")
    return value


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _invalid(kind: str, message: str, field: str, name: str = "",
             group: str = AUTHZ) -> ApiError:
    quoted = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return ApiError(422, f"{kind}.{group} {quoted} is invalid: {message}", "Invalid",
                    name=name, group=group, kind=kind, causes=[{"reason": "FieldValueInvalid",
                                        "message": message.split(": ", 1)[-1], "field": field}])


def _not_found() -> ApiError:
    return ApiError(404, "the server could not find the requested resource", "NotFound")
