"""Git credentials from a Kubernetes Secret, and the short-lived files that hand them to git.

It owns: decoding a Secret (`data` is base64, `stringData` wins, as the API server merges them),
choosing the auth method Flux documents for the URL's scheme (HTTPS basic, bearer token, custom
CA; SSH identity with known_hosts and optional key password), and materializing it, with the
proxy of `spec.proxySecretRef` for http(s) URLs, into a private temporary directory for exactly
one git invocation.

Secrets never travel in a URL, in process arguments or in environment values: git reads them from
0600 files in a 0700 directory (a git config with a credential helper and extra header, an SSH key,
an askpass script), which are removed as soon as the command ends. `redact` scrubs the secret
values from any text before it reaches a log, event, status or error message.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import shlex
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from reconciler.model.objects import Obj
from reconciler.sources.artifacts import private_dir
from reconciler.sources.proxy import GitProxy

# get(api_version, kind, namespace, name): the Backend's `get`, injected by the engine.
ObjectLookup = Callable[[str, str, str, str], Obj | None]


class CredentialsError(Exception):
    """A Secret is missing, malformed or unfit for the URL; the message names it and the key."""


def secret_data(
    lookup: ObjectLookup | None, namespace: str, name: str, field: str
) -> dict[str, bytes]:
    """The decoded key/value pairs of Secret `namespace/name`, which `field` referenced."""
    where = f"secret '{namespace}/{name}' (referenced by {field})"
    if lookup is None:
        raise CredentialsError(f"failed to get {where}: no Secret lookup is configured")
    secret = lookup("v1", "Secret", namespace, name)
    if secret is None:
        raise CredentialsError(
            f"failed to get {where}: not found; create it in namespace '{namespace}'"
        )
    out: dict[str, bytes] = {}
    data = secret.get("data")
    if isinstance(data, Mapping):
        for key, value in data.items():
            try:
                out[str(key)] = base64.b64decode(str(value or ""), validate=True)
            except (binascii.Error, ValueError):
                raise CredentialsError(
                    f"{where}: data.{key} is not valid base64 (use stringData for plain text)"
                ) from None
    string_data = secret.get("stringData")
    if isinstance(string_data, Mapping):
        for key, value in string_data.items():
            out[str(key)] = str(value or "").encode()
    return out


@dataclass(frozen=True)
class GitCredentials:
    """What one Secret provides; `source` names it ('namespace/name') for messages."""

    source: str
    username: str = ""
    password: str = ""
    bearer_token: str = ""
    ca: bytes = b""
    identity: bytes = b""
    known_hosts: bytes = b""

    @classmethod
    def from_secret(cls, source: str, data: Mapping[str, bytes]) -> GitCredentials:
        def text(key: str) -> str:
            return data.get(key, b"").decode("utf-8", "replace").strip()

        return cls(
            source=source,
            username=text("username"),
            password=data.get("password", b"").decode("utf-8", "replace").rstrip("\r\n"),
            bearer_token=text("bearerToken"),
            # Flux: "ca.crt takes precedence over caFile".
            ca=data.get("ca.crt") or data.get("caFile") or b"",
            identity=data.get("identity", b""),
            known_hosts=data.get("known_hosts", b""),
        )

    def fingerprint(self) -> str:
        """A stable digest of everything that affects what the remote shows us; safe to keep in
        memory as a cache key (it is a hash, never logged)."""
        h = hashlib.sha256()
        for part in (self.username, self.password, self.bearer_token):
            h.update(part.encode() + b"\0")
        for blob in (self.ca, self.identity, self.known_hosts):
            h.update(hashlib.sha256(blob).digest())
        return h.hexdigest()

    def secret_values(self) -> list[str]:
        values = [self.password, self.bearer_token]
        values += [line.strip() for line in self.identity.decode("utf-8", "replace").splitlines()
                   if len(line.strip()) >= 8 and "PRIVATE KEY" not in line]
        return [v for v in values if v]


class HoldsSecrets(Protocol):
    def secret_values(self) -> list[str]: ...


def redact(text: str, *holders: HoldsSecrets | None) -> str:
    """`text` with every secret value of the given credentials (or proxy) replaced by ***."""
    values = [v for h in holders if h is not None for v in h.secret_values()]
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, "***")
    return text


def _write(path: Path, content: bytes | str, mode: int = 0o600) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    os.fchmod(fd, mode)  # exactly `mode`, whatever the umask
    with os.fdopen(fd, "wb") as fh:
        fh.write(content.encode() if isinstance(content, str) else content)
    return path


def _config_value(value: str) -> str:
    """A git config value in double quotes, so `#`, `;` and spaces survive."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


@contextlib.contextmanager
def git_auth_env(
    scheme: str, credentials: GitCredentials | None, workdir: Path,
    proxy: GitProxy | None = None,
) -> Iterator[dict[str, str]]:
    """Environment for one git command against a URL of `scheme`, with the credentials' (and
    the proxy's) files alive for the duration of the `with` block."""
    if scheme == "ssh" and (credentials is None or not credentials.identity):
        what = "spec.secretRef" if credentials is None else f"secret '{credentials.source}'"
        raise CredentialsError(
            f"{what}: an ssh:// URL needs a Secret with 'identity' (a private key) and "
            "'known_hosts' (the server's host keys, e.g. from ssh-keyscan)"
        )
    http = scheme in ("http", "https")
    if (credentials is None and (proxy is None or not http)) or scheme not in (
            "http", "https", "ssh"):
        yield {}
        return
    private_dir(workdir)
    with tempfile.TemporaryDirectory(prefix="auth-", dir=workdir) as tmp_name:
        tmp = Path(tmp_name)
        os.chmod(tmp, 0o700)
        if scheme == "ssh" and credentials is not None:
            yield _ssh_env(credentials, tmp)
        else:
            yield _http_env(credentials, proxy if http else None, tmp)


def _http_env(credentials: GitCredentials | None, proxy: GitProxy | None,
              tmp: Path) -> dict[str, str]:
    # Reset any helper list, then ours: it only answers `get`, so git cannot ask it to store.
    lines = ["[credential]", "\thelper = "]
    if credentials is not None and (credentials.username or credentials.password):
        cred = _write(tmp / "credential",
                      f"username={credentials.username}\npassword={credentials.password}\n")
        helper = f"!f() {{ test \"$1\" = get && cat {shlex.quote(str(cred))}; }}; f"
        lines.append(f"\thelper = {_config_value(helper)}")
    lines.append("[http]")
    if credentials is not None and credentials.bearer_token:
        lines.append(
            f"\textraHeader = {_config_value('Authorization: Bearer ' + credentials.bearer_token)}"
        )
    if credentials is not None and credentials.ca:
        ca = _write(tmp / "ca.crt", credentials.ca)
        lines.append(f"\tsslCAInfo = {_config_value(str(ca))}")
    env: dict[str, str] = {}
    if proxy is not None:
        # The proxy URL, credentials included, lives only in this 0600 file. http.proxy beats
        # the *_proxy variables; emptied NO_PROXY makes it beat the exclusion list too, as
        # Flux's proxySecretRef "takes precedence over all environment variables".
        lines.append(f"\tproxy = {_config_value(proxy.git_config_url())}")
        lines.append("\tproxyAuthMethod = basic")
        env.update({"NO_PROXY": "", "no_proxy": ""})
    config = _write(tmp / "gitconfig", "\n".join(lines) + "\n")
    env["GIT_CONFIG_GLOBAL"] = str(config)
    if credentials is not None and credentials.ca:
        # GIT_SSL_CAINFO in the daemon's own environment would beat the config file.
        env["GIT_SSL_CAINFO"] = str(tmp / "ca.crt")
    return env


def _ssh_env(credentials: GitCredentials, tmp: Path) -> dict[str, str]:
    if not credentials.known_hosts.strip():
        raise CredentialsError(
            f"secret '{credentials.source}': 'known_hosts' is required for SSH host key "
            "verification, which cannot be skipped; add the server's keys "
            "(ssh-keyscan -p PORT HOST)"
        )
    identity = credentials.identity
    if not identity.endswith(b"\n"):
        identity += b"\n"  # OpenSSH refuses a key file without its final newline.
    key = _write(tmp / "identity", identity)
    known = _write(tmp / "known_hosts", credentials.known_hosts)
    options = [
        "ssh", "-F", "/dev/null", "-i", str(key), "-o", "IdentitiesOnly=yes",
        "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "StrictHostKeyChecking=yes", "-o", "PasswordAuthentication=no",
        "-o", "KbdInteractiveAuthentication=no", "-o", "UpdateHostKeys=no",
    ]
    env: dict[str, str] = {}
    if credentials.password:
        # The key's passphrase comes from an askpass program reading a 0600 file: never argv.
        secret = _write(tmp / "passphrase", credentials.password)
        askpass = _write(tmp / "askpass", f"#!/bin/sh\ncat {shlex.quote(str(secret))}\n", 0o700)
        options += ["-o", "BatchMode=no"]
        env.update({"SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force",
                    "DISPLAY": env.get("DISPLAY", ":0")})
    else:
        options += ["-o", "BatchMode=yes"]
    env["GIT_SSH_COMMAND"] = " ".join(shlex.quote(o) for o in options)
    env["GIT_SSH_VARIANT"] = "ssh"
    return env


def describe_method(scheme: str, credentials: GitCredentials | None) -> str:
    """A word for logs about which auth is in use (never a value)."""
    if credentials is None:
        return "none"
    if scheme == "ssh":
        return "ssh-key"
    parts = [name for name, on in (("basic", credentials.username or credentials.password),
                                   ("bearer", credentials.bearer_token),
                                   ("ca", credentials.ca)) if on]
    return "+".join(parts) or "none"
