"""The request's way in, in kube-apiserver's order: authentication (done by the server before
the body is read, with `authenticate`), impersonation, authorization, then the authn/authz
APIs served here (`access_review`) or the resource API (`handlers.Api`).

With `rbac=False` (the default of `reconciler serve`) every authenticated user may do
everything, as with kube-apiserver's `--authorization-mode=AlwaysAllow`: impersonation is
honoured, `kubectl auth can-i` says yes. With `rbac=True`, the RBAC authorizer decides (see
`rbac`), writes to roles and bindings cannot grant more than the writer holds
(`escalation`), and the server starts with kube's default ClusterRoles and bindings.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from simulator.apiserver import escalation
from simulator.apiserver.access_review import Reviews, is_review
from simulator.apiserver.authn import ANONYMOUS_USER, Tokens, UserInfo
from simulator.apiserver.errors import ApiError
from simulator.apiserver.handlers import Api, Request, Response
from simulator.apiserver.impersonation import ImpersonationError, impersonate, requested
from simulator.apiserver.rbac import (
    RBAC_API,
    Attributes,
    Authorizer,
    Rule,
    cluster_authorizer,
    forbidden,
    request_attributes,
)

ALLOW_ALL: list[Rule] = [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
                         {"verbs": ["*"], "nonResourceURLs": ["*"]}]


class Gate:
    def __init__(self, api: Api, tokens: Tokens, rbac: bool = False,
                 now: Callable[[], float] = time.time) -> None:
        self.api = api
        self.tokens = tokens
        self.authorizer: Authorizer | None = cluster_authorizer(api.store) if rbac else None
        self.reviews = Reviews(self.authorize, self.rules_for, tokens, self.lookup, now)

    @property
    def rbac(self) -> bool:
        return self.authorizer is not None

    def lookup(self, kind: str, namespace: str, name: str) -> Mapping[str, Any] | None:
        store = self.api.store
        found: Mapping[str, Any] | None = store.locked(
            lambda: store.cluster.get("v1", kind, namespace, name))
        return found

    def _live_rbac(self, kind: str, namespace: str, name: str) -> Mapping[str, Any] | None:
        store = self.api.store
        found: Mapping[str, Any] | None = store.locked(
            lambda: store.cluster.get(RBAC_API, kind, namespace, name))
        return found

    def authenticate(self, authorization: str) -> UserInfo | None:
        found = self.tokens.authenticate(authorization, self.lookup)
        return found[0] if found is not None else None

    def authorize(self, attrs: Attributes) -> tuple[bool, str]:
        if self.authorizer is None:
            return True, ""
        return self.authorizer.authorize(attrs)

    def rules_for(self, user: UserInfo, namespace: str) -> tuple[list[Rule], list[str]]:
        if self.authorizer is None:
            return list(ALLOW_ALL), []
        return self.authorizer.rules_for(user, namespace)

    def handle(self, request: Request, user: UserInfo | None,
               headers: list[tuple[str, str]]) -> Response:
        """Serve `request` for `user` (None: anonymous, reaching only public paths);
        `headers` are the raw header pairs (impersonation headers may repeat)."""
        caller = user or ANONYMOUS_USER
        try:
            if requested(headers):
                caller = impersonate(headers, caller, self.authorize)
            attrs = request_attributes(request.method, request.target, caller)
            allowed, reason = self.authorize(attrs)
            if not allowed:
                raise forbidden(attrs, reason)
            if self.authorizer is not None and escalation.applies(attrs):
                escalation.check(attrs, request.headers.get("content-type", ""), request.body,
                                 self.authorize, self.rules_for, self._live_rbac,
                                 self.authorizer.role_rules)
            if is_review(attrs):
                answer = self.reviews.answer(request.method, attrs, request.body,
                                             request.headers.get("content-type", ""))
                return Response(answer.code, answer.body)
        except ImpersonationError as exc:
            path = request.target
            return Response(500, f"Internal Server Error: \"{path}\": {exc}\n".encode(),
                            "text/plain; charset=utf-8")
        except ApiError as exc:
            return Response(exc.code, exc.status())
        return self.api.handle(request)
