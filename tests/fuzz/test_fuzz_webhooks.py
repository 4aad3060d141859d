"""Webhook payloads at the Receiver (reconciler/notification/): any headers and body give a
verified event or a Refused (401/400), never another exception; what a sender signs verifies
(round-trip), and a changed body or token does not. The Receiver object itself, however it is
written, parses or raises ReceiverSpecError."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from reconciler.notification.receiver import (
    GENERIC,
    GENERIC_HMAC,
    GITHUB,
    GITLAB,
    Receiver,
    ReceiverSpecError,
)
from reconciler.notification.verify import Refused, sign, verify

TYPES = st.sampled_from([GENERIC, GENERIC_HMAC, GITHUB, GITLAB, "bitbucket", "", "GitHub"])
HEADER_NAMES = st.sampled_from(["X-Signature", "X-Hub-Signature", "X-Hub-Signature-256",
                                "Content-Type", "X-GitHub-Event", "X-Gitlab-Token",
                                "X-Gitlab-Event"])
# Header values as an HTTP server hands them over: latin-1 text.
HEADER_VALUES = st.text(st.characters(min_codepoint=0, max_codepoint=255), max_size=80) | \
    st.sampled_from(["sha256=", "sha1=00", "SHA256=zz", "=", "sha512=" + "0" * 128,
                     "application/json; charset=utf-8", "push", "ping"])
TOKENS = st.text(st.characters(min_codepoint=32, max_codepoint=0xD7FF), min_size=1,
                 max_size=40)


@given(TYPES, TOKENS, st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=5),
       st.binary(max_size=200))
@example(GITHUB, "t", {"X-Hub-Signature-256": "sha256=\u00ff\u00fe"}, b"{}")
@example(GENERIC_HMAC, "t", {"X-Signature": "md5=00"}, b"")
@example(GITLAB, "t", {"X-Gitlab-Token": "\u00e9"}, b"")
def test_any_request_is_verified_or_refused(kind: str, token: str, headers: dict[str, str],
                                           body: bytes) -> None:
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        verified = verify(kind, token, lambda name: lowered.get(name.lower()), body)
    except Refused as exc:
        assert exc.status in (400, 401) and exc.message
        return
    assert isinstance(verified.event, str)


@given(TOKENS, st.binary(max_size=200), st.sampled_from(["sha1", "sha256", "sha512"]),
       st.binary(min_size=1, max_size=8))
def test_what_a_sender_signs_verifies_and_nothing_else_does(token: str, body: bytes,
                                                            algorithm: str,
                                                            extra: bytes) -> None:
    header = sign(token, body, algorithm)
    def headers(name: str) -> str | None:
        return header if name.lower() == "x-signature" else None

    verify(GENERIC_HMAC, token, headers, body)
    for other_token, other_body in ((token + "x", body), (token, body + extra)):
        try:
            verify(GENERIC_HMAC, other_token, headers, other_body)
        except Refused as exc:
            assert exc.status == 401
        else:
            raise AssertionError("a changed body or token verified")


SPEC_VALUES = st.none() | st.integers() | st.text(max_size=10) | st.lists(
    st.text(max_size=5) | st.dictionaries(st.sampled_from(["kind", "name", "matchLabels"]),
                                          st.text(max_size=5) | st.integers(), max_size=3),
    max_size=3) | st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2)


@given(st.dictionaries(st.sampled_from(["type", "events", "resources", "secretRef",
                                        "interval", "suspend"]), SPEC_VALUES, max_size=6),
       st.none() | st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=2))
@example({"interval": "-1s"}, None)
@example({"interval": "1x"}, None)
@example({"interval": "9999999999999h"}, None)
@example({"resources": [{"kind": "GitRepository", "matchLabels": "x"}]}, None)
@example({"resources": 1}, None)
@example({"events": 1}, None)
@example({"events": "push"}, None)
def test_a_receiver_parses_or_raises_its_spec_error(spec: dict[str, Any],
                                                    annotations: Any) -> None:
    obj = {"apiVersion": "notification.toolkit.fluxcd.io/v1", "kind": "Receiver",
           "metadata": {"name": "r", "namespace": "default", "annotations": annotations},
           "spec": spec}
    try:
        receiver = Receiver.parse(obj)
        assert receiver.interval > 0
        receiver.accepts("push")
    except ReceiverSpecError:
        pass
