"""`reconciler simulate --watch` as a user runs it: the real script, an input file saved, a
commit to a repository the inputs name, an invalid edit reported and waited out, Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import ROOT, CliResult, GitRepo, greeter_inputs

RECONCILER = Path(sys.executable).with_name("reconciler")
SUMMARY = "workloads Ready after"


@contextmanager
def watching(*args: str) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen([str(RECONCILER), "simulate", "--watch", *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        code = process.wait(timeout=30)
        stderr = process.stderr.read() if process.stderr is not None else ""
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
        assert code == 0, stderr
        assert "Traceback" not in stderr


def until(process: subprocess.Popen[str], marker: str) -> list[str]:
    """Lines up to and including the first one holding `marker`."""
    assert process.stdout is not None
    lines: list[str] = []
    while True:
        line = process.stdout.readline()
        assert line, f"the watch ended before {marker!r}: {lines}"
        lines.append(line.rstrip("\n"))
        if marker in line:
            return lines


def test_a_saved_file_runs_again_and_prints_only_what_changed(tmp_path: Path) -> None:
    inputs = greeter_inputs(tmp_path / "inputs")
    chain = inputs / "00-supply-chain.yaml"
    with watching(str(inputs)) as process:
        first = until(process, SUMMARY)
        assert any("Workload default/hello" in line for line in first)
        chain.write_text(chain.read_text().replace("greeting: hello", "greeting: hi"))
        second = until(process, SUMMARY)
        assert second[0].startswith(f"--- {chain} changed: ran again in ")
        assert second[1:-1] == ["~ ConfigMap/default/hello-greeting",
                                "~ ClusterTemplate/greeting"]
        # An invalid edit is reported, and the watch waits for the fix.
        chain.write_text(chain.read_text().replace("kind: ClusterTemplate", "kind: 7"))
        assert until(process, "waiting for a change")[0].startswith("error: ")
        chain.write_text(chain.read_text().replace("kind: 7", "kind: ClusterTemplate"))
        fixed = until(process, SUMMARY)
        assert fixed[1:-1] == ["(no object changed)"]


def test_a_commit_to_a_named_repository_runs_again(
        tmp_path: Path, make_repo: Callable[..., GitRepo]) -> None:
    repo = make_repo("app", {"README.md": "one\n"})
    source = tmp_path / "source.yaml"
    source.write_text(f"""apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {{name: app, namespace: default}}
spec: {{url: "{repo.url}", interval: 1m, ref: {{branch: main}}}}
""")
    with watching("-o", "table", str(source)) as process:
        until(process, SUMMARY)
        repo.commit({"README.md": "two\n"})
        again = until(process, SUMMARY)
        assert again[0].startswith(f"--- {repo.url} has a new commit: ran again in ")
        assert any(line.startswith("~ GitRepository/default/app") for line in again)


def test_watch_refuses_a_state_file(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    done = cli("simulate", "--watch", "--state", str(tmp_path / "s.db"),
               str(ROOT / "examples" / "greeter" / "00-workload.yaml"))
    assert done.code == 2 and "--state" in done.stderr


def _stderr_on_a_terminal(*args: str) -> tuple[int, str]:
    """Run `reconciler simulate ARGS` with stderr on a pseudo-terminal; what it drew there."""
    import os
    import pty

    leader, follower = pty.openpty()
    try:
        done = subprocess.run([str(RECONCILER), "simulate", *args], stdout=subprocess.DEVNULL,
                              stderr=follower, timeout=120)
        os.close(follower)
        drawn = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the terminal's other end is closed and drained
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(leader)
    return done.returncode, drawn.decode(errors="replace")


def test_progress_on_a_terminal_and_not_with_quiet() -> None:
    example = [str(ROOT / "examples" / "greeter" / n)
               for n in ("00-supply-chain.yaml", "00-workload.yaml")]
    code, drawn = _stderr_on_a_terminal(*example)
    assert code == 0
    assert "settled 0/1 · virtual 0s · round 1" in drawn
    assert drawn.endswith("\r")  # the line is wiped before the result is printed
    code, drawn = _stderr_on_a_terminal("--quiet", *example)
    assert code == 0 and drawn == ""


def test_no_progress_when_stderr_is_not_a_terminal(cli: Callable[..., CliResult]) -> None:
    done = cli("simulate", *(str(ROOT / "examples" / "greeter" / n)
                             for n in ("00-supply-chain.yaml", "00-workload.yaml")))
    assert done.code == 0 and done.stderr == ""
