"""The built-in deployer over a real Git repository of manifests, on the simulated cluster.

A commit removing a file prunes exactly that object; a commit with invalid YAML prunes nothing;
renaming an object prunes the old one and creates the new one; sync waves wait for health.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler.engine.runner import run_until_settled
from reconciler.engine.wiring import product_controllers
from reconciler.model.conditions import find_condition
from reconciler.model.limits import DEFAULT_LIMITS, Limits
from reconciler.settings import SourceSettings
from simulator.environment import SimulatedEnvironment
from tests.conftest import GitRepo

KS_API = "kustomize.toolkit.fluxcd.io/v1"


def _cm(name: str, value: str = "1", extra: str = "") -> str:
    return (f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n{extra}"
            f"data:\n  value: \"{value}\"\n")


class World:
    def __init__(self, repo: GitRepo, tmp: Path, annotations: dict[str, str] | None = None,
                 limits: Limits = DEFAULT_LIMITS, **spec: Any) -> None:
        self.env = SimulatedEnvironment()
        self.backend = self.env.cluster
        sources = SourceSettings(artifact_root=tmp / "artifacts", workdir=tmp / "git",
                                 allow_local_urls=True)  # the test repos are local
        self.controllers = [*product_controllers(self.backend, self.env.clock, sources, limits),
                            *self.env.controllers]
        self.backend.apply({"apiVersion": "v1", "kind": "Namespace",
                            "metadata": {"name": "apps"}})
        self.backend.apply({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": "config", "namespace": "default"},
            "spec": {"url": repo.url, "interval": "1m", "ref": {"branch": "main"}}})
        self.backend.apply({
            "apiVersion": KS_API, "kind": "Kustomization",
            "metadata": {"name": "app", "namespace": "default",
                         "annotations": annotations or {}},
            "spec": {"interval": "10m", "path": "./deploy", "prune": True,
                     "sourceRef": {"kind": "GitRepository", "name": "config"},
                     "targetNamespace": "apps", **spec}})

    def run(self, seconds: float = 120) -> dict[str, Any]:
        run_until_settled(self.env, self.controllers, lambda: False, budget_seconds=seconds)
        ks = self.backend.get(KS_API, "Kustomization", "default", "app")
        assert ks is not None
        return ks

    def names(self) -> list[str]:
        return sorted(o["metadata"]["name"] for o in self.backend.list("v1", "ConfigMap", "apps"))


def _ready(ks: dict[str, Any]) -> dict[str, Any]:
    cond = find_condition(ks["status"]["conditions"], "Ready")
    assert cond is not None
    return dict(cond)


@pytest.fixture
def repo(make_repo: Callable[..., GitRepo]) -> GitRepo:
    return make_repo("config", {"deploy/a.yaml": _cm("a"), "deploy/b.yaml": _cm("b"),
                                "deploy/c.yaml": _cm("c")})


def test_remove_a_file_prunes_exactly_that_object(repo: GitRepo, tmp_path: Path) -> None:
    world = World(repo, tmp_path)
    ks = world.run()
    assert _ready(ks)["status"] == "True", ks["status"]
    assert world.names() == ["a", "b", "c"]
    assert len(ks["status"]["inventory"]["entries"]) == 3
    sha = repo.git("rev-parse", "HEAD")
    assert ks["status"]["lastAppliedRevision"] == f"main@sha1:{sha}"

    repo.git("rm", "-q", "deploy/b.yaml")
    repo.git("commit", "-qm", "drop b")
    ks = world.run()
    assert world.names() == ["a", "c"]
    assert [e["id"] for e in ks["status"]["inventory"]["entries"]] == [
        "apps_a__ConfigMap", "apps_c__ConfigMap"]
    assert any(e["reason"] == "Pruned" and "b deleted" in e["message"]
               for e in world.backend.events())


def test_invalid_yaml_prunes_nothing(repo: GitRepo, tmp_path: Path) -> None:
    world = World(repo, tmp_path)
    world.run()
    repo.git("rm", "-q", "deploy/b.yaml")
    repo.commit({"deploy/c.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: [oops\n"}, "bad")
    ks = world.run()
    ready = _ready(ks)
    assert (ready["status"], ready["reason"]) == ("False", "BuildFailed")
    assert "deploy/c.yaml" in ready["message"] and "invalid YAML" in ready["message"]
    assert world.names() == ["a", "b", "c"]
    assert len(ks["status"]["inventory"]["entries"]) == 3


def test_rename_prunes_the_old_and_creates_the_new(repo: GitRepo, tmp_path: Path) -> None:
    world = World(repo, tmp_path)
    world.run()
    repo.git("rm", "-q", "deploy/c.yaml")
    repo.commit({"deploy/c.yaml": _cm("c-renamed")}, "rename")
    world.run()
    assert world.names() == ["a", "b", "c-renamed"]


def test_empty_render_prunes_nothing_unless_allowed(repo: GitRepo, tmp_path: Path) -> None:
    world = World(repo, tmp_path)
    world.run()
    repo.git("rm", "-q", "deploy/a.yaml", "deploy/b.yaml", "deploy/c.yaml")
    repo.commit({"deploy/README.md": "nothing here\n"}, "empty")
    ks = world.run()
    assert (_ready(ks)["reason"], world.names()) == ("PruneFailed", ["a", "b", "c"])


def test_kustomization_yaml_namespace_and_postbuild(make_repo: Callable[..., GitRepo],
                                                    tmp_path: Path) -> None:
    repo = make_repo("config", {
        "deploy/kustomization.yaml": "resources:\n  - cm.yaml\n  - more\n",
        "deploy/cm.yaml": _cm("from-list", "${greeting:=hello}"),
        "deploy/more/x.yaml": _cm("nested", "${who}"),
        "deploy/ignored.yaml": _cm("not-listed"),
    })
    world = World(repo, tmp_path, postBuild={"substitute": {"who": "world"}})
    world.run()
    assert world.names() == ["from-list", "nested"]
    nested = world.backend.get("v1", "ConfigMap", "apps", "nested")
    assert nested is not None and nested["data"] == {"value": "world"}
    assert nested["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"] == "app"


def test_unsupported_kustomize_feature_is_refused(make_repo: Callable[..., GitRepo],
                                                  tmp_path: Path) -> None:
    repo = make_repo("config", {"deploy/kustomization.yaml": "resources: [a.yaml]\nimages: []\n",
                                "deploy/a.yaml": _cm("a")})
    ks = World(repo, tmp_path).run()
    assert _ready(ks)["reason"] == "BuildFailed"
    assert "images: not supported" in _ready(ks)["message"]


def test_next_wave_waits_for_the_previous_to_be_healthy(make_repo: Callable[..., GitRepo],
                                                        tmp_path: Path) -> None:
    wave = "  annotations:\n    reconciler.dev/sync-wave: \"{}\"\n"
    repo = make_repo("config", {
        "deploy/db.yaml": ("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: db\n"
                           + wave.format(0)
                           + "    simulator.reconciler.dev/manual-status: \"true\"\n"
                           + "spec:\n  replicas: 1\n"),
        "deploy/app.yaml": _cm("after-db", extra=wave.format(1)),
    })
    world = World(repo, tmp_path)
    ks = world.run(30)
    assert world.names() == []
    assert "Deployment/apps/db is Progressing" in _ready(ks)["message"]
    # manual-status keeps the simulated Deployment controller away: play its part by hand.
    db = world.backend.get("apps/v1", "Deployment", "apps", "db")
    assert db is not None
    world.backend.update_status({**db, "status": {
        "observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}})
    ks = world.run(30)
    assert world.names() == ["after-db"]
    assert _ready(ks)["status"] == "True"


def test_symlinks_in_the_repository_are_left_out_not_fatal(
        make_repo: Callable[..., GitRepo], tmp_path: Path) -> None:
    """An absolute or climbing link anywhere in the source (here outside spec.path, and one
    inside it) is left out of the artifact, as Flux does: the Kustomization applies the rest."""
    repo = make_repo("config", {"deploy/a.yaml": _cm("a"), "docs/README.md": "hi\n"})
    (repo.path / "docs" / "passwd").symlink_to("/etc/passwd")
    (repo.path / "deploy" / "escape.yaml").symlink_to("../../../../etc/hostname")
    repo.git("add", "-A")
    repo.git("commit", "-qm", "links")
    world = World(repo, tmp_path)
    ks = world.run()
    assert _ready(ks)["status"] == "True", ks["status"]
    assert world.names() == ["a"]


def test_an_artifact_over_the_unpack_limit_fails_with_the_limit_named(
        make_repo: Callable[..., GitRepo], tmp_path: Path) -> None:
    """A file of zeros that compresses to almost nothing is not unpacked past the limit."""
    repo = make_repo("config", {"deploy/a.yaml": _cm("a"), "deploy/zeros.txt": "0" * 200_000})
    world = World(repo, tmp_path, limits=Limits(artifact_bytes=64 * 1024))
    ks = world.run()
    ready = _ready(ks)
    assert ready["status"] == "False", ks["status"]
    assert "limit artifact_bytes" in ready["message"]
    assert world.names() == []
