"""The served cluster's credentials: a CA and a serving certificate made at start (IP SANs
127.0.0.1 and ::1, DNS localhost), an admin bearer token, and the kubeconfig clients use as is.

Nothing is reused across starts: the CA's key lives in memory only, the serving key in a 0600
file beside the kubeconfig (the TLS stack needs a file), removed at exit by the caller.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from reconciler.runtime.statefile import write_private


@dataclass(frozen=True)
class Credentials:
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes
    token: str


def make_credentials(hosts: tuple[str, ...] = ("127.0.0.1", "::1", "localhost"),
                     days: int = 365) -> Credentials:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "reconciler-serve-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=days))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                       crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False,
                                       decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    return Credentials(
        ca_pem=ca.public_bytes(serialization.Encoding.PEM),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()),
        token=secrets.token_urlsafe(32))


def extra_hosts(host: str) -> tuple[str, ...]:
    """The SANs for a listen address: the defaults, plus the address itself if it is another."""
    defaults = ("127.0.0.1", "::1", "localhost")
    return defaults if host in defaults or host in ("0.0.0.0", "::", "") else (*defaults, host)


def write_kubeconfig(path: Path, server: str, token: str, ca_pem: bytes | None,
                     name: str = "reconciler") -> None:
    """A kubeconfig (0600, written atomically) whose one context is the admin on `server`."""
    cluster: dict[str, object] = {"server": server}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    config = {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": f"{name}-admin", "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": f"{name}-admin",
                                                "namespace": "default"}}],
        "current-context": name,
    }
    write_private(path, yaml.safe_dump(config, sort_keys=False))


def write_key_file(directory: Path, cred: Credentials) -> tuple[Path, Path]:
    """The serving certificate and key as files for `ssl` (0600), in `directory`."""
    cert = directory / "serving.crt"
    key = directory / "serving.key"
    write_private(cert, cred.cert_pem.decode())
    write_private(key, cred.key_pem.decode())
    os.chmod(key, 0o600)
    return cert, key
