"""Authentication from a referenced Secret against real servers: smart HTTP with Basic and
Bearer auth, HTTPS with a test CA, and sshd with keys and known_hosts. Every failure is checked
for the secret values leaking into status, events or logs."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest
import structlog

from reconciler.sources.git import GitRepositoryController, SourceResult
from tests.gitservers import (
    SSHD,
    BareRepo,
    HttpAuth,
    SmartHttpServer,
    Sshd,
    make_ca,
    make_ssh_key,
)
from tests.integration.conftest import Objects, cond, gitrepository

PASSWORD = "pa55-Wörd-s3cr3t"
TOKEN = "tok-0123456789-secret"


def leaks(result: SourceResult, logs: Sequence[Mapping[str, object]], *secrets: str) -> list[str]:
    text = repr(result.status) + repr(result.events) + repr(logs)
    return [s for s in secrets if s in text]


@pytest.fixture
def http(served: Path, repo: BareRepo) -> Iterator[SmartHttpServer]:
    with SmartHttpServer(served, HttpAuth(users={"deploy": PASSWORD}, tokens={TOKEN})) as s:
        yield s


@pytest.mark.parametrize(
    ("secret", "ready", "reason"),
    [
        ({"username": "deploy", "password": PASSWORD}, "True", "Succeeded"),
        ({"bearerToken": TOKEN}, "True", "Succeeded"),
        ({"username": "deploy", "password": "wrong-" + PASSWORD}, "False", "AuthenticationFailed"),
        ({"bearerToken": "wrong-" + TOKEN}, "False", "AuthenticationFailed"),
        (None, "False", "AuthenticationFailed"),
    ],
)
def test_http_auth_from_secret(
    controller: GitRepositoryController, objects: Objects, http: SmartHttpServer,
    repo: BareRepo, tmp_path: Path, secret: dict[str, str] | None, ready: str, reason: str,
) -> None:
    source = gitrepository(http.url(repo), {"branch": "main"})
    if secret is not None:
        objects.secret("git-auth", data={k: v.encode() for k, v in secret.items()})
        source["spec"]["secretRef"] = {"name": "git-auth"}
    with structlog.testing.capture_logs() as logs:
        result = controller.reconcile(source, objects.get)
    assert (cond(result, "Ready")["status"], cond(result, "Ready")["reason"]) == (ready, reason)
    assert leaks(result, logs, PASSWORD, TOKEN) == []
    # No credential file outlives the git command; nothing secret went into git's argv or URL.
    leftovers = [p for p in (tmp_path / "work").rglob("*") if p.is_file()
                 and PASSWORD.encode() in p.read_bytes()]
    assert leftovers == []
    assert all(PASSWORD not in p and TOKEN not in p for p in http.seen_paths)


def test_missing_secret_is_an_authentication_failure(
    controller: GitRepositoryController, objects: Objects, http: SmartHttpServer, repo: BareRepo,
) -> None:
    result = controller.reconcile(gitrepository(
        http.url(repo), {"branch": "main"}, secretRef={"name": "absent"}), objects.get)
    ready = cond(result, "Ready")
    assert ready["reason"] == "AuthenticationFailed"
    assert "secret 'default/absent' (referenced by spec.secretRef)" in ready["message"]
    assert controller.ls_remote_calls == 0


def test_https_with_a_custom_ca(
    controller: GitRepositoryController, objects: Objects, served: Path, repo: BareRepo,
    tmp_path: Path,
) -> None:
    ca = make_ca(tmp_path / "ca")
    auth = HttpAuth(users={"deploy": PASSWORD})
    with SmartHttpServer(served, auth, tls=(ca.server_cert, ca.server_key)) as https:
        objects.secret("tls", data={"ca.crt": ca.ca_cert.read_bytes(), "username": b"deploy",
                                    "password": PASSWORD.encode()})
        objects.secret("no-ca", string_data={"username": "deploy", "password": PASSWORD})
        good = controller.reconcile(gitrepository(
            https.url(repo), {"branch": "main"}, secretRef={"name": "tls"}), objects.get)
        untrusted = controller.reconcile(gitrepository(
            https.url(repo), {"branch": "main"}, name="untrusted", secretRef={"name": "no-ca"}),
            objects.get)
    assert cond(good, "Ready")["status"] == "True"
    assert good.status["artifact"]["revision"].startswith("main@sha1:")
    bad = cond(untrusted, "Ready")
    assert bad["status"] == "False"
    assert "certificate" in bad["message"].lower()
    assert PASSWORD not in repr(untrusted.status)


needs_sshd = pytest.mark.skipif(
    SSHD is None or os.geteuid() != 0,
    reason="sshd tests need OpenSSH's sshd (apt-get install openssh-server; .ci/run does) "
           "and root to log in as the test user",
)


@needs_sshd
def test_ssh_keys_known_hosts_and_passphrases(
    controller: GitRepositoryController, objects: Objects, repo: BareRepo, tmp_path: Path,
) -> None:
    plain = make_ssh_key(tmp_path / "keys" / "plain")
    locked = make_ssh_key(tmp_path / "keys" / "locked", passphrase=PASSWORD)
    stranger = make_ssh_key(tmp_path / "keys" / "stranger")
    other_host = make_ssh_key(tmp_path / "keys" / "other-host")
    with Sshd(tmp_path / "sshd", [plain.public, locked.public]) as sshd:
        wrong_known = sshd.known_hosts.replace(sshd.host_key.public.split()[1],
                                               other_host.public.split()[1])
        cases = {
            "plain": {"identity": plain.private.read_text(), "known_hosts": sshd.known_hosts},
            "locked": {"identity": locked.private.read_text(), "known_hosts": sshd.known_hosts,
                       "password": PASSWORD},
            "stranger": {"identity": stranger.private.read_text(),
                         "known_hosts": sshd.known_hosts},
            "unknown-host": {"identity": plain.private.read_text(), "known_hosts": wrong_known},
            "no-known-hosts": {"identity": plain.private.read_text()},
        }
        results = {}
        with structlog.testing.capture_logs() as logs:
            for name, data in cases.items():
                objects.secret(name, string_data=data)
                results[name] = controller.reconcile(gitrepository(
                    sshd.url(repo), {"branch": "main"}, name=name, secretRef={"name": name}),
                    objects.get)

    assert cond(results["plain"], "Ready")["status"] == "True"
    assert cond(results["locked"], "Ready")["status"] == "True"
    for name in ("stranger", "unknown-host", "no-known-hosts"):
        assert cond(results[name], "Ready")["reason"] == "AuthenticationFailed", name
    assert "Host key verification failed" in cond(results["unknown-host"], "Ready")["message"]
    assert "'known_hosts' is required" in cond(results["no-known-hosts"], "Ready")["message"]
    key_line = plain.private.read_text().splitlines()[1]
    for result in results.values():
        assert leaks(result, logs, PASSWORD, key_line) == []


def test_ssh_url_without_secret_fails_clearly(
    controller: GitRepositoryController, objects: Objects,
) -> None:
    result = controller.reconcile(
        gitrepository("ssh://git@127.0.0.1:9/app.git", {"branch": "main"}), objects.get)
    ready = cond(result, "Ready")
    assert ready["reason"] == "AuthenticationFailed"
    assert "'identity'" in ready["message"] and "'known_hosts'" in ready["message"]
