"""Spec rules of spec.verify (which modes fit which refs) and spec.proxySecretRef, the proxy
Secret's parsing, and where the proxy's credentials go (a 0600 git config, nowhere else)."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from reconciler.sources.credentials import GitCredentials, git_auth_env, redact
from reconciler.sources.gitspec import GitRepositorySpec, GitSpecError
from reconciler.sources.proxy import GitProxy, ProxyError


def parse(url: str = "https://example.com/app.git", **spec: Any) -> GitRepositorySpec:
    return GitRepositorySpec.parse({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"name": "app", "namespace": "default"},
        "spec": {"url": url, "interval": "1m", **spec},
    })


KEYS = {"secretRef": {"name": "pgp"}}

# (spec.ref, spec.verify.mode, the mode written to status, or the stall's reason)
VERIFY_CASES: list[tuple[dict[str, str], str | None, str]] = [
    ({"branch": "main"}, None, "HEAD"),
    ({"branch": "main"}, "head", "HEAD"),
    ({"branch": "main"}, "HEAD", "HEAD"),
    ({"commit": "abc1234"}, "HEAD", "HEAD"),
    ({"tag": "v1"}, "HEAD", "HEAD"),
    ({"tag": "v1"}, "Tag", "Tag"),
    ({"semver": "1.x"}, "TagAndHEAD", "TagAndHEAD"),
    ({"name": "refs/tags/v1"}, "Tag", "Tag"),
    ({"branch": "main", "tag": "v1"}, "Tag", "Tag"),  # tag beats branch
    ({"branch": "main"}, "Tag", "stall: InvalidVerificationMode"),
    ({"branch": "main"}, "TagAndHEAD", "stall: InvalidVerificationMode"),
    ({"tag": "v1", "commit": "abc1234"}, "Tag", "stall: InvalidVerificationMode"),
    ({"name": "refs/heads/main"}, "TagAndHEAD", "stall: InvalidVerificationMode"),
    ({"tag": "v1"}, "tag", "stall: InvalidVerificationMode"),
    ({"tag": "v1"}, "Commit", "stall: InvalidVerificationMode"),
]


@pytest.mark.parametrize(("ref", "mode", "expected"), VERIFY_CASES)
def test_verification_modes_and_refs(ref: dict[str, str], mode: str | None,
                                     expected: str) -> None:
    verify = {**KEYS, **({"mode": mode} if mode else {})}
    if expected.startswith("stall: "):
        with pytest.raises(GitSpecError) as err:
            parse(ref=ref, verify=verify)
        assert err.value.reason == expected.removeprefix("stall: ")
        return
    spec = parse(ref=ref, verify=verify)
    assert spec.content.verification_mode == expected
    assert spec.content.to_status()["sourceVerificationMode"] == expected


@pytest.mark.parametrize(("url", "ok"), [
    ("https://example.com/app.git", True),
    ("http://example.com/app.git", True),
    ("ssh://git@example.com/app.git", False),
    ("git://example.com/app.git", False),
    ("file:///srv/app.git", False),
])
def test_proxy_secret_ref_only_for_http_urls(url: str, ok: bool) -> None:
    if ok:
        assert parse(url, proxySecretRef={"name": "proxy"}).proxy_secret_ref == "proxy"
    else:
        with pytest.raises(GitSpecError, match=r"spec\.proxySecretRef"):
            parse(url, proxySecretRef={"name": "proxy"})


# (Secret data, http.proxy value or the error's words)
PROXY_CASES: list[tuple[dict[str, str], str]] = [
    ({"address": "http://proxy:3128"}, "http://proxy:3128"),
    ({"address": " https://proxy.example.com/ \n"}, "https://proxy.example.com/"),
    ({"address": "http://proxy:3128", "username": "u"}, "http://u:@proxy:3128"),
    ({"address": "http://proxy:3128", "username": "us er", "password": "p@ss:w/rd%\n"},
     "http://us%20er:p%40ss%3Aw%2Frd%25@proxy:3128"),
    ({"address": "http://[::1]:8080"}, "http://[::1]:8080"),
    ({}, "error: key 'address' not found"),
    ({"address": "  "}, "error: proxy address is empty"),
    ({"address": "socks5://proxy:1080"}, "error: proxy URL must use http or https scheme, got "
                                         "'socks5'"),
    ({"address": "proxy:3128"}, "error: proxy URL must use http or https scheme"),
    ({"address": "http://proxy:99999"}, "error: failed to parse proxy address"),
    ({"address": "http://u:p@proxy:3128"}, "error: put the proxy's credentials in the "
                                           "'username' and 'password' keys"),
]


@pytest.mark.parametrize(("data", "expected"), PROXY_CASES)
def test_proxy_secret(data: dict[str, str], expected: str) -> None:
    raw = {k: v.encode() for k, v in data.items()}
    if expected.startswith("error: "):
        with pytest.raises(ProxyError) as err:
            GitProxy.from_secret("default/proxy", raw)
        assert "secret 'default/proxy'" in str(err.value)
        assert expected.removeprefix("error: ") in str(err.value)
        assert "p@proxy" not in str(err.value)
        return
    assert GitProxy.from_secret("default/proxy", raw).git_config_url() == expected


@pytest.mark.parametrize("with_credentials", [False, True])
def test_proxy_goes_into_the_private_git_config_only(tmp_path: Path,
                                                     with_credentials: bool) -> None:
    proxy = GitProxy("default/proxy", "http://127.0.0.1:3128", "user", "pr0xy secret")
    creds = GitCredentials("default/git", username="deploy", password="git-secret") if (
        with_credentials) else None
    with git_auth_env("https", creds, tmp_path, proxy) as env:
        config = Path(env["GIT_CONFIG_GLOBAL"])
        text = config.read_text()
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        assert stat.S_IMODE(config.parent.stat().st_mode) == 0o700
        assert 'proxy = "http://user:pr0xy%20secret@127.0.0.1:3128"' in text
        assert (env["NO_PROXY"], env["no_proxy"]) == ("", "")
        assert all("pr0xy" not in value for value in env.values())
    assert not config.exists()
    # ssh and git:// URLs never see the proxy (the spec refuses the combination anyway).
    with git_auth_env("git", None, tmp_path, proxy) as env:
        assert env == {}


def test_redact_covers_the_proxy_password() -> None:
    proxy = GitProxy("default/proxy", "http://p:1", "u", "pr0xy secret")
    creds = GitCredentials("default/git", password="git-secret")
    text = "pr0xy secret / pr0xy%20secret / git-secret / u"
    assert redact(text, creds, proxy, None) == "*** / *** / *** / u"
