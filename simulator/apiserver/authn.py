"""Who is asking: the admin's bearer token and ServiceAccount tokens, as kube-apiserver's
token authenticators answer.

The kubeconfig's token authenticates `reconciler-admin`, a member of `system:masters` (which
bypasses authorization, as in kube). A ServiceAccount's token is a JWT the server signs
(HS256, with a key made at start and never written down, so tokens die with the server) and
hands out through the TokenRequest subresource (`kubectl create token SA`); it carries kube's
claims (`sub: system:serviceaccount:NS:NAME`, `kubernetes.io.serviceaccount.uid`, an optional
bound Pod, Secret or Node) and an expiry between 10 minutes and `MAX_EXPIRATION_SECONDS`.

A token authenticates only while it is unexpired, its audiences include the API server's, and
the ServiceAccount (and the bound object) still exists with the uid it was issued for. Anything
else is simply not authenticated: the caller answers 401 with kube's bare `Unauthorized`.

Token expiry runs on the wall clock (an injected `now`), not the simulator's virtual one: a
credential's lifetime is real, however fast simulated time runs.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ISSUER = "https://kubernetes.default.svc.cluster.local"
API_AUDIENCES = (ISSUER,)
ADMIN_NAME = "reconciler-admin"
MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS = "system:anonymous"
SA_PREFIX = "system:serviceaccount:"
SA_GROUP = "system:serviceaccounts"
DEFAULT_EXPIRATION_SECONDS = 3600
MIN_EXPIRATION_SECONDS = 600
MAX_EXPIRATION_SECONDS = 48 * 3600
"""Longer requests are cut to this, as kube-apiserver does with
--service-account-max-token-expiration."""
MAX_TOKEN_BYTES = 8192
CREDENTIAL_ID = "authentication.kubernetes.io/credential-id"
BINDABLE = {"Pod": "pods", "Secret": "secrets", "Node": "nodes"}
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


@dataclass(frozen=True)
class UserInfo:
    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"username": self.name}
        if self.uid:
            out["uid"] = self.uid
        if self.groups:
            out["groups"] = list(self.groups)
        if self.extra:
            out["extra"] = {k: list(v) for k, v in self.extra.items()}
        return out


ADMIN = UserInfo(ADMIN_NAME, groups=(MASTERS, AUTHENTICATED))
ANONYMOUS_USER = UserInfo(ANONYMOUS, groups=(UNAUTHENTICATED,))


def service_account_user(namespace: str, name: str, uid: str = "",
                         extra: Mapping[str, tuple[str, ...]] | None = None) -> UserInfo:
    return UserInfo(f"{SA_PREFIX}{namespace}:{name}", uid,
                    (SA_GROUP, f"{SA_GROUP}:{namespace}", AUTHENTICATED), dict(extra or {}))


def split_service_account(username: str) -> tuple[str, str] | None:
    """(namespace, name) of a `system:serviceaccount:NS:NAME` user name, else None."""
    if not username.startswith(SA_PREFIX):
        return None
    parts = username[len(SA_PREFIX):].split(":")
    if len(parts) != 2 or not all(_NAME.match(p) for p in parts):
        return None
    return parts[0], parts[1]


@dataclass(frozen=True)
class Issued:
    token: str
    expires: float
    audiences: tuple[str, ...]
    seconds: int


Lookup = Callable[[str, str, str], Mapping[str, Any] | None]
"""(kind, namespace, name) -> the live object or None: ServiceAccount, Pod, Secret, Node."""


class Tokens:
    """The admin token and the ServiceAccount token issuer/verifier."""

    def __init__(self, admin_token: str, now: Callable[[], float] = time.time,
                 key: bytes | None = None) -> None:
        self.admin_token = admin_token
        self._now = now
        self._key = key if key is not None else secrets.token_bytes(32)
        self._kid = hashlib.sha256(self._key).hexdigest()[:16]

    # --- issuing ---------------------------------------------------------------------------

    def issue(self, sa: Mapping[str, Any], audiences: Sequence[str], seconds: int,
              bound: Mapping[str, Any] | None = None) -> Issued:
        meta = sa.get("metadata") or {}
        namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        now = int(self._now())
        seconds = min(seconds, MAX_EXPIRATION_SECONDS)
        auds = tuple(audiences) or API_AUDIENCES
        k8s: dict[str, Any] = {"namespace": namespace,
                               "serviceaccount": {"name": name, "uid": str(meta.get("uid"))}}
        if bound is not None:
            bmeta = bound.get("metadata") or {}
            k8s[str(bound.get("kind")).lower()] = {"name": str(bmeta.get("name")),
                                                   "uid": str(bmeta.get("uid"))}
        claims = {"aud": list(auds), "exp": now + seconds, "iat": now,
                  "iss": ISSUER, "jti": str(uuid.uuid4()), "kubernetes.io": k8s,
                  "nbf": now, "sub": f"{SA_PREFIX}{namespace}:{name}"}
        header = {"alg": "HS256", "kid": self._kid, "typ": "JWT"}
        signing = f"{_b64(json.dumps(header, separators=(',', ':')).encode())}." \
                  f"{_b64(json.dumps(claims, separators=(',', ':')).encode())}"
        token = f"{signing}.{_b64(self._sign(signing))}"
        return Issued(token, float(now + seconds), auds, seconds)

    # --- verifying -------------------------------------------------------------------------

    def authenticate(self, authorization: str, lookup: Lookup,
                     audiences: Sequence[str] = API_AUDIENCES
                     ) -> tuple[UserInfo, tuple[str, ...]] | None:
        """The user an `Authorization` header names, with the audiences it is good for; None
        for no bearer token or one that does not authenticate."""
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return self.review(token.strip(), lookup, audiences)

    def review(self, token: str, lookup: Lookup, audiences: Sequence[str] = API_AUDIENCES
               ) -> tuple[UserInfo, tuple[str, ...]] | None:
        if not token or len(token) > MAX_TOKEN_BYTES:
            return None
        if hmac.compare_digest(token.encode(), self.admin_token.encode()):
            return ADMIN, tuple(audiences)
        claims = self._verified_claims(token)
        if claims is None:
            return None
        now = self._now()
        exp, nbf = claims.get("exp"), claims.get("nbf", 0)
        if not isinstance(exp, int) or not isinstance(nbf, int) or not (nbf - 60 <= now < exp):
            return None
        token_auds = claims.get("aud")
        if not isinstance(token_auds, list):
            return None
        shared = tuple(a for a in audiences if a in token_auds)
        if not shared or claims.get("iss") != ISSUER:
            return None
        k8s = claims.get("kubernetes.io")
        if not isinstance(k8s, dict):
            return None
        namespace = k8s.get("namespace")
        sa = k8s.get("serviceaccount")
        if not isinstance(namespace, str) or not isinstance(sa, dict):
            return None
        live = lookup("ServiceAccount", namespace, str(sa.get("name")))
        if live is None or (live.get("metadata") or {}).get("uid") != sa.get("uid"):
            return None  # deleted, or deleted and made again: its old tokens are void
        extra: dict[str, tuple[str, ...]] = {}
        for kind in BINDABLE:
            ref = k8s.get(kind.lower())
            if ref is None:
                continue
            if not isinstance(ref, dict):
                return None
            obj = lookup(kind, namespace if kind != "Node" else "", str(ref.get("name")))
            if obj is None or (obj.get("metadata") or {}).get("uid") != ref.get("uid"):
                return None  # the object the token was bound to is gone
            key = kind.lower()
            extra[f"authentication.kubernetes.io/{key}-name"] = (str(ref.get("name")),)
            extra[f"authentication.kubernetes.io/{key}-uid"] = (str(ref.get("uid")),)
        extra[CREDENTIAL_ID] = (f"JTI={claims.get('jti')}",)
        user = service_account_user(namespace, str(sa.get("name")), str(sa.get("uid")),
                                    dict(sorted(extra.items())))
        return user, shared

    def _verified_claims(self, token: str) -> dict[str, Any] | None:
        parts = token.split(".")
        if len(parts) != 3:
            return None
        signing = f"{parts[0]}.{parts[1]}"
        try:
            signature = _unb64(parts[2])
            if not hmac.compare_digest(signature, self._sign(signing)):
                return None
            header = json.loads(_unb64(parts[0]))
            claims = json.loads(_unb64(parts[1]))
        except (ValueError, binascii.Error):
            return None
        if not isinstance(header, dict) or header.get("alg") != "HS256":
            return None
        return claims if isinstance(claims, dict) else None

    def _sign(self, signing: str) -> bytes:
        return hmac.new(self._key, signing.encode(), hashlib.sha256).digest()


def rfc3339(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(int(seconds), datetime.UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
