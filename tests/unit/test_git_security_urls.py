"""Which spec.url forms a GitRepository may use, and how each refused one reads."""

from __future__ import annotations

import pytest

from reconciler.sources.gitspec import (
    GitSpecError,
    check_url_allowed,
    check_url_syntax,
    url_transport,
)


@pytest.mark.parametrize(("url", "transport"), [
    ("https://github.com/org/repo", "https"), ("http://h/r", "http"),
    ("ssh://git@h:22/r", "ssh"), ("git@github.com:org/repo.git", "ssh"),
    ("github.com:org/repo", "ssh"), ("git+ssh://h/r", "ssh"), ("git://h/r", "git"),
    ("file:///srv/r", "file"), ("/srv/r", "file"), ("./r", "file"), ("r", "file"),
    ("./a:b", "file"), ("~/r", "file"),
    ("ext::sh -c id", ""), ("fd::3", ""), ("https::https://h/r", ""), ("ftp://h/r", ""),
])
def test_transport_of_a_url(url: str, transport: str) -> None:
    assert url_transport(url) == transport


@pytest.mark.parametrize("url", ["/srv/r", "file:///srv/r", "FILE:///srv/r", "./r", "../r"])
def test_local_urls_need_the_setting(url: str) -> None:
    with pytest.raises(GitSpecError) as caught:
        check_url_allowed(url, allow_local=False)
    assert caught.value.reason == "URLSchemeNotAllowed"
    assert "http://, https://, ssh://" in str(caught.value)
    check_url_allowed(url, allow_local=True)


@pytest.mark.parametrize("url", ["https://h/r", "git@h:r", "git://h/r", "ssh://h/r"])
def test_network_urls_need_nothing(url: str) -> None:
    check_url_syntax(url)
    check_url_allowed(url, allow_local=False)


@pytest.mark.parametrize(("url", "says"), [
    ("-uhelp", "must not start with '-'"),
    ("--upload-pack=id", "must not start with '-'"),
    ("ext::sh -c id", "transport 'ext'::"),
    ("fd::3", "transport 'fd'::"),
    ("ftp://h/r", "scheme 'ftp'"),
    ("ssh://-oProxyCommand=id/r", "host must not start with '-'"),
    ("git@-oProxyCommand=id:r", "host must not start with '-'"),
    ("https://h/r\nx", "control character"),
])
def test_injection_urls_are_invalid(url: str, says: str) -> None:
    with pytest.raises(GitSpecError, match=says) as caught:
        check_url_syntax(url)
    assert caught.value.reason == "InvalidURL"
