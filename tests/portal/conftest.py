"""The portal under test: a real daemon (in-process, the simulator environment, a real Git
repository served by `git daemon`) and, for the browser tests, Debian's chromium driven by npm's
playwright-core (`scripts/playwright.sh` installs it into `.tools/node`).

Two supply chains: `web` (a GitRepository, then a ConfigMap carrying its revision) selected by
`team-a/web`, and `tested` (the same source, then a Tekton TaskRun that fails, with logs holding
markup that must show as text) selected by `team-b/tested`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reconciler.daemon import Daemon
from reconciler.loader import load_text
from reconciler.settings import DaemonSettings, ListenAddress
from tests.conftest import GIT_ENV, ROOT, GitRepo
from tests.gitservers import GitDaemon

ANY = ListenAddress("127.0.0.1", 0)
NODE_MODULES = ROOT / ".tools" / "node" / "node_modules"
BROWSER_SCRIPT = Path(__file__).parent / "js" / "browser.mjs"
CHROMIUM = Path(os.environ.get("RECONCILER_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / "test-artifacts" / "portal"

XSS_LOG = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script> FAIL: 2 != 3'

CHAINS = """
apiVersion: carto.run/v1alpha1
kind: ClusterSourceTemplate
metadata: {name: git-source}
spec:
  urlPath: .status.artifact.url
  revisionPath: .status.artifact.revision
  healthRule: {singleConditionType: Ready}
  template:
    apiVersion: source.toolkit.fluxcd.io/v1
    kind: GitRepository
    metadata: {name: $(workload.metadata.name)$}
    spec:
      interval: 1m0s
      url: $(workload.spec.source.git.url)$
      ref: {branch: main}
---
apiVersion: carto.run/v1alpha1
kind: ClusterConfigTemplate
metadata: {name: revision-config}
spec:
  configPath: .data
  template:
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: $(workload.metadata.name)$-config}
    data:
      revision: $(sources.source.revision)$
---
apiVersion: carto.run/v1alpha1
kind: ClusterTemplate
metadata: {name: unit-tests}
spec:
  healthRule: {singleConditionType: Succeeded}
  template:
    apiVersion: tekton.dev/v1
    kind: TaskRun
    metadata:
      name: $(workload.metadata.name)$-tests
      annotations:
        simulator.reconciler.dev/outcome: failed
        simulator.reconciler.dev/logs: '{"unit": @LOGS@}'
    spec:
      params:
        - {name: source-revision, value: $(sources.source.revision)$}
      taskSpec:
        params: [{name: source-revision}]
        steps:
          - {name: unit, image: registry.example.com/test-runner}
---
apiVersion: carto.run/v1alpha1
kind: ClusterSupplyChain
metadata: {name: web}
spec:
  selector: {apps.example.com/workload-type: web}
  resources:
    - name: source-provider
      templateRef: {kind: ClusterSourceTemplate, name: git-source}
    - name: config
      templateRef: {kind: ClusterConfigTemplate, name: revision-config}
      sources: [{resource: source-provider, name: source}]
---
apiVersion: carto.run/v1alpha1
kind: ClusterSupplyChain
metadata: {name: tested}
spec:
  selector: {apps.example.com/workload-type: tested}
  resources:
    - name: source-provider
      templateRef: {kind: ClusterSourceTemplate, name: git-source}
    - name: tests
      templateRef: {kind: ClusterTemplate, name: unit-tests}
      sources: [{resource: source-provider, name: source}]
""".replace("@LOGS@", json.dumps(XSS_LOG))

WORKLOADS = """
apiVersion: v1
kind: Namespace
metadata: {name: team-a}
---
apiVersion: v1
kind: Namespace
metadata: {name: team-b}
---
apiVersion: carto.run/v1alpha1
kind: Workload
metadata:
  name: web
  namespace: team-a
  labels: {apps.example.com/workload-type: web, tier: frontend}
spec:
  source: {git: {url: "@URL@", ref: {branch: main}}}
---
apiVersion: carto.run/v1alpha1
kind: Workload
metadata:
  name: tested
  namespace: team-b
  labels: {apps.example.com/workload-type: tested, tier: backend}
spec:
  source: {git: {url: "@URL@", ref: {branch: main}}}
"""


def wait_until(what: str, probe: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@dataclass
class Portal:
    daemon: Daemon
    url: str
    repo: GitRepo


@pytest.fixture(scope="package")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    root = tmp_path_factory.mktemp("portal-repos")
    repo = GitRepo(root / "app")
    repo.path.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo.path)], check=True,
                   env={**os.environ, **GIT_ENV})
    repo.commit({"README.md": "hello\n"}, "initial")
    with GitDaemon(root) as git:
        url = f"git://127.0.0.1:{git.port}/app"
        objects = load_text(CHAINS + "---" + WORKLOADS.replace("@URL@", url), "portal.yaml")
        # Virtual time 60x: the GitRepository's 1m poll is a real second, a TaskRun's 10 s
        # a sixth of one.
        settings = DaemonSettings(listen=ANY, artifacts_listen=ANY, tick_seconds=0.05,
                                  time_scale=60.0, data_dir=tmp_path_factory.mktemp("data"),
                                  portal_actions=True)
        with Daemon(objects, settings) as daemon:
            assert daemon.operations is not None
            yield Portal(daemon, daemon.operations.url, repo)


def browser_missing() -> str:
    """Why the browser tests cannot run here, or ""."""
    if shutil.which("node") is None:
        return "node is not installed (apt-get install nodejs)"
    if not (NODE_MODULES / "playwright-core").is_dir():
        return "playwright-core is not installed (bash scripts/playwright.sh)"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is not installed (apt-get install chromium)"
    return ""


class Browser:
    """One chromium page, steered through tests/portal/js/browser.mjs."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            ["node", str(BROWSER_SCRIPT)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, env={**os.environ, "PLAYWRIGHT_MODULES": str(NODE_MODULES),
                            "CHROMIUM": str(CHROMIUM)})

    def __call__(self, op: str, **args: Any) -> Any:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        assert line, f"the browser driver exited (code {self._proc.poll()})"
        answer = json.loads(line)
        assert answer["ok"], f"{op} {args}: {answer.get('error')}"
        return answer.get("value")

    def screenshot(self, name: str, full_page: bool = True) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self("screenshot", path=str(path), fullPage=full_page)
        return path

    def close(self) -> None:
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(json.dumps({"op": "close"}) + "\n")
            self._proc.stdin.close()
            self._proc.wait(timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            self._proc.kill()
            self._proc.wait()
        finally:
            if self._proc.stdout is not None:
                self._proc.stdout.close()


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    missing = browser_missing()
    if missing:
        pytest.skip(f"no browser for the portal tests: {missing}")
    driver = Browser()
    yield driver
    # The filter test's malformed selector is answered 400 on purpose, and chromium logs it.
    errors = [e for e in driver("errors") if "status of 400 (Bad Request)" not in e]
    driver.close()
    # A script error on the page is a failure of whichever test ran: report it at the end.
    assert not errors, f"the page logged errors: {errors}"
