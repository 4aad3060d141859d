"""simulator.tekton's step runner: substitution, the scrubbed environment, the time limit, the
output bound and how exit statuses map to a run's outcome. Steps really run (/bin/sh)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from reconciler.model.limits import Limits
from reconciler.sources.artifacts import ArtifactStore
from simulator import tekton
from simulator.tekton import (
    TaskJob,
    TaskOutcome,
    _annotated_for,
    expand_list,
    parse_duration,
    run_process,
    run_task,
    steps_enabled,
    substitute,
)


def _job(steps: list[dict[str, Any]], *, params: dict[str, Any] | None = None,
          source_url: str = "", timeout: float = 30.0, results: tuple[str, ...] = ()) -> TaskJob:
    return TaskJob(task="test", run_name="run-1", namespace="default", uid="u-1",
                   steps=tuple(steps), params=params or {}, result_names=results,
                   workspaces=(), source_url=source_url, timeout=timeout)


def _logs(outcome: TaskOutcome) -> dict[str, str]:
    return {s.name: s.log for s in outcome.steps}


def test_substitute_knows_tektons_reference_forms_and_leaves_the_rest() -> None:
    values = {"params.source-url": "http://a/b.tar.gz", "params.x": "1",
              "context.taskRun.name": "run-1"}
    text = ("$(params.source-url) $(params['x']) $(params[\"x\"]) $( params.x ) "
            "$(context.taskRun.name) $(params.unknown) $(echo hi) $HOME")
    assert substitute(text, values) == ("http://a/b.tar.gz 1 1 1 run-1 $(params.unknown) "
                                        "$(echo hi) $HOME")


def test_array_params_expand_to_many_args() -> None:
    values = {"params.flags": "-v -x", "params.name": "app"}
    assert expand_list(["run", "$(params.flags[*])", "--name=$(params.name)"], values,
                       {"flags": ["-v", "-x"]}) == ["run", "-v", "-x", "--name=app"]


@pytest.mark.parametrize(("text", "seconds"), [("1h0m0s", 3600.0), ("90s", 90.0),
                                               ("1m30s", 90.0), ("500ms", 0.5), ("0", 0.0),
                                               ("", None), ("ten minutes", None), (7, None)])
def test_go_durations(text: Any, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("value", "default", "enabled"),
                         [(None, True, True), (None, False, False), ("false", True, False),
                          ("0", True, False), ("OFF", True, False), ("true", False, True),
                          ("1", False, True), ("maybe", True, True)])
def test_the_switch(value: str | None, default: bool, enabled: bool) -> None:
    environ = {} if value is None else {"RECONCILER_SIMULATOR_RUN_STEPS": value}
    assert steps_enabled(default, environ) is enabled


def test_a_script_runs_in_a_copy_of_the_source_with_params_and_writes_results(
    tmp_path: Path,
) -> None:
    tree = tmp_path / "tree"
    (tree / "src").mkdir(parents=True)
    (tree / "src" / "app.txt").write_text("hello from the source\n")
    store = ArtifactStore(tmp_path / "store", "http://source-controller.test")
    artifact = store.store_directory("GitRepository", "default", "app", "main@sha1:abc", tree,
                                     now="2024-01-01T00:00:00Z")
    outcome = run_task(_job(
        [{"name": "read", "script": "cat src/app.txt\necho \"rev=$(params.source-revision)\"\n"
                                    "touch made-here\n"},
         {"name": "result", "command": ["sh", "-c", "printf %s \"$1\" > $(results.digest.path)",
                                        "sh", "sha256:$(params.source-revision)"]}],
        params={"source-url": artifact.url, "source-revision": "abc123"},
        source_url=artifact.url, results=("digest",)))
    assert outcome.failure is None
    assert _logs(outcome)["read"] == "hello from the source\nrev=abc123\n"
    assert outcome.results == {"digest": "sha256:abc123"}
    assert [(s.name, s.exit_code, s.reason) for s in outcome.steps] == [
        ("read", 0, "Completed"), ("result", 0, "Completed")]
    assert not (tree / "made-here").exists(), "steps work on a copy"


def test_exit_status_fails_the_run_names_step_task_and_code_and_skips_the_rest() -> None:
    outcome = run_task(_job([
        {"name": "ok", "script": "echo fine"},
        {"name": "unit", "script": "echo 'FAILED test_thing' >&2\nexit 3"},
        {"name": "after", "script": "echo never"}]))
    assert outcome.failure == ("Failed", 'step "unit" in task "test" exited with code 3')
    assert [(s.name, s.exit_code, s.reason) for s in outcome.steps] == [
        ("ok", 0, "Completed"), ("unit", 3, "Error"), ("after", 1, "Skipped")]
    assert _logs(outcome)["unit"] == "FAILED test_thing\n", "stderr is in the log"
    assert "never" not in _logs(outcome)["after"]


def test_set_e_as_tekton_a_failing_line_ends_a_script_without_a_shebang() -> None:
    outcome = run_task(_job([{"name": "s", "script": "false\necho not reached"}]))
    assert outcome.failure == ("Failed", 'step "s" in task "test" exited with code 1')
    assert "not reached" not in _logs(outcome)["s"]


def test_a_command_that_does_not_exist_is_exit_127() -> None:
    outcome = run_task(_job([{"name": "s", "command": ["no-such-command-here-xyz"]}]))
    assert outcome.failure == ("Failed", 'step "s" in task "test" exited with code 127')


def test_the_environment_is_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAEMON_SECRET_TOKEN", "hunter2")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "hunter3")
    outcome = run_task(_job([{"name": "env", "script": "env | sort",
                              "env": [{"name": "MINE", "value": "$(params.x)"}]}],
                            params={"x": "given"}))
    lines = dict(line.split("=", 1) for line in _logs(outcome)["env"].splitlines()
                 if "=" in line)
    assert "hunter2" not in _logs(outcome)["env"] and "hunter3" not in _logs(outcome)["env"]
    assert lines["MINE"] == "given"
    assert lines["PATH"] == os.environ["PATH"]
    assert lines["HOME"].startswith(lines["TMPDIR"].rsplit("/", 1)[0]), "HOME is the run's"
    assert not set(lines) - {"MINE", "PATH", "HOME", "TMPDIR", "LANG", "PWD", "SHLVL", "_",
                             "OLDPWD"}


def test_the_time_limit_kills_the_step_and_whatever_it_started(tmp_path: Path) -> None:
    pid_file = tmp_path / "background.pid"
    outcome = run_task(_job([
        {"name": "slow", "script": f"sleep 60 &\necho $! > {pid_file}\necho started\nsleep 60"},
        {"name": "after", "script": "echo never"}], timeout=1.0))
    assert outcome.failure is not None
    reason, message = outcome.failure
    assert reason == "TaskRunTimeout"
    assert message == ('TaskRun "run-1" failed to finish within "0m1s" (step "slow" in task '
                       '"test" was killed)')
    assert [(s.name, s.reason) for s in outcome.steps] == [("slow", "TaskRunTimeout"),
                                                           ("after", "Skipped")]
    assert _logs(outcome)["slow"] == "started\n"
    assert not _alive(int(pid_file.read_text()))


def _alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie nobody reaped yet (its shell was killed, so it
    belongs to init now, which in a container may never reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def test_output_is_bounded_to_its_tail() -> None:
    limits = Limits(step_log_bytes=1000)
    outcome = run_task(_job([
        {"name": "noisy", "script": "i=0; while [ $i -lt 5000 ]; do echo line-$i; "
                                    "i=$((i+1)); done"},
        {"name": "quiet", "script": "echo done"}]), limits)
    noisy, quiet = _logs(outcome)["noisy"], _logs(outcome)["quiet"]
    assert len(noisy.encode()) + len(quiet.encode()) <= 1000
    assert noisy.endswith("line-4999\n") and "line-0\n" not in noisy
    assert quiet == "done\n", "a short log keeps its share"


def test_an_unreachable_source_fails_the_task_naming_it() -> None:
    outcome = run_task(_job([{"name": "s", "script": "true"}],
                            source_url="file:///etc/passwd"))
    assert outcome.failure is not None
    assert outcome.failure[0] == "Failed"
    assert 'task "test": cannot fetch the source' in outcome.failure[1]
    assert "file:///etc/passwd" in outcome.failure[1]


def test_a_script_expanding_past_the_bound_is_refused() -> None:
    limits = Limits(interpolation_bytes=100)
    outcome = run_task(_job([{"name": "s", "script": "echo $(params.big)"}],
                            params={"big": "x" * 200}), limits)
    assert outcome.failure is not None
    assert "limit interpolation_bytes" in outcome.failure[1]


def test_a_process_holding_the_output_leaves_no_reader_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a supervisor (not Linux), a background process that left the step's process
    group (`setsid`) keeps the output pipe open after the step ended: run_process still returns
    with the step's output, and nothing is left reading a descriptor it closed (whose number
    the process reuses)."""
    monkeypatch.setattr(tekton, "_SUPERVISED", False)
    pid_file = tmp_path / "holder.pid"
    before = set(threading.enumerate())
    try:
        code, text, timed_out = run_process(
            ["/bin/sh", "-c", f"setsid sh -c 'echo $$ > {pid_file}.tmp; mv {pid_file}.tmp "
                              f"{pid_file}; exec sleep 30' &\n"
                              f"while [ ! -s {pid_file} ]; do sleep 0.05; done\necho started"],
            tmp_path, {"PATH": os.environ.get("PATH", os.defpath)}, time.monotonic() + 30, 4096)
        assert (code, timed_out) == (0, False)
        assert text.startswith("started\n")
        left = [t for t in set(threading.enumerate()) - before if t.is_alive()]
        assert left == [], f"threads left reading the closed pipe: {left}"
    finally:
        for _ in range(100):
            if pid_file.exists() and pid_file.read_text().strip():
                break
            time.sleep(0.05)
        os.kill(int(pid_file.read_text()), signal.SIGKILL)


@pytest.mark.parametrize(("annotation", "repository", "used"), [
    ("https://github.com", "https://github.com/org/gitops.git", True),
    ("https://GitHub.com", "https://github.com:443/org/gitops.git", True),
    ("https://github.com", "https://gitlab.com/org/gitops.git", False),
    ("https://github.com", "http://github.com/org/gitops.git", False),
    ("https://git.example.com:8443", "https://git.example.com/org/gitops.git", False),
    ("github.com", "git@github.com:org/gitops.git", True),
    ("github.com", "ssh://git@github.com/org/gitops.git", True),
    ("github.com", "https://github.com/org/gitops.git", False),
])
def test_service_account_secrets_match_tektons_git_annotation(
    annotation: str, repository: str, used: bool,
) -> None:
    assert _annotated_for({"tekton.dev/git-0": annotation}, repository) is used
    assert not _annotated_for({"tekton.dev/docker-0": annotation}, repository)
    assert not _annotated_for({}, repository)


@pytest.mark.skipif(not tekton._SUPERVISED, reason="the step supervisor (a child subreaper) "
                                                  "needs Linux")
@pytest.mark.parametrize("timeout", [30.0, 1.0])
def test_nothing_a_step_started_outlives_it_even_in_a_new_session(
    tmp_path: Path, timeout: float,
) -> None:
    """A process that leaves the step's process group and session (`setsid`, a double fork) is
    still ended with the step: when it exits, and when it is killed at its time limit."""
    pid_file = tmp_path / "escaped.pid"
    script = (f"setsid sh -c '(echo $$ > {pid_file}.tmp; mv {pid_file}.tmp {pid_file}; "
              "exec sleep 60) &' &\n"
              f"while [ ! -s {pid_file} ]; do sleep 0.05; done\necho started\n"
              + ("sleep 60\n" if timeout < 5 else ""))
    code, text, timed_out = run_process(
        ["/bin/sh", "-c", script], tmp_path, {"PATH": os.environ.get("PATH", os.defpath)},
        time.monotonic() + timeout, 4096)
    assert text == "started\n"
    assert (code, timed_out) == ((0, False) if timeout > 5 else (137, True))
    pid = int(pid_file.read_text())
    try:
        assert not _alive(pid), "a process the step started outlived it"
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
