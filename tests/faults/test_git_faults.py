"""Git failing under a deployed GitRepository and Kustomization: an unreachable host, a server
that hangs (bounded by `spec.timeout`), a branch deleted, a corrupt pack, credentials revoked.
Each must leave the last good artifact and what it deployed in place (same objects, same uids,
nothing pruned) and say what went wrong in the GitRepository's Ready condition; once Git is
well again, the next commit deploys. A force-push that drops the deployed commit is not a
failure: the new history deploys, and objects still in it are kept (not deleted and made
again).

In-process (the simulated cluster, virtual time) over real Git servers on 127.0.0.1.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from reconciler.engine.runner import run_until_settled
from reconciler.engine.wiring import product_controllers
from reconciler.model.conditions import find_condition
from reconciler.model.limits import DEFAULT_LIMITS
from reconciler.settings import SourceSettings
from simulator.environment import SimulatedEnvironment
from tests.gitservers import BareRepo, GitDaemon, HttpAuth, SmartHttpServer, free_port, run

SOURCE_API = "source.toolkit.fluxcd.io/v1"
KS_API = "kustomize.toolkit.fluxcd.io/v1"


def _cm(name: str, value: str = "1") -> str:
    return (f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"
            f"data:\n  value: \"{value}\"\n")


class Hanging:
    """A TCP server that accepts and never answers (until it stops)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.held.append(conn)

    def close(self) -> None:
        self.stop.set()
        for conn in self.held:
            conn.close()
        self.sock.close()


class World:
    """A GitRepository (`url`) and a pruning Kustomization of its ./deploy on the simulated
    cluster, with the product's controllers."""

    def __init__(self, tmp: Path, url: str, secret: dict[str, str] | None = None,
                 timeout: str = "3s") -> None:
        self.env = SimulatedEnvironment()
        self.backend = self.env.cluster
        sources = SourceSettings(artifact_root=tmp / "artifacts", workdir=tmp / "git")
        self.controllers = [*product_controllers(self.backend, self.env.clock, sources,
                                                 DEFAULT_LIMITS), *self.env.controllers]
        self.backend.apply({"apiVersion": "v1", "kind": "Namespace",
                            "metadata": {"name": "apps"}})
        spec: dict[str, Any] = {"url": url, "interval": "1m", "timeout": timeout,
                                "ref": {"branch": "main"}}
        if secret is not None:
            self.backend.apply({"apiVersion": "v1", "kind": "Secret",
                                "metadata": {"name": "git-auth", "namespace": "default"},
                                "stringData": secret})
            spec["secretRef"] = {"name": "git-auth"}
        self.backend.apply({"apiVersion": SOURCE_API, "kind": "GitRepository",
                            "metadata": {"name": "config", "namespace": "default"},
                            "spec": spec})
        self.backend.apply({
            "apiVersion": KS_API, "kind": "Kustomization",
            "metadata": {"name": "app", "namespace": "default"},
            "spec": {"interval": "10m", "path": "./deploy", "prune": True,
                     "sourceRef": {"kind": "GitRepository", "name": "config"},
                     "targetNamespace": "apps"}})
        self.polls = 0

    def settle(self) -> None:
        run_until_settled(self.env, self.controllers, lambda: False, budget_seconds=30)

    def poll(self, url: str | None = None) -> None:
        """Ask for a fetch now (Flux's reconcile.fluxcd.io/requestedAt), optionally from a new
        URL, and settle."""
        self.polls += 1
        repo = self.git_repository()
        repo["metadata"].setdefault("annotations", {})["reconcile.fluxcd.io/requestedAt"] = \
            f"{datetime.now(UTC).isoformat()}-{self.polls}"
        if url is not None:
            repo["spec"]["url"] = url
        repo["metadata"].pop("managedFields", None)
        repo.pop("status", None)
        self.backend.apply(repo)
        self.settle()

    def git_repository(self) -> dict[str, Any]:
        found = self.backend.get(SOURCE_API, "GitRepository", "default", "config")
        assert found is not None
        return dict(found)

    def kustomization(self) -> dict[str, Any]:
        found = self.backend.get(KS_API, "Kustomization", "default", "app")
        assert found is not None
        return dict(found)

    def deployed(self) -> dict[str, str]:
        """ConfigMap name -> uid in `apps`."""
        return {o["metadata"]["name"]: o["metadata"]["uid"]
                for o in self.backend.list("v1", "ConfigMap", "apps")
                if o["metadata"]["name"] != "kube-root-ca.crt"}

    def ready(self, obj: dict[str, Any]) -> dict[str, Any]:
        found = find_condition((obj.get("status") or {}).get("conditions") or [], "Ready")
        assert found is not None, obj.get("status")
        return dict(found)


@contextmanager
def deployed(tmp: Path, auth: HttpAuth | None = None, secret: dict[str, str] | None = None,
             timeout: str = "3s") -> Iterator[tuple[World, BareRepo, str]]:
    """A repository with deploy/a and deploy/b served (git daemon, or smart HTTP with `auth`),
    deployed and Ready."""
    root = tmp / "served"
    root.mkdir()
    repo = BareRepo(root, "config")
    repo.commit({"deploy/a.yaml": _cm("a"), "deploy/b.yaml": _cm("b")}, "initial")
    with ExitStack() as stack:
        if auth is None:
            url = stack.enter_context(GitDaemon(root)).url(repo)
        else:
            url = stack.enter_context(SmartHttpServer(root, auth)).url(repo)
        world = World(tmp, url, secret, timeout)
        world.settle()
        assert world.ready(world.git_repository())["status"] == "True", \
            world.git_repository()["status"]
        assert world.ready(world.kustomization())["status"] == "True"
        assert sorted(world.deployed()) == ["a", "b"]
        yield world, repo, url


def assert_kept(world: World, artifact: dict[str, Any], applied: str,
                uids: dict[str, str]) -> dict[str, Any]:
    """The last good artifact and deployment are in place; returns the GitRepository's Ready."""
    repo = world.git_repository()
    assert repo["status"]["artifact"] == artifact
    ks = world.kustomization()
    assert ks["status"]["lastAppliedRevision"] == applied
    assert world.deployed() == uids, "an object was pruned or made again"
    ready = world.ready(repo)
    assert ready["status"] == "False", repo["status"]
    return ready


def _baseline(world: World) -> tuple[dict[str, Any], str, dict[str, str]]:
    return (world.git_repository()["status"]["artifact"],
            world.kustomization()["status"]["lastAppliedRevision"], world.deployed())


def test_an_unreachable_host_keeps_the_last_artifact(tmp_path: Path) -> None:
    with deployed(tmp_path) as (world, repo, url):
        artifact, applied, uids = _baseline(world)
        repo.commit({"deploy/c.yaml": _cm("c")}, delete=("deploy/b.yaml",))
        world.poll(f"git://127.0.0.1:{free_port()}/config.git")
        ready = assert_kept(world, artifact, applied, uids)
        assert ready["reason"] == "GitOperationFailed", ready
        assert "Connection refused" in ready["message"] and "127.0.0.1" in ready["message"]
        world.poll(url)  # Git is back: the new commit deploys, pruning b
        assert sorted(world.deployed()) == ["a", "c"]
        assert world.deployed()["a"] == uids["a"]


def test_a_hanging_server_is_bounded_by_the_timeout(tmp_path: Path) -> None:
    hanging = Hanging()
    try:
        with deployed(tmp_path, timeout="1s") as (world, _repo, url):
            artifact, applied, uids = _baseline(world)
            world.poll(f"git://127.0.0.1:{hanging.port}/config.git")
            ready = assert_kept(world, artifact, applied, uids)
            assert "timed out after 1s (spec.timeout)" in ready["message"], ready
            world.poll(url)
            assert world.ready(world.git_repository())["status"] == "True"
    finally:
        hanging.close()


def test_a_deleted_branch_keeps_the_last_artifact(tmp_path: Path) -> None:
    with deployed(tmp_path) as (world, repo, _url):
        artifact, applied, uids = _baseline(world)
        run("git", "update-ref", "-d", "refs/heads/main", cwd=repo.path)
        world.poll()
        ready = assert_kept(world, artifact, applied, uids)
        assert 'couldn\'t find remote ref "refs/heads/main"' in ready["message"], ready


def test_a_corrupt_pack_keeps_the_last_artifact(tmp_path: Path) -> None:
    with deployed(tmp_path) as (world, repo, _url):
        artifact, applied, uids = _baseline(world)
        repo.commit({"deploy/c.yaml": _cm("c")}, delete=("deploy/a.yaml", "deploy/b.yaml"))
        # Every object file of the served repository is overwritten with garbage.
        objects = repo.path / "objects"
        run("git", "repack", "-q", "-a", "-d", cwd=repo.path)
        for pack in objects.glob("pack/*.pack"):
            data = bytearray(pack.read_bytes())
            for i in range(12, len(data), 7):
                data[i] ^= 0x5A
            pack.chmod(0o644)
            pack.write_bytes(bytes(data))
        world.poll()
        ready = assert_kept(world, artifact, applied, uids)
        assert ready["reason"] == "GitOperationFailed", ready
        assert "unable to fetch" in ready["message"], ready


def test_revoked_credentials_keep_the_last_artifact(tmp_path: Path) -> None:
    auth = HttpAuth(users={"deployer": "s3cret"})
    with deployed(tmp_path, auth, {"username": "deployer", "password": "s3cret"}) as (
            world, repo, _url):
        artifact, applied, uids = _baseline(world)
        repo.commit({"deploy/c.yaml": _cm("c")}, delete=("deploy/b.yaml",))
        auth.users["deployer"] = "rotated"
        world.poll()
        ready = assert_kept(world, artifact, applied, uids)
        assert "s3cret" not in str(world.git_repository()), "the password is never shown"
        assert ready["reason"] == "AuthenticationFailed", ready


def test_a_force_push_that_drops_the_deployed_commit_deploys_the_new_history(
        tmp_path: Path) -> None:
    with deployed(tmp_path) as (world, repo, _url):
        artifact, _applied, uids = _baseline(world)
        # A new root commit with the same files plus c: the deployed commit is gone.
        repo.git("checkout", "-q", "--orphan", "rewritten")
        repo.commit({"deploy/a.yaml": _cm("a"), "deploy/b.yaml": _cm("b", "2"),
                     "deploy/c.yaml": _cm("c")}, "rewritten", branch="rewritten")
        repo.push("+rewritten:refs/heads/main")
        repo.git("branch", "-q", "-D", "main")
        world.poll()
        repo_status = world.git_repository()["status"]
        assert world.ready(world.git_repository())["status"] == "True", repo_status
        assert repo_status["artifact"]["revision"] != artifact["revision"]
        assert world.kustomization()["status"]["lastAppliedRevision"] == \
            repo_status["artifact"]["revision"]
        now = world.deployed()
        assert sorted(now) == ["a", "b", "c"]
        assert now["a"] == uids["a"] and now["b"] == uids["b"], "kept objects were made again"


@pytest.fixture(autouse=True)
def _no_git_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_TERMINAL_PROMPT", "0")


# For benchmarks/fault_matrix.py: each Git fault by name (passing means the last artifact and
# the deployment stayed, nothing was pruned or made again, and the condition named the cause).
GIT_FAULTS = {
    "git-unreachable": test_an_unreachable_host_keeps_the_last_artifact,
    "git-hang": test_a_hanging_server_is_bounded_by_the_timeout,
    "git-branch-deleted": test_a_deleted_branch_keeps_the_last_artifact,
    "git-corrupt-pack": test_a_corrupt_pack_keeps_the_last_artifact,
    "git-creds-revoked": test_revoked_credentials_keep_the_last_artifact,
    "git-force-push": test_a_force_push_that_drops_the_deployed_commit_deploys_the_new_history,
}
