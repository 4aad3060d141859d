"""Fixtures for Git source tests against real servers on 127.0.0.1 (see tests/gitservers.py)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.model.conditions import find_condition
from reconciler.model.objects import Obj
from reconciler.sources.artifacts import ArtifactStore
from reconciler.sources.git import GitRepositoryController, SourceResult
from tests.gitservers import BareRepo, GitDaemon

START = 1_700_000_000.0


class FakeClock:
    def __init__(self) -> None:
        self.t = START

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class Objects:
    """The objects a Backend would hold, for the controller's `get_object` lookups."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str, str], Obj] = {}

    def add(self, obj: Obj) -> Obj:
        m = obj["metadata"]
        self.items[(obj["kind"], m.get("namespace", "default"), m["name"])] = obj
        return obj

    def secret(self, name: str, string_data: dict[str, str] | None = None,
               data: dict[str, bytes] | None = None) -> Obj:
        obj: Obj = {"apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": name, "namespace": "default"}}
        if string_data:
            obj["stringData"] = string_data
        if data:
            obj["data"] = {k: base64.b64encode(v).decode() for k, v in data.items()}
        return self.add(obj)

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        return self.items.get((kind, namespace, name))


def gitrepository(url: str, ref: dict[str, str] | None = None, name: str = "app",
                  **spec: Any) -> Obj:
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": name, "namespace": "default", "generation": 1, "uid": f"u-{name}"},
        "spec": {"url": url, "interval": "1m0s", **({"ref": ref} if ref else {}), **spec},
    }


def cond(result: SourceResult, type_: str) -> dict[str, Any]:
    found = find_condition(result.status.get("conditions"), type_)
    assert found is not None, f"no {type_} condition in {result.status}"
    return dict(found)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "store", "http://artifacts.test")


@pytest.fixture
def controller(store: ArtifactStore, clock: FakeClock, tmp_path: Path) -> GitRepositoryController:
    return GitRepositoryController(store, clock, tmp_path / "work")


@pytest.fixture
def objects() -> Objects:
    return Objects()


@pytest.fixture
def served(tmp_path: Path) -> Path:
    root = tmp_path / "served"
    root.mkdir()
    return root


@pytest.fixture
def repo(served: Path) -> BareRepo:
    r = BareRepo(served, "app")
    r.commit({"deploy/app.yaml": "replicas: 1\n", "README.md": "app\n"}, "initial")
    return r


@pytest.fixture
def daemon(served: Path) -> Iterator[GitDaemon]:
    with GitDaemon(served) as d:
        yield d
