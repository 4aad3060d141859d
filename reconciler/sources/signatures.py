"""Commit signature verification (`spec.verify`, mode HEAD) with OpenPGP keys from a Secret.

It owns a throwaway GnuPG home per verification: every value of the Secret is imported as an
armored or binary public key, then `git verify-commit` judges the checked-out commit. Nothing of
the machine's own keyrings is consulted, so only the keys the Secret lists are trusted.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from reconciler.sources.gitexec import GitCommandFailed, GitTimedOut, run_git_streams

_VALIDSIG = re.compile(r"^\[GNUPG:\] (?:GOODSIG|VALIDSIG) (?P<key>[0-9A-Fa-f]+)", re.MULTILINE)
_GOODSIG = re.compile(r"^\[GNUPG:\] GOODSIG (?P<key>[0-9A-Fa-f]+)", re.MULTILINE)


class SignatureError(Exception):
    """The commit is unsigned, signed by an unknown key, or the keys cannot be read."""


def verify_commit(
    checkout: Path, commit: str, keys: Mapping[str, bytes], *, source: str, timeout: float,
) -> str:
    """Verify `commit` in the repository at `checkout`; return the signing key's id."""
    if not keys:
        raise SignatureError(f"secret '{source}' holds no public keys")
    # Not under `workdir`: gpg puts its agent sockets in GNUPGHOME, and a deep path exceeds
    # the 108-byte limit of a Unix socket path.
    with tempfile.TemporaryDirectory(prefix="gnupg-") as home:
        os.chmod(home, 0o700)
        env = {**os.environ, "GNUPGHOME": home}
        try:
            return _verify_in(home, env, checkout, commit, keys, source, timeout)
        finally:
            # gpg may have started an agent for this home; it must not outlive the check.
            subprocess.run(["gpgconf", "--kill", "all"], env=env, capture_output=True,
                           timeout=timeout, check=False)


def _verify_in(
    home: str, env: dict[str, str], checkout: Path, commit: str, keys: Mapping[str, bytes],
    source: str, timeout: float,
) -> str:
    for name, key in sorted(keys.items()):
        done = subprocess.run(
            ["gpg", "--batch", "--quiet", "--import"], input=key, env=env,
            capture_output=True, timeout=timeout, check=False,
        )
        if done.returncode != 0:
            raise SignatureError(
                f"secret '{source}': key '{name}' is not an OpenPGP public key gpg can import"
            )
    try:
        _, status = run_git_streams(["verify-commit", "--raw", commit], timeout=timeout,
                                    cwd=checkout, env={"GNUPGHOME": home})
    except GitCommandFailed:
        raise SignatureError(
            f"signature verification of commit '{commit}' failed: unable to verify commit "
            "with any of the given key rings"
        ) from None
    except GitTimedOut as exc:
        raise SignatureError(str(exc)) from None
    found = _GOODSIG.search(status) or _VALIDSIG.search(status)
    return found.group("key") if found else "unknown"
