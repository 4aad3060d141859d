"""Fixtures shared by every test layer: real Git repositories and the CLI as a user runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SHARED = ROOT.parent / "shared"

GREETER_FILES = ("00-supply-chain.yaml", "00-workload.yaml")
"""The greeter example's supply chain and Workload (`examples/greeter/`), in applying order."""


def greeter_inputs(folder: Path) -> Path:
    """`folder`, made if missing, holding a copy of the greeter example's `GREETER_FILES`: inputs
    a test may edit."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in GREETER_FILES:
        shutil.copy(EXAMPLES / "greeter" / name, folder / name)
    return folder


GIT_ENV = {
    "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.com",
}


@dataclass
class GitRepo:
    path: Path

    @property
    def url(self) -> str:
        return self.path.as_uri()

    def git(self, *args: str) -> str:
        out = subprocess.run(["git", "-C", str(self.path), *args], check=True,
                             capture_output=True, text=True, env={**os.environ, **GIT_ENV})
        return out.stdout.strip()

    def commit(self, files: dict[str, str], message: str = "change") -> str:
        for name, content in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
        self.git("add", "-A")
        self.git("commit", "-qm", message)
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[..., GitRepo]:
    def make(name: str = "app", files: dict[str, str] | None = None,
             branch: str = "main") -> GitRepo:
        path = tmp_path / name
        path.mkdir()
        repo = GitRepo(path)
        repo.git("init", "-q", "-b", branch)
        repo.commit(files or {"README.md": "hello\n"}, "initial")
        return repo

    return make


@pytest.fixture
def serve_repo() -> Iterator[Callable[[GitRepo], str]]:
    """Serve a test repository over `git daemon` on 127.0.0.1; returns its `git://` URL.

    `reconciler run` refuses local paths and file:// (a tenant must not read the host), so a
    daemon under test fetches from a real Git server, as it would in a cluster."""
    from tests.gitservers import GitDaemon

    daemons: list[GitDaemon] = []

    def serve(repo: GitRepo) -> str:
        daemon = GitDaemon(repo.path.parent).__enter__()
        daemons.append(daemon)
        return f"git://127.0.0.1:{daemon.port}/{repo.path.name}"

    yield serve
    for daemon in daemons:
        daemon.__exit__(None, None, None)


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def _cli_command() -> list[str]:
    script = Path(sys.executable).with_name("reconciler")
    if script.exists():
        return [str(script)]
    found = shutil.which("reconciler")
    return [found] if found else [sys.executable, "-m", "reconciler.cli"]


@pytest.fixture
def cli() -> Callable[..., CliResult]:
    def run(*args: str, env: dict[str, str] | None = None) -> CliResult:
        proc = subprocess.run([*_cli_command(), *args], capture_output=True, text=True,
                              env={**os.environ, **(env or {})}, timeout=300)
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    return run
