"""Commit signature verification (spec.verify, mode HEAD) with a GPG key the test makes."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from reconciler.model.conditions import find_condition
from reconciler.sources.artifacts import ArtifactStore
from reconciler.sources.git import GitRepositoryController
from tests.gitservers import GPG, BareRepo, GitDaemon, GpgKey, make_gpg_key
from tests.integration.conftest import FakeClock, Objects, cond, gitrepository

pytestmark = pytest.mark.skipif(
    GPG is None, reason="gpg is missing (apt-get install gnupg; .ci/run does)")


def test_signed_head_verifies_and_an_unsigned_one_never_replaces_it(
    controller: GitRepositoryController, objects: Objects, repo: BareRepo, daemon: GitDaemon,
    store: ArtifactStore, clock: FakeClock,
) -> None:
    with tempfile.TemporaryDirectory(prefix="gpg-") as short:
        signer = make_gpg_key(Path(short) / "h")
        _signed_head_case(signer, controller, objects, repo, daemon, store, clock)
        subprocess.run(["gpgconf", "--kill", "all"], check=False,
                       env={**os.environ, "GNUPGHOME": str(signer.home)})


def _signed_head_case(
    signer: GpgKey, controller: GitRepositoryController, objects: Objects, repo: BareRepo,
    daemon: GitDaemon, store: ArtifactStore, clock: FakeClock,
) -> None:
    signed = repo.commit({"v.txt": "signed\n"}, "signed", sign_with=signer)
    objects.secret("pgp", data={"author.asc": signer.public_armored()})
    obj = gitrepository(daemon.url(repo), {"branch": "main"},
                        verify={"mode": "HEAD", "secretRef": {"name": "pgp"}})

    good = controller.reconcile(obj, objects.get)
    obj["status"] = good.status
    verified = cond(good, "SourceVerified")
    assert (verified["status"], verified["reason"]) == ("True", "Succeeded")
    assert signed in verified["message"] and signer.key_id[-8:] in verified["message"]
    assert good.status["sourceVerificationMode"] == "HEAD"

    unsigned = repo.commit({"v.txt": "unsigned\n"}, "unsigned")
    clock.advance(60)
    bad = controller.reconcile(obj, objects.get)
    failed = cond(bad, "SourceVerified")
    assert (failed["status"], failed["reason"]) == ("False", "InvalidCommitSignature")
    assert f"signature verification of commit '{unsigned}' failed" in failed["message"]
    assert cond(bad, "Ready")["reason"] == "InvalidCommitSignature"
    assert bad.status["artifact"] == good.status["artifact"]
    assert store.exists(bad.status["artifact"]["path"])
    assert find_condition(bad.status["conditions"], "FetchFailed") is None
