"""What ships in config/supply-chains works as shipped: every YAML file loads with the product's
loader, and the kuttl suites a platform team copies pass with `reconciler test` against the sample
repositories make-sample-repos.sh makes, served on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.chains.blueprint import Template
from reconciler.chains.render import RenderLimitError, render
from reconciler.kuttl import discover
from reconciler.kuttl.steps import load_steps
from reconciler.loader import load_paths
from reconciler.model.limits import Limits
from tests.conftest import ROOT, CliResult
from tests.gitservers import GitDaemon, SmartHttpServer

PATHS = ROOT / "config" / "supply-chains"
SUITE = PATHS / "tests"
YAML_FILES = sorted(p for p in PATHS.rglob("*.yaml") if "tests" not in p.relative_to(PATHS).parts)


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(PATHS)))
def test_every_shipped_file_loads(path: Path) -> None:
    loaded = load_paths([str(path)], allow_empty=False)
    assert loaded, path


def test_validate_accepts_the_paths(cli: Callable[..., CliResult]) -> None:
    result = cli("validate", str(PATHS / "cluster"), str(PATHS / "namespace"))
    assert result.code == 0, result.stderr
    assert result.stdout.strip() == "20 objects valid"


def test_every_suite_step_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_REPO_URL", "https://git.example.com/app")
    monkeypatch.setenv("GITOPS_REPO_URL", "https://git.example.com/gitops")
    cases = discover([SUITE])
    assert sorted(c.name for c in cases) == [
        "tests/gitops", "tests/server", "tests/web", "tests/web-tested"]
    for case in cases:
        steps = load_steps(case.path)
        assert steps and all(s.asserts for s in steps), case.name
        applied = [o.obj for s in steps for o in s.applies]
        assert "https://git.example.com/app" in json.dumps(applied), case.name


def test_suite_step_names_an_unset_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APP_REPO_URL", raising=False)
    with pytest.raises(Exception, match="APP_REPO_URL") as exc:
        load_steps(SUITE / "web")
    assert "00-workload.yaml" in str(exc.value)


def test_b64encode_filter_encodes_the_git_writer_files() -> None:
    template = Template("ClusterTemplate", "t", {"spec": {
        "jinja2": "value: {{ files | to_json | b64encode | to_json }}"}})
    files = {"delivery.yml": '{"kind": "Service", "name": "café"}'}
    rendered = render(template, {"files": files})
    assert json.loads(base64.b64decode(rendered["value"])) == files
    with pytest.raises(RenderLimitError):
        render(template, {"files": {"big": "x" * 900}}, Limits(render_bytes=1000))


def test_the_kuttl_suites_pass(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    made = subprocess.run(["bash", str(SUITE / "make-sample-repos.sh"), str(tmp_path / "repos")],
                          capture_output=True, text=True, check=True)
    assert "APP_REPO_URL=file://" in made.stdout
    root = tmp_path / "repos"
    with GitDaemon(root) as daemon, SmartHttpServer(root) as http:
        env = {"APP_REPO_URL": f"git://127.0.0.1:{daemon.port}/app",
               "GITOPS_REPO_URL": f"http://127.0.0.1:{http.port}/gitops.git"}
        junit = tmp_path / "junit.xml"
        result = cli("test", str(SUITE), "--junit", str(junit), env=env)
    assert result.code == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert result.stdout.splitlines()[-1] == "4 passed, 0 failed"
    for name in ("tests/web", "tests/web-tested", "tests/gitops", "tests/server"):
        assert f"PASS {name}" in result.stdout
    # The gitops test pushed the config where its Deliverable read it from.
    shown = subprocess.run(["git", "-C", str(root / "gitops.git"), "ls-tree", "-r",
                            "--name-only", "main"], capture_output=True, text=True, check=True,
                           env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1"})
    assert shown.stdout.split() == ["config/hello-gitops/delivery.yml"]
