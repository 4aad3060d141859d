"""spec.proxySecretRef through a real HTTP proxy on 127.0.0.1 (tests/gitservers.HttpProxy) in
front of the smart-HTTP git server: forwarding for http://, CONNECT for https://, Basic auth at the
proxy next to Basic auth at the git server, and failures that say what is wrong without leaking
the proxy's password."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import structlog

from reconciler.model.conditions import find_condition
from reconciler.sources.git import GitRepositoryController
from tests import gitservers
from tests.gitservers import (
    BareRepo,
    HttpAuth,
    HttpProxy,
    SmartHttpServer,
    free_port,
    make_ca,
)
from tests.integration.conftest import Objects, cond, gitrepository

PROXY_USER = "proxy-user"
PROXY_PASSWORD = "pr0xy pa55:w@rd/%s3cret"  # needs percent-encoding in a proxy URL
GIT_PASSWORD = "git-Wörd-s3cr3t"


@dataclass(frozen=True)
class Case:
    tls: bool = False
    proxy_auth: bool = True
    proxy_secret: dict[str, str] | None = None  # None: the right address and credentials
    proxy_up: bool = True
    ready: str = "True"
    reason: str = "Succeeded"
    says: tuple[str, ...] = ()


CASES = {
    "http remote, forwarded, proxy and git auth": Case(),
    "https remote through CONNECT": Case(tls=True),
    "proxy without auth": Case(proxy_auth=False, proxy_secret={"address": "<address>"}),
    "wrong proxy password": Case(
        proxy_secret={"address": "<address>", "username": PROXY_USER,
                      "password": "wrong-" + PROXY_PASSWORD},
        ready="False", reason="AuthenticationFailed",
        says=("407", "spec.proxySecretRef, secret 'default/proxy'")),
    "no proxy credentials": Case(
        proxy_secret={"address": "<address>"}, ready="False", reason="AuthenticationFailed",
        says=("407", "requires a 'username' and 'password'")),
    "proxy down": Case(proxy_up=False, ready="False", reason="GitOperationFailed",
                       says=("unable to list remote refs",)),
    "no address": Case(proxy_secret={"username": PROXY_USER}, ready="False",
                       reason="AuthenticationFailed",
                       says=("failed to configure proxy options: secret 'default/proxy': key "
                             "'address' not found",)),
    "socks address": Case(proxy_secret={"address": "socks5://127.0.0.1:1080"}, ready="False",
                          reason="AuthenticationFailed",
                          says=("proxy URL must use http or https scheme, got 'socks5'",)),
}


@pytest.fixture(scope="module")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> gitservers.TestCA:
    return make_ca(tmp_path_factory.mktemp("ca"))


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_proxy_secret_ref(
    controller: GitRepositoryController, objects: Objects, served: Path, repo: BareRepo,
    tmp_path: Path, request: pytest.FixtureRequest, case: Case,
) -> None:
    auth = {"username": "deploy", "password": GIT_PASSWORD}
    tls = None
    if case.tls:
        ca: gitservers.TestCA = request.getfixturevalue("test_ca")
        auth["ca.crt"] = ca.ca_cert.read_text()
        tls = (ca.server_cert, ca.server_key)
    objects.secret("git-auth", string_data=auth)
    proxy = HttpProxy({PROXY_USER: PROXY_PASSWORD} if case.proxy_auth else None)
    git_server = SmartHttpServer(served, HttpAuth(users={"deploy": GIT_PASSWORD}), tls=tls)
    with git_server, proxy:
        address = proxy.address if case.proxy_up else f"http://127.0.0.1:{free_port()}"
        secret = case.proxy_secret or {"address": "<address>", "username": PROXY_USER,
                                       "password": PROXY_PASSWORD}
        objects.secret("proxy", string_data={k: v.replace("<address>", address)
                                             for k, v in secret.items()})
        obj = gitrepository(git_server.url(repo), {"branch": "main"},
                            secretRef={"name": "git-auth"}, proxySecretRef={"name": "proxy"})
        with structlog.testing.capture_logs() as logs:
            result = controller.reconcile(obj, objects.get)

    ready = cond(result, "Ready")
    assert (ready["status"], ready["reason"]) == (case.ready, case.reason), ready["message"]
    for words in case.says:
        assert words in ready["message"]
    if case.ready == "True":
        # Every request reached the git server through the proxy, authorized there.
        assert git_server.seen_paths
        method = "CONNECT" if case.tls else "GET"
        assert [s for s in proxy.seen if s[0] == method] and all(ok for *_, ok in proxy.seen)
        if not case.tls:
            assert {f"http://127.0.0.1:{git_server.port}{p}" for p in git_server.seen_paths} <= {
                target for _, target, _ in proxy.seen}
    else:
        assert git_server.seen_paths == []
        assert cond(result, "FetchFailed")["reason"] == case.reason
        assert find_condition(result.status["conditions"], "Stalled") is None
    text = repr(result.status) + repr(result.events) + repr(logs)
    for secret_value in (PROXY_PASSWORD, "pr0xy%20pa55", GIT_PASSWORD):
        assert secret_value not in text
    leftovers = [p for p in (tmp_path / "work").rglob("*") if p.is_file()
                 and b"pa55" in p.read_bytes()]
    assert leftovers == []


def test_proxy_for_an_ssh_url_stalls(
    controller: GitRepositoryController, objects: Objects,
) -> None:
    result = controller.reconcile(gitrepository(
        "ssh://git@127.0.0.1:9/app.git", {"branch": "main"}, proxySecretRef={"name": "proxy"}),
        objects.get)
    stalled = cond(result, "Stalled")
    assert stalled["reason"] == "InvalidSpec"
    assert "spec.proxySecretRef" in stalled["message"] and "http(s)://" in stalled["message"]
