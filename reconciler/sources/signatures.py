"""Signature verification (`spec.verify`, modes HEAD, Tag and TagAndHEAD) with OpenPGP keys from a
Secret, worded as Flux's source-controller words its SourceVerified condition.

It owns a throwaway GnuPG home per verification: every value of the Secret is imported as an
armored or binary public key, then `git verify-tag` judges the annotated tag the checkout went
through and `git verify-commit` the checked-out commit, as the mode asks. Nothing of the
machine's own keyrings is consulted, so only the keys the Secret lists are trusted.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from reconciler.sources.gitexec import GitCommandFailed, GitTimedOut, run_git, run_git_streams
from reconciler.sources.gitspec import (
    INVALID_COMMIT_SIGNATURE,
    INVALID_GIT_OBJECT,
    INVALID_TAG_SIGNATURE,
    MODE_HEAD,
    MODE_TAG,
    MODE_TAG_AND_HEAD,
)

_VALIDSIG = re.compile(r"^\[GNUPG:\] (?:GOODSIG|VALIDSIG) (?P<key>[0-9A-Fa-f]+)", re.MULTILINE)
_GOODSIG = re.compile(r"^\[GNUPG:\] GOODSIG (?P<key>[0-9A-Fa-f]+)", re.MULTILINE)
# What git itself recognizes as a signature in a tag's body or a commit's gpgsig header.
_SIGNATURE_START = re.compile(r"^-----BEGIN (PGP SIGNATURE|PGP MESSAGE|SSH SIGNATURE|SIGNED "
                              r"MESSAGE)-----$", re.MULTILINE)
# Flux's wording (fluxcd/pkg/git/signatures) for a signature no key of the Secret verifies.
_NO_KEY_VERIFIES = "unable to verify payload with any of the given key rings"


class SignatureError(Exception):
    """The commit or tag is unsigned, signed by an unknown key, or the keys cannot be read;
    `reason` is the Flux reason for SourceVerified=False."""

    def __init__(self, message: str, reason: str = INVALID_COMMIT_SIGNATURE) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class TagObject:
    """The tag a checkout went through: `oid` is what `refs/tags/<name>` points at, a tag object
    when the tag is annotated, the commit itself when it is lightweight."""

    name: str
    oid: str
    annotated: bool

    def describe(self) -> str:
        """Flux's Tag.String(): `<name>@<tag object id>`, or the bare name for a lightweight tag
        (which has no object of its own)."""
        return f"{self.name}@{self.oid}" if self.annotated else self.name


def read_tag(checkout: Path, name: str, ref: str, *, timeout: float) -> TagObject:
    """The tag `ref` (a local ref the fetch wrote) in the repository at `checkout`."""
    try:
        oid = run_git(["rev-parse", "--verify", "--quiet", ref], timeout=timeout,
                      cwd=checkout).strip()
        kind = run_git(["cat-file", "-t", oid], timeout=timeout, cwd=checkout).strip()
    except (GitCommandFailed, GitTimedOut) as exc:
        raise SignatureError(f"unable to read tag '{name}' of the checkout: {exc}",
                             INVALID_GIT_OBJECT) from None
    return TagObject(name, oid, annotated=kind == "tag")


def verify_checkout(
    checkout: Path,
    commit: str,
    tag: TagObject | None,
    mode: str,
    keys: Mapping[str, bytes],
    *,
    source: str,
    timeout: float,
) -> str:
    """Verify what `mode` asks for and return Flux's SourceVerified message, one line per
    verified object; raise SignatureError (with Flux's reason and message) otherwise."""
    verify_tag = mode in (MODE_TAG, MODE_TAG_AND_HEAD)
    verify_head = mode in (MODE_HEAD, MODE_TAG_AND_HEAD)
    if verify_tag and tag is None:
        raise SignatureError(
            "cannot verify tag object's signature if a tag reference is not specified",
            INVALID_GIT_OBJECT,
        )
    if not keys:
        raise SignatureError(f"secret '{source}' holds no public keys")
    lines = []
    with _keyring(keys, source, timeout) as home:
        if verify_tag and tag is not None:
            key = _verify_tag(home, checkout, tag, timeout)
            lines.append(f"tag '{tag.describe()}' with key '{key}'")
        if verify_head:
            key = _verify_commit(home, checkout, commit, timeout)
            lines.append(f"commit '{commit}' with key '{key}'")
    return "verified signature of" + "".join(f"\n\t- {line}" for line in lines)


@contextlib.contextmanager
def _keyring(keys: Mapping[str, bytes], source: str, timeout: float) -> Iterator[str]:
    """A GnuPG home holding exactly the Secret's keys, removed (agent and all) on exit."""
    # Not under the controller's workdir: gpg puts its agent sockets in GNUPGHOME, and a deep
    # path exceeds the 108-byte limit of a Unix socket path.
    with tempfile.TemporaryDirectory(prefix="gnupg-") as home:
        os.chmod(home, 0o700)
        env = {**os.environ, "GNUPGHOME": home}
        try:
            for name, key in sorted(keys.items()):
                done = subprocess.run(
                    ["gpg", "--batch", "--quiet", "--import"], input=key, env=env,
                    capture_output=True, timeout=timeout, check=False,
                )
                if done.returncode != 0:
                    raise SignatureError(
                        f"secret '{source}': key '{name}' is not an OpenPGP public key gpg "
                        "can import"
                    )
            yield home
        finally:
            # gpg may have started an agent for this home; it must not outlive the check.
            subprocess.run(["gpgconf", "--kill", "all"], env=env, capture_output=True,
                           timeout=timeout, check=False)


def _verify_tag(home: str, checkout: Path, tag: TagObject, timeout: float) -> str:
    body = _object_body(checkout, "tag", tag.oid, timeout) if tag.annotated else ""
    if not _SIGNATURE_START.search(body):
        # Flux does not stall here: the upstream tag may be re-created signed at any time.
        raise SignatureError(
            f"cannot verify signature of tag '{tag.describe()}' since it is not signed",
            INVALID_GIT_OBJECT,
        )
    return _verify(home, checkout, ["verify-tag", "--raw", tag.oid], timeout,
                   f"signature verification of tag '{tag.describe()}' failed: unable to verify "
                   f"Git tag: {_NO_KEY_VERIFIES}", INVALID_TAG_SIGNATURE)


def _verify_commit(home: str, checkout: Path, commit: str, timeout: float) -> str:
    failed = f"signature verification of commit '{commit}' failed: unable to verify Git commit"
    headers = _object_body(checkout, "commit", commit, timeout).partition("\n\n")[0]
    if not re.search(r"^gpgsig(-sha256)? ", headers, re.MULTILINE):
        raise SignatureError(
            f"{failed}: unable to verify payload as the provided signature is empty")
    return _verify(home, checkout, ["verify-commit", "--raw", commit], timeout,
                   f"{failed}: {_NO_KEY_VERIFIES}", INVALID_COMMIT_SIGNATURE)


def _object_body(checkout: Path, kind: str, oid: str, timeout: float) -> str:
    try:
        return run_git(["cat-file", kind, oid], timeout=timeout, cwd=checkout)
    except (GitCommandFailed, GitTimedOut) as exc:
        raise SignatureError(f"unable to read {kind} '{oid}': {exc}", INVALID_GIT_OBJECT) from None


def _verify(home: str, checkout: Path, args: list[str], timeout: float, failure: str,
            reason: str) -> str:
    """Run git's verify command against the keyring in `home`; the signing key's id."""
    try:
        _, status = run_git_streams(args, timeout=timeout, cwd=checkout,
                                    env={"GNUPGHOME": home})
    except GitCommandFailed:
        raise SignatureError(failure, reason) from None
    except GitTimedOut as exc:
        raise SignatureError(str(exc), reason) from None
    found = _GOODSIG.search(status) or _VALIDSIG.search(status)
    return found.group("key") if found else "unknown"
