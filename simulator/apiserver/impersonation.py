"""Impersonation headers, as kube-apiserver's impersonation filter honours them.

`Impersonate-User`, `Impersonate-Group` (repeated), `Impersonate-Uid` and
`Impersonate-Extra-KEY` (KEY percent-decoded, lower-cased). Each asks the authorizer whether the
caller may `impersonate` it: users ("" users NAME, or serviceaccounts NAME in NS for a
`system:serviceaccount:NS:NAME` user), groups ("" groups), uids and userextras/KEY
(authentication.k8s.io). The first refusal is kube's 403 (`users "bob" is forbidden: User "x"
cannot impersonate resource "users" in API group "" at the cluster scope`). Groups, uid or
extras without a user are kube's 500 (`requested [...] without impersonating a user`).

The impersonated user is `system:authenticated` too, unless that or `system:unauthenticated`
was asked for; a ServiceAccount impersonated without groups gets its fixed ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

from simulator.apiserver.authn import (
    ANONYMOUS,
    AUTHENTICATED,
    SA_GROUP,
    UNAUTHENTICATED,
    UserInfo,
    split_service_account,
)
from simulator.apiserver.rbac import Attributes, forbidden

USER = "impersonate-user"
GROUP = "impersonate-group"
UID = "impersonate-uid"
EXTRA = "impersonate-extra-"


class ImpersonationError(Exception):
    """A malformed request (kube answers it with a plain-text 500)."""


@dataclass(frozen=True)
class _Ask:
    kind: str  # User | ServiceAccount | Group | Uid | Extra
    name: str
    namespace: str = ""
    key: str = ""

    def attributes(self, caller: UserInfo) -> Attributes:
        if self.kind == "ServiceAccount":
            return Attributes(caller, "impersonate", True, group="", resource="serviceaccounts",
                              namespace=self.namespace, name=self.name)
        if self.kind == "Uid":
            return Attributes(caller, "impersonate", True, group="authentication.k8s.io",
                              resource="uids", name=self.name)
        if self.kind == "Extra":
            return Attributes(caller, "impersonate", True, group="authentication.k8s.io",
                              resource="userextras", subresource=self.key, name=self.name)
        resource = "users" if self.kind == "User" else "groups"
        return Attributes(caller, "impersonate", True, group="", resource=resource,
                          name=self.name)

    def __str__(self) -> str:
        return f"{{{self.kind} {self.namespace} {self.name}}}"


def requested(headers: list[tuple[str, str]]) -> bool:
    return any(n.lower() in (USER, GROUP, UID) or n.lower().startswith(EXTRA)
               for n, _ in headers)


def impersonate(headers: list[tuple[str, str]], caller: UserInfo,
                authorize: Callable[[Attributes], tuple[bool, str]]) -> UserInfo:
    """The user to serve the request as (the caller when nothing is asked); raises ApiError
    (403) when the caller may not, ImpersonationError when the headers are malformed."""
    user_name: str | None = None
    groups: list[str] = []
    uid: str | None = None
    extra: dict[str, list[str]] = {}
    for name, value in headers:
        lower = name.lower()
        if lower == USER:
            user_name = value
        elif lower == GROUP:
            groups.append(value)
        elif lower == UID:
            uid = value
        elif lower.startswith(EXTRA):
            key = unquote(lower[len(EXTRA):])
            extra.setdefault(key, []).append(value)
    if user_name is None and not groups and uid is None and not extra:
        return caller
    user_asks: list[_Ask] = []
    if user_name is not None:
        sa = split_service_account(user_name)
        user_asks.append(_Ask("ServiceAccount", sa[1], sa[0]) if sa else _Ask("User",
                                                                                user_name))
    group_asks = [_Ask("Group", g) for g in groups]
    extra_asks = [_Ask("Extra", v, key=k) for k, values in extra.items() for v in values]
    uid_asks = [_Ask("Uid", uid)] if uid is not None else []
    asks = [*user_asks, *group_asks, *extra_asks, *uid_asks]
    if user_name is None:
        raise ImpersonationError(f"requested [{' '.join(str(a) for a in asks)}] without "
                                 "impersonating a user")
    for ask in asks:
        attrs = ask.attributes(caller)
        allowed, reason = authorize(attrs)
        if not allowed:
            raise forbidden(attrs, reason)
    sa = split_service_account(user_name)
    final_groups = list(groups)
    if sa is not None and not groups:
        final_groups = [SA_GROUP, f"{SA_GROUP}:{sa[0]}"]
    if user_name != ANONYMOUS:
        if not any(g in (AUTHENTICATED, UNAUTHENTICATED) for g in final_groups):
            final_groups.append(AUTHENTICATED)
    elif UNAUTHENTICATED not in final_groups:
        final_groups.append(UNAUTHENTICATED)
    return UserInfo(user_name, uid or "", tuple(final_groups),
                    {k: tuple(v) for k, v in extra.items()})

