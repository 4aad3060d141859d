"""Verification of webhook requests per Receiver type: a table of right, wrong and missing."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

import pytest

from reconciler.notification.verify import (
    Malformed,
    Refused,
    Unauthorized,
    Verified,
    check_signature,
    sign,
    verify,
)

TOKEN = "t0ken"
BODY = b'{"ref":"refs/heads/main"}'


def headers(**given: str) -> Callable[[str], str | None]:
    lowered = {k.replace("_", "-").lower(): v for k, v in given.items()}
    return lambda name: lowered.get(name.lower())


def mac(algorithm: str, body: bytes = BODY, key: str = TOKEN) -> str:
    return hmac.new(key.encode(), body, getattr(hashlib, algorithm)).hexdigest()


JSON = {"Content_Type": "application/json"}

CASES: list[tuple[str, str, dict[str, str], type[Refused] | Verified]] = [
    # github: X-Hub-Signature-256 over the raw body, event from X-GitHub-Event
    ("github signed", "github",
     {**JSON, "X_Hub_Signature_256": f"sha256={mac('sha256')}", "X_GitHub_Event": "push"},
     Verified("push")),
    ("github uppercase hex", "github",
     {**JSON, "X_Hub_Signature_256": f"sha256={mac('sha256').upper()}", "X_GitHub_Event": "push"},
     Verified("push")),
    ("github legacy sha1 header", "github",
     {**JSON, "X_Hub_Signature": f"sha1={mac('sha1')}", "X_GitHub_Event": "ping"},
     Verified("ping")),
    ("github form-encoded", "github",
     {"Content_Type": "application/x-www-form-urlencoded; charset=utf-8",
      "X_Hub_Signature_256": f"sha256={mac('sha256')}"}, Verified("")),
    ("github wrong key", "github",
     {**JSON, "X_Hub_Signature_256": f"sha256={mac('sha256', key='other')}"}, Unauthorized),
    ("github signature of another body", "github",
     {**JSON, "X_Hub_Signature_256": f"sha256={mac('sha256', body=b'{}')}"}, Unauthorized),
    ("github missing signature", "github", {**JSON, "X_GitHub_Event": "push"}, Unauthorized),
    ("github empty signature", "github", {**JSON, "X_Hub_Signature_256": ""}, Unauthorized),
    ("github unknown hash", "github",
     {**JSON, "X_Hub_Signature_256": f"md5={mac('md5')}"}, Unauthorized),
    ("github no prefix", "github", {**JSON, "X_Hub_Signature_256": mac("sha256")}, Unauthorized),
    ("github not hex", "github", {**JSON, "X_Hub_Signature_256": "sha256=zz"}, Unauthorized),
    ("github truncated", "github",
     {**JSON, "X_Hub_Signature_256": f"sha256={mac('sha256')[:-2]}"}, Unauthorized),
    ("github signature in the gitlab header", "github",
     {**JSON, "X_Gitlab_Token": TOKEN}, Unauthorized),
    ("github signed, unsupported content type", "github",
     {"Content_Type": "text/plain", "X_Hub_Signature_256": f"sha256={mac('sha256')}"},
     Malformed),
    ("github signed, no content type", "github",
     {"X_Hub_Signature_256": f"sha256={mac('sha256')}"}, Malformed),
    # gitlab: X-Gitlab-Token equals the token
    ("gitlab token", "gitlab", {"X_Gitlab_Token": TOKEN, "X_Gitlab_Event": "Push Hook"},
     Verified("Push Hook")),
    ("gitlab wrong token", "gitlab", {"X_Gitlab_Token": "t0kem"}, Unauthorized),
    ("gitlab token prefix", "gitlab", {"X_Gitlab_Token": TOKEN[:-1]}, Unauthorized),
    ("gitlab missing token", "gitlab", {"X_Gitlab_Event": "Push Hook"}, Unauthorized),
    ("gitlab github signature instead", "gitlab",
     {"X_Hub_Signature_256": f"sha256={mac('sha256')}"}, Unauthorized),
    # generic: nothing checked
    ("generic", "generic", {}, Verified()),
    # generic-hmac: X-Signature <hash>=<hex>
    ("generic-hmac sha1", "generic-hmac", {"X_Signature": f"sha1={mac('sha1')}"}, Verified()),
    ("generic-hmac sha256", "generic-hmac", {"X_Signature": f"sha256={mac('sha256')}"},
     Verified()),
    ("generic-hmac sha512", "generic-hmac", {"X_Signature": f"sha512={mac('sha512')}"},
     Verified()),
    ("generic-hmac hash named wrong", "generic-hmac", {"X_Signature": f"sha1={mac('sha256')}"},
     Unauthorized),
    ("generic-hmac wrong key", "generic-hmac",
     {"X_Signature": f"sha256={mac('sha256', key='x')}"}, Unauthorized),
    ("generic-hmac missing", "generic-hmac", {}, Unauthorized),
    ("generic-hmac in the github header", "generic-hmac",
     {"X_Hub_Signature_256": f"sha256={mac('sha256')}"}, Unauthorized),
    # a type this product does not verify
    ("unsupported type", "harbor", {"Authorization": TOKEN}, Malformed),
]


@pytest.mark.parametrize(("case", "type_", "given", "expected"), CASES,
                         ids=[c[0] for c in CASES])
def test_verify(case: str, type_: str, given: dict[str, str],
                expected: type[Refused] | Verified) -> None:
    if isinstance(expected, Verified):
        assert verify(type_, TOKEN, headers(**given), BODY) == expected
    else:
        with pytest.raises(expected) as refused:
            verify(type_, TOKEN, headers(**given), BODY)
        assert refused.value.status == (401 if expected is Unauthorized else 400)
        assert TOKEN not in refused.value.message


def test_sign_matches_what_senders_compute() -> None:
    assert sign(TOKEN, BODY) == f"sha256={mac('sha256')}"
    check_signature(sign(TOKEN, BODY, "sha512"), TOKEN, BODY, "X-Signature")


def test_comparisons_are_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import reconciler.notification.verify as module

    calls: list[tuple[object, object]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(module, "hmac", type("H", (), {"compare_digest": staticmethod(spy),
                                                       "new": staticmethod(hmac.new)}))
    verify("gitlab", TOKEN, headers(X_Gitlab_Token=TOKEN), BODY)
    verify("generic-hmac", TOKEN, headers(X_Signature=f"sha256={mac('sha256')}"), BODY)
    assert len(calls) == 2
