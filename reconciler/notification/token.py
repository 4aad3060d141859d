"""The token of a Receiver: key `token` of the Secret `spec.secretRef` names, in its namespace.

The messages are Flux's, so `kubectl describe` reads the same. The token itself never reaches a
message, a log line or an exception.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping

from reconciler.model.errors import ReconcilerError
from reconciler.model.objects import Obj

TOKEN_NOT_FOUND = "TokenNotFound"
"""Flux's reason on a Receiver whose Secret or token is missing."""

GetObject = Callable[[str, str, str, str], Obj | None]


class TokenNotFound(ReconcilerError):
    reason = TOKEN_NOT_FOUND


def read_token(get: GetObject, namespace: str, secret_name: str) -> str:
    where = f"{namespace}/{secret_name}"
    secret = get("v1", "Secret", namespace, secret_name) if secret_name else None
    if secret is None:
        raise TokenNotFound(f"unable to read token from secret '{where}' error: "
                            f"Secret \"{secret_name}\" not found")
    data = secret.get("data")
    string_data = secret.get("stringData")
    token: str | None = None
    if isinstance(data, Mapping) and isinstance(data.get("token"), str):
        try:
            token = base64.b64decode(data["token"], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise TokenNotFound(f"invalid '{where}' secret data: 'token' is not valid "
                                "base64-encoded UTF-8") from None
    elif isinstance(string_data, Mapping) and isinstance(string_data.get("token"), str):
        token = str(string_data["token"])
    if token is None:
        raise TokenNotFound(f"invalid '{where}' secret data: required fields 'token'")
    if not token:
        # Flux would take it; an empty HMAC key or X-Gitlab-Token verifies nothing.
        raise TokenNotFound(f"invalid '{where}' secret data: 'token' is empty")
    return token
