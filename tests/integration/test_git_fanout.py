"""One commit shared by many GitRepositories: one ls-remote and one fetch per (URL, credentials,
commit), never shared across credentials, and a failed fetch never handed on as a success.

Real servers on 127.0.0.1: `git daemon` and git-http-backend behind Basic auth
(tests/gitservers.py).
"""

from __future__ import annotations

import gzip
import os
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest

from reconciler.model.objects import Obj
from reconciler.sources.artifacts import Artifact, ArtifactPathError, ArtifactStore
from reconciler.sources.git import GitRepositoryController
from tests.gitservers import GPG, BareRepo, GitDaemon, HttpAuth, SmartHttpServer, make_gpg_key
from tests.integration.conftest import FakeClock, Objects, gitrepository

N = 20


def reconcile_all(controller: GitRepositoryController, objs: list[Obj],
                  objects: Objects | None = None) -> None:
    for obj in objs:
        obj["status"] = controller.reconcile(obj, objects.get if objects else None).status


def counts(controller: GitRepositoryController) -> tuple[int, int, int]:
    return controller.ls_remote_calls, controller.fetch_calls, controller.archives_built


def reset(controller: GitRepositoryController) -> None:
    controller.ls_remote_calls = controller.fetch_calls = controller.archives_built = 0


def revisions(objs: list[Obj]) -> set[str]:
    return {o["status"]["artifact"]["revision"] for o in objs}


def test_one_listing_and_one_fetch_per_commit_however_many_objects(
    controller: GitRepositoryController, store: ArtifactStore, clock: FakeClock,
    daemon: GitDaemon, repo: BareRepo,
) -> None:
    objs = [gitrepository(daemon.url(repo), {"branch": "main"}, name=f"app-{i}")
            for i in range(N)]
    reconcile_all(controller, objs)
    assert counts(controller) == (1, 1, 1)
    for round_ in range(2):
        reset(controller)
        commit = repo.commit({"deploy/app.yaml": f"replicas: {round_ + 2}\n"}, "scale")
        clock.advance(60)
        reconcile_all(controller, objs)
        assert counts(controller) == (1, 1, 1)
        assert revisions(objs) == {f"main@sha1:{commit}"}
        assert {cond_status(o) for o in objs} == {"True"}
        # Each object has the archive under its own name, all of them one file on disk.
        paths = [o["status"]["artifact"]["path"] for o in objs]
        assert len(set(paths)) == N and all(f"/app-{i}/" in p for i, p in enumerate(paths))
        inodes = {os.stat(store.open(p)).st_ino for p in paths}
        assert len(inodes) == 1
        assert len({o["status"]["artifact"]["digest"] for o in objs}) == 1


def test_objects_with_other_credentials_get_their_own_fetch(
    controller: GitRepositoryController, objects: Objects, clock: FakeClock,
    served: Path, repo: BareRepo,
) -> None:
    auth = HttpAuth(users={"alice": "alice-secret", "bob": "bob-secret"})
    with SmartHttpServer(served, auth) as http:
        url = http.url(repo)
        objects.secret("alice", {"username": "alice", "password": "alice-secret"})
        objects.secret("bob", {"username": "bob", "password": "bob-secret"})
        objects.secret("mallory", {"username": "alice", "password": "guessed"})
        alices = [gitrepository(url, {"branch": "main"}, name=f"alice-{i}",
                                secretRef={"name": "alice"}) for i in range(3)]
        bobs = [gitrepository(url, {"branch": "main"}, name=f"bob-{i}",
                              secretRef={"name": "bob"}) for i in range(3)]
        anonymous = gitrepository(url, {"branch": "main"}, name="anonymous")
        mallory = gitrepository(url, {"branch": "main"}, name="mallory",
                                secretRef={"name": "mallory"})
        reconcile_all(controller, [*alices, *bobs], objects)
        # One listing and one build per identity, shared within it.
        assert counts(controller) == (2, 2, 2)
        assert len(revisions([*alices, *bobs])) == 1
        # Same URL and commit, already built twice: without the right credentials, nothing.
        reconcile_all(controller, [anonymous, mallory], objects)
        for obj in (anonymous, mallory):
            assert "artifact" not in obj["status"]
            assert cond_status(obj) == "False"
            assert condition(obj, "FetchFailed")["reason"] == "AuthenticationFailed"
        assert counts(controller)[1:] == (2, 2)


def test_a_failed_fetch_is_not_shared_as_a_success(
    controller: GitRepositoryController, clock: FakeClock, served: Path, repo: BareRepo,
) -> None:
    with SmartHttpServer(served) as http:
        objs = [gitrepository(http.url(repo), {"branch": "main"}, name=f"app-{i}")
                for i in range(5)]
        reconcile_all(controller, objs)
        old = revisions(objs)
        commit = repo.commit({"deploy/app.yaml": "replicas: 9\n"}, "scale")
        clock.advance(60)
        reset(controller)
        with upload_pack_refused(http):
            reconcile_all(controller, objs)
        # The listing worked (once), every fetch failed: each object tried its own and failed,
        # and kept its last good artifact.
        assert counts(controller) == (1, 5, 0)
        assert revisions(objs) == old
        assert {cond_status(o) for o in objs} == {"False"}
        clock.advance(10)  # past the retry backoff
        reset(controller)
        reconcile_all(controller, objs)
        assert controller.fetch_calls == 1 and controller.archives_built == 1
        assert revisions(objs) == {f"main@sha1:{commit}"}


def test_objects_waiting_on_a_build_in_flight_share_it(
    store: ArtifactStore, clock: FakeClock, tmp_path: Path, daemon: GitDaemon, repo: BareRepo,
) -> None:
    """The daemon reconciles on several workers: objects that want the archive another is
    building wait for it instead of fetching the same commit alongside."""
    controller = GitRepositoryController(store, clock, tmp_path / "work")
    objs = [gitrepository(daemon.url(repo), {"branch": "main"}, name=f"app-{i}")
            for i in range(8)]
    start = threading.Barrier(len(objs))
    errors: list[BaseException] = []

    def work(obj: Obj) -> None:
        try:
            start.wait()
            obj["status"] = controller.reconcile(obj).status
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(o,)) for o in objs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert counts(controller) == (1, 1, 1)
    assert len(revisions(objs)) == 1
    assert {cond_status(o) for o in objs} == {"True"}


def test_a_link_planted_on_the_way_to_a_shared_archive_is_not_followed(
    store: ArtifactStore, tmp_path: Path,
) -> None:
    """Resolving a store path looks only at the components below the root when none is a link
    (the shared fan-out opens the source archive for every object): a link on the way still
    goes through the full resolution, which refuses one leading out of the store."""
    outside = tmp_path / "outside" / "n"
    outside.mkdir(parents=True)
    (outside / "a.tar.gz").write_bytes(b"not ours")
    (store.root / "gitrepository").mkdir()
    (store.root / "gitrepository" / "ns").symlink_to(outside.parent)
    with pytest.raises(ArtifactPathError):
        store.open("gitrepository/ns/n/a.tar.gz")
    source = Artifact("u", "gitrepository/ns/n/a.tar.gz", "main@sha1:x", "sha256:x", 8, "t")
    with pytest.raises(ArtifactPathError):
        store.store_copy("GitRepository", "other", "app", "main@sha1:x", source, now="t")
    assert not (store.root / "gitrepository" / "other" / "app" / "a.tar.gz").exists()


# --- helpers ---------------------------------------------------------------------------------


def condition(obj: Obj, type_: str) -> dict[str, Any]:
    found = [c for c in obj["status"].get("conditions", []) if c["type"] == type_]
    assert found, f"no {type_} condition in {obj['status']}"
    return dict(found[0])


def cond_status(obj: Obj) -> str:
    return str(condition(obj, "Ready")["status"])


class upload_pack_refused:  # noqa: N801 - used as a context manager, like a function
    """The server lists refs but fails every fetch with a 503: a POST to git-upload-pack that
    asks for objects (protocol v2 `command=fetch`, v0 `want` lines)."""

    def __init__(self, server: SmartHttpServer) -> None:
        assert server._httpd is not None
        self.handler: Any = server._httpd.RequestHandlerClass

    def __enter__(self) -> None:
        serve, read_body = self.handler._cgi, self.handler._body

        def cgi(handler: Any) -> None:
            if handler.command == "POST":
                body = read_body(handler)
                plain = (gzip.decompress(body)
                         if handler.headers.get("Content-Encoding") == "gzip" else body)
                if b"command=fetch" in plain or b"want " in plain:
                    handler.send_response(503)
                    handler.send_header("Content-Length", "0")
                    handler.end_headers()
                    return
                handler._body = lambda: body
            serve(handler)

        self.handler._cgi = cgi

    def __exit__(self, *exc: object) -> None:
        del self.handler._cgi


@pytest.mark.skipif(GPG is None, reason="gpg is missing (apt-get install gnupg; .ci/run does)")
def test_a_verified_build_is_shared_only_with_objects_holding_the_same_keys(
    controller: GitRepositoryController, objects: Objects, clock: FakeClock,
    daemon: GitDaemon, repo: BareRepo,
) -> None:
    with tempfile.TemporaryDirectory(prefix="gpg-") as short:
        signer = make_gpg_key(Path(short) / "s")
        stranger = make_gpg_key(Path(short) / "t", "stranger@example.com")
        try:
            signed = repo.commit({"v.txt": "signed\n"}, "signed", sign_with=signer)
            # Two Secrets with the same key (other names), one with a key that did not sign.
            for name in ("pgp-a", "pgp-b"):
                objects.secret(name, data={"author.asc": signer.public_armored()})
            objects.secret("pgp-other", data={"author.asc": stranger.public_armored()})
            trusting = [gitrepository(daemon.url(repo), {"branch": "main"}, name=f"app-{i}",
                                      verify={"mode": "HEAD",
                                              "secretRef": {"name": f"pgp-{'ab'[i % 2]}"}})
                        for i in range(4)]
            reconcile_all(controller, trusting, objects)
            assert counts(controller) == (1, 1, 1)
            for obj in trusting:
                verified = condition(obj, "SourceVerified")
                assert (verified["status"], verified["reason"]) == ("True", "Succeeded")
                assert signed in verified["message"]
            assert revisions(trusting) == {f"main@sha1:{signed}"}

            other = gitrepository(daemon.url(repo), {"branch": "main"}, name="other",
                                  verify={"mode": "HEAD", "secretRef": {"name": "pgp-other"}})
            reconcile_all(controller, [other], objects)
            assert controller.fetch_calls == 2  # its own checkout, verified with its own keys
            failed = condition(other, "SourceVerified")
            assert (failed["status"], failed["reason"]) == ("False", "InvalidCommitSignature")
            assert "artifact" not in other["status"]
        finally:
            for key in (signer, stranger):
                subprocess.run(["gpgconf", "--kill", "all"], check=False,
                               env={**os.environ, "GNUPGHOME": str(key.home)})
