"""`reconciler serve` as a real subprocess, and the real kubectl (v1.35, installed into
`.tools/bin` by `scripts/kube_tools.py`) pointed at it through the kubeconfig it wrote."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT

KUBECTL = ROOT / ".tools" / "bin" / "kubectl"
RECONCILER = Path(sys.executable).parent / "reconciler"
START_SECONDS = 30.0

needs_kubectl = pytest.mark.skipif(
    not KUBECTL.exists(),
    reason="the real kubectl is not installed: run `.venv/bin/python scripts/kube_tools.py`")


def wait_for(check: Callable[[], Any], seconds: float = 15.0, every: float = 0.1) -> Any:
    """Poll `check` until it returns something truthy; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"not true after {seconds}s (last: {last!r})")


@dataclass
class Served:
    process: subprocess.Popen[str]
    kubeconfig: Path
    home: Path
    stdout_line: str
    stderr_path: Path
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def server(self) -> str:
        return str(self.config["clusters"][0]["cluster"]["server"])

    @property
    def token(self) -> str:
        return str(self.config["users"][0]["user"]["token"])

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True,
                timeout: float = 30) -> subprocess.CompletedProcess[str]:
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(self.home),
               "KUBECONFIG": str(self.kubeconfig)}
        done = subprocess.run([str(KUBECTL), *args], input=stdin, capture_output=True,
                              text=True, env=env, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} exited {done.returncode}:\n"
                                 f"{done.stdout}\n{done.stderr}")
        return done

    def get_json(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None, token: str | None = None
                ) -> tuple[int, dict[str, Any] | str]:
        """A raw HTTPS request to the served API, trusting only the kubeconfig's CA."""
        import base64
        ca = base64.b64decode(self.config["clusters"][0]["cluster"][
            "certificate-authority-data"]).decode()
        context = ssl.create_default_context(cadata=ca)
        all_headers = {"Authorization": f"Bearer {self.token if token is None else token}",
                       **(headers or {})}
        req = urllib.request.Request(self.server + path, data=body, method=method,
                                     headers=all_headers)
        try:
            with urllib.request.urlopen(req, context=context, timeout=10) as response:
                code, text = response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            code, text = exc.code, exc.read().decode()
        try:
            return code, json.loads(text)
        except ValueError:
            return code, text

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        finally:
            if self.process.stdout is not None:
                self.process.stdout.close()


def start_server(tmp: Path, *args: str, debug: bool = False) -> Served:
    """`debug`: `reconciler -vv serve` (debug logs in `stderr_path`)."""
    kubeconfig = tmp / "kubeconfig"
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    stderr_path = tmp / "serve.log"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [str(RECONCILER), *(["-vv"] if debug else []), "serve", "--kubeconfig", str(kubeconfig),
             "--listen", "127.0.0.1:0", *args],
            stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=ROOT)
    assert process.stdout is not None
    # The first stdout line is printed once the server listens and the kubeconfig is written.
    line = process.stdout.readline()
    if not line:
        process.wait(timeout=10)
        raise AssertionError(f"reconciler serve exited {process.returncode}:\n"
                             f"{stderr_path.read_text()}")
    served = Served(process, kubeconfig, home, line.strip(), stderr_path)
    served.config = yaml.safe_load(kubeconfig.read_text())
    return served


@contextmanager
def serving(tmp: Path, *args: str, debug: bool = False) -> Iterator[Served]:
    """`start_server`, stopped on exit, where it must exit 0 (its log is the failure's
    message)."""
    server = start_server(tmp, *args, debug=debug)
    try:
        yield server
    finally:
        code = server.stop()
        assert code == 0, server.stderr_path.read_text()


GREETER_SUPPLY_CHAIN = ROOT / "examples" / "greeter" / "00-supply-chain.yaml"


def serving_greeter(tmp: Path) -> AbstractContextManager[Served]:
    """`serving` the greeter supply chain, its controllers running at ten times real time."""
    return serving(tmp, str(GREETER_SUPPLY_CHAIN), "--time-scale", "10")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One server per test module, with the greeter supply chain and controllers running."""
    with serving_greeter(tmp_path_factory.mktemp("serve")) as server:
        yield server


_namespaces = iter(range(1, 10_000))


@pytest.fixture
def namespace(served: Served) -> str:
    """A fresh namespace for one test (made with `kubectl apply`)."""
    name = f"t{next(_namespaces)}"
    served.kubectl("apply", "-f", "-", stdin=f"apiVersion: v1\nkind: Namespace\n"
                                               f"metadata:\n  name: {name}\n")
    return name
