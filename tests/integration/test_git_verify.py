"""Signature verification (spec.verify, modes HEAD, Tag and TagAndHEAD) with GPG keys the test
makes: signed, unsigned and lightweight tags, and tags signed by a key the Secret does not list."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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


# --- Tag and TagAndHEAD -----------------------------------------------------------------------


@dataclass(frozen=True)
class Tagged:
    """A repository served by git daemon whose tags cover every case of tag verification."""

    url: str
    signer: GpgKey
    stranger: GpgKey
    tags: dict[str, str]  # tag -> what refs/tags/<tag> names
    signed_commit: str
    unsigned_commit: str


@pytest.fixture(scope="module")
def tagged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tagged]:
    served = tmp_path_factory.mktemp("served")
    with tempfile.TemporaryDirectory(prefix="gpg-") as short:
        signer = make_gpg_key(Path(short) / "s")
        stranger = make_gpg_key(Path(short) / "x", email="stranger@example.com")
        repo = BareRepo(served, "tagged")
        signed = repo.commit({"v.txt": "signed\n"}, "signed", sign_with=signer)
        tags = {
            "v1.0.0": repo.tag("v1.0.0", signed, sign_with=signer),
            "v2.0.0": repo.tag("v2.0.0", signed),  # annotated, unsigned
            "v2.1.0": repo.tag("v2.1.0", signed, annotated=False),
            "v3.0.0": repo.tag("v3.0.0", signed, sign_with=stranger),
        }
        unsigned = repo.commit({"v.txt": "unsigned\n"}, "unsigned")
        tags["v1.1.0"] = repo.tag("v1.1.0", unsigned, sign_with=signer)
        with GitDaemon(served) as daemon:
            yield Tagged(daemon.url(repo), signer, stranger, tags, signed, unsigned)
        for key in (signer, stranger):
            subprocess.run(["gpgconf", "--kill", "all"], check=False,
                           env={**os.environ, "GNUPGHOME": str(key.home)})


def _tag(t: Tagged, name: str) -> str:
    return f"tag '{name}@{t.tags[name]}' with key '{t.signer.key_id}'"


def _commit(t: Tagged, sha: str) -> str:
    return f"commit '{sha}' with key '{t.signer.key_id}'"


# (case, spec.ref, mode, expected SourceVerified status, reason, message parts (from Tagged))
TAG_CASES: list[tuple[str, dict[str, str], str, str, str, Callable[[Tagged], list[str]]]] = [
    ("signed tag", {"tag": "v1.0.0"}, "Tag", "True", "Succeeded",
     lambda t: ["verified signature of", _tag(t, "v1.0.0")]),
    ("signed tag and commit", {"tag": "v1.0.0"}, "TagAndHEAD", "True", "Succeeded",
     lambda t: ["verified signature of", _tag(t, "v1.0.0"), _commit(t, t.signed_commit)]),
    ("semver picks the signed tag", {"semver": ">=1.0.0 <1.1.0"}, "TagAndHEAD", "True",
     "Succeeded", lambda t: [_tag(t, "v1.0.0"), _commit(t, t.signed_commit)]),
    ("ref name under refs/tags", {"name": "refs/tags/v1.0.0"}, "Tag", "True", "Succeeded",
     lambda t: ["verified signature of", _tag(t, "v1.0.0")]),
    ("HEAD mode with a tag ref", {"tag": "v1.0.0"}, "HEAD", "True", "Succeeded",
     lambda t: ["verified signature of", _commit(t, t.signed_commit)]),
    ("signed tag on unsigned commit, Tag", {"tag": "v1.1.0"}, "Tag", "True", "Succeeded",
     lambda t: ["verified signature of", _tag(t, "v1.1.0")]),
    ("signed tag on unsigned commit, TagAndHEAD", {"tag": "v1.1.0"}, "TagAndHEAD", "False",
     "InvalidCommitSignature",
     lambda t: [f"signature verification of commit '{t.unsigned_commit}' failed: unable to "
                "verify Git commit: unable to verify payload as the provided signature is "
                "empty"]),
    ("unsigned annotated tag", {"tag": "v2.0.0"}, "Tag", "False", "InvalidGitObject",
     lambda t: [f"cannot verify signature of tag 'v2.0.0@{t.tags['v2.0.0']}' since it is "
                "not signed"]),
    ("lightweight tag", {"tag": "v2.1.0"}, "TagAndHEAD", "False", "InvalidGitObject",
     lambda t: ["cannot verify signature of tag 'v2.1.0' since it is not signed"]),
    ("tag signed by an unknown key", {"tag": "v3.0.0"}, "Tag", "False", "InvalidTagSignature",
     lambda t: [f"signature verification of tag 'v3.0.0@{t.tags['v3.0.0']}' failed: unable "
                "to verify Git tag: unable to verify payload with any of the given key rings"]),
]


@pytest.mark.parametrize(("ref", "mode", "status", "reason", "parts"),
                         [case[1:] for case in TAG_CASES], ids=[case[0] for case in TAG_CASES])
def test_tag_verification_modes(
    controller: GitRepositoryController, objects: Objects, store: ArtifactStore,
    tagged: Tagged, ref: dict[str, str], mode: str, status: str, reason: str,
    parts: Callable[[Tagged], list[str]],
) -> None:
    objects.secret("pgp", data={"author.asc": tagged.signer.public_armored()})
    result = controller.reconcile(
        gitrepository(tagged.url, ref, verify={"mode": mode, "secretRef": {"name": "pgp"}}),
        objects.get)
    verified = cond(result, "SourceVerified")
    assert (verified["status"], verified["reason"]) == (status, reason), verified["message"]
    for part in parts(tagged):
        assert part in verified["message"]
    ready = cond(result, "Ready")
    if status == "True":
        assert ready["status"] == "True"
        assert result.status["sourceVerificationMode"] == mode
        assert store.exists(result.status["artifact"]["path"])
    else:
        # Retried, not stalled: the upstream tag or the Secret's keys may change.
        assert (ready["status"], ready["reason"]) == ("False", reason)
        assert "artifact" not in result.status
        assert find_condition(result.status["conditions"], "Stalled") is None


@pytest.mark.parametrize("mode", ["Tag", "TagAndHEAD"])
@pytest.mark.parametrize("ref", [{"branch": "main"}, {"commit": "0" * 40},
                                 {"name": "refs/heads/main"}])
def test_tag_modes_need_a_tag_ref_and_stall_without_one(
    controller: GitRepositoryController, objects: Objects, ref: dict[str, str], mode: str,
) -> None:
    result = controller.reconcile(gitrepository(
        "git://127.0.0.1:9/none.git", ref, verify={"mode": mode, "secretRef": {"name": "pgp"}}),
        objects.get)
    for type_ in ("Stalled", "SourceVerified"):
        found = cond(result, type_)
        assert found["reason"] == "InvalidVerificationMode"
        assert "cannot verify tag object's signature if a tag reference is not specified" in (
            found["message"])
    assert cond(result, "SourceVerified")["status"] == "False"
    assert controller.ls_remote_calls == 0
