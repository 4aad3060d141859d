"""The proxy a GitRepository's `spec.proxySecretRef` names, read as Flux reads it.

It owns decoding the Secret (`address`, required, an http:// or https:// proxy URL; optional
`username` and `password` for Basic auth at the proxy) into a value `credentials` writes into the
private git config of one git command (`http.proxy`), and the proxy's fingerprint and secret
values for caching and redaction. The password never travels in argv, the environment, a log or
a status: only inside that 0600 config file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit


class ProxyError(Exception):
    """The proxy Secret is unusable; the message names the Secret and the key."""


@dataclass(frozen=True)
class GitProxy:
    """`source` names the Secret ('namespace/name') for messages; `address` has no user info."""

    source: str
    address: str
    username: str = ""
    password: str = ""

    @classmethod
    def from_secret(cls, source: str, data: Mapping[str, bytes]) -> GitProxy:
        where = f"secret '{source}'"
        if "address" not in data:
            raise ProxyError(f"{where}: key 'address' not found (the proxy URL, e.g. "
                             "http://proxy.example.com:3128)")
        address = data["address"].decode("utf-8", "replace").strip()
        if not address:
            raise ProxyError(f"{where}: proxy address is empty")
        try:
            parts = urlsplit(address)
            port = parts.port
        except ValueError as exc:
            raise ProxyError(f"{where}: failed to parse proxy address: {exc}") from None
        if parts.scheme not in ("http", "https"):
            raise ProxyError(f"{where}: proxy URL must use http or https scheme, got "
                             f"'{parts.scheme}'")
        if not parts.hostname:
            raise ProxyError(f"{where}: proxy address has no host")
        if parts.username is not None or parts.password is not None:
            raise ProxyError(f"{where}: put the proxy's credentials in the 'username' and "
                             "'password' keys, not in 'address'")
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        netloc = f"{host}:{port}" if port is not None else host
        return cls(
            source=source,
            address=urlunsplit((parts.scheme, netloc, parts.path, "", "")),
            username=data.get("username", b"").decode("utf-8", "replace").strip(),
            password=data.get("password", b"").decode("utf-8", "replace").rstrip("\r\n"),
        )

    def git_config_url(self) -> str:
        """The value of `http.proxy`: the address with percent-encoded credentials. With a
        username, the password is always present (possibly empty), so git never asks a
        credential helper, which would answer with the repository's credentials instead."""
        if not self.username and not self.password:
            return self.address
        parts = urlsplit(self.address)
        userinfo = f"{quote(self.username, safe='')}:{quote(self.password, safe='')}"
        return urlunsplit(parts._replace(netloc=f"{userinfo}@{parts.netloc}"))

    def fingerprint(self) -> str:
        """A digest of everything that changes what the remote shows us through this proxy."""
        h = hashlib.sha256()
        for part in (self.address, self.username, self.password):
            h.update(part.encode() + b"\0")
        return h.hexdigest()

    def secret_values(self) -> list[str]:
        return [v for v in (self.password, quote(self.password, safe="")) if v]
