"""`reconciler run` as a real subprocess for e2e tests: start it, find its addresses in its JSON
log, read its endpoints, and stop it with SIGTERM.

Every wait polls for a state of the real process with a bounded deadline; nothing sleeps for a
fixed time and then asserts.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tests.conftest import _cli_command

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 15.0,
             every: float = 0.1) -> T:
    """Poll `probe` until it returns something other than None, for at most `timeout`."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = probe()
            if value is not None:
                return value
        except (OSError, ValueError, KeyError) as exc:
            last_error = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}"
                                 + (f" (last error: {last_error})" if last_error else ""))
        time.sleep(every)


def without_volatile(obj: dict[str, Any], metadata: Iterable[str],
                     status: Iterable[str]) -> dict[str, Any]:
    """A deep copy of `obj` without the `metadata` keys named, its owner references' uids, and
    the `status` keys named wherever they stand in its status: what two clusters (or two runs)
    that did the same work still differ in."""
    out: dict[str, Any] = json.loads(json.dumps(obj))
    meta = out.get("metadata") or {}
    for key in metadata:
        meta.pop(key, None)
    for ref in meta.get("ownerReferences") or []:
        ref.pop("uid", None)
    status_keys = tuple(status)

    def strip(node: Any) -> None:
        if isinstance(node, dict):
            for key in status_keys:
                node.pop(key, None)
            for value in node.values():
                strip(value)
        elif isinstance(node, list):
            for value in node:
                strip(value)

    strip(out.get("status"))
    return out


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def sample(metrics_text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus text exposition, or None when it is absent."""
    for line in metrics_text.splitlines():
        match = re.match(r"^([a-zA-Z_:][\w:]*)(\{(.*)\})? (\S+)$", line)
        if match is None or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(3) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(4))
    return None


@dataclass
class DaemonProcess:
    proc: subprocess.Popen[bytes]
    log_path: Path
    ops_url: str = ""
    artifacts_url: str = ""

    def log_events(self) -> list[dict[str, Any]]:
        events = []
        for line in self.log_path.read_text().splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                continue  # a line from outside structlog: not ours to parse
        return events

    def metrics(self) -> str:
        status, body = http_get(f"{self.ops_url}/metrics")
        assert status == 200, body
        return body.decode()

    def objects(self, kind: str) -> list[dict[str, Any]]:
        status, body = http_get(f"{self.ops_url}/debug/objects?kind={kind}")
        assert status == 200, body
        return list(json.loads(body)["objects"])

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def stderr_tail(self) -> str:
        return "\n".join(self.log_path.read_text().splitlines()[-30:])


@contextmanager
def running_daemon(args: list[str], log_path: Path,
                   env: dict[str, str] | None = None) -> Iterator[DaemonProcess]:
    """Start `reconciler run ARGS --log-format json` and wait until it serves; kill it on exit
    if the test did not stop it."""
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen([*_cli_command(), "run", *args, "--log-format", "json"],
                                stdout=subprocess.DEVNULL, stderr=log_file,
                                env={**os.environ, **(env or {})})
    daemon = DaemonProcess(proc, log_path)
    try:
        def started() -> dict[str, Any] | None:
            if proc.poll() is not None:
                raise AssertionError(f"daemon exited with {proc.returncode}:\n"
                                     f"{daemon.stderr_tail()}")
            return next((e for e in daemon.log_events() if e.get("msg") == "daemon started"),
                        None)

        event = wait_for("the daemon to start", started)
        daemon.ops_url = str(event["metrics"]).removesuffix("/metrics")
        daemon.artifacts_url = str(event["artifacts"])
        yield daemon
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def paved_path_copy(dest: Path, poll_interval: str) -> Path:
    """The paved-path example with the GitRepository polling every `poll_interval`."""
    from tests.conftest import EXAMPLES

    shutil.copytree(EXAMPLES / "paved-path", dest)
    templates = dest / "platform" / "templates.yaml"
    text = templates.read_text()
    assert "default: 1m0s" in text, "the example's poll_interval default moved; update this"
    templates.write_text(text.replace("default: 1m0s", f"default: {poll_interval}"))
    return dest
