"""Running the git CLI for the source controller: one subprocess, a hard timeout, a clean env.

It owns how git is started: in its own process group (so a timeout kills the whole tree, including
`git-remote-https` and `ssh` children), never prompting a human, with only the transports that
`spec.url` may name, and isolated from the machine's system and global git configuration (a
credential helper configured there must never see, or store, a Secret's password).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# Never let git wait for a human: a prompt for credentials would hang the reconcile until the
# timeout instead of failing with a clear authentication error.
BASE_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ASKPASS": "",
    "SSH_ASKPASS": "",
    "GIT_SSH_COMMAND": "ssh -o BatchMode=yes",
    # Transports like ext:: run arbitrary commands; only the schemes spec.url may name are allowed.
    "GIT_ALLOW_PROTOCOL": "file:git:http:https:ssh",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "LC_ALL": "C",
}

# Variables from our own environment that would redirect or reconfigure git behind our back.
_DROPPED = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
            "GIT_CONFIG", "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT",
            # TLS verification is never skipped because of the environment we happen to run in.
            "GIT_SSL_NO_VERIFY",
            # A trace (GIT_TRACE_CURL, GIT_CURL_VERBOSE) keeps Authorization and
            # Proxy-Authorization headers redacted.
            "GIT_TRACE_REDACT")


@dataclass
class GitCommandFailed(Exception):
    """git exited non-zero; `stderr` is git's own words (never containing our Secret files)."""

    args_summary: str
    status: int
    stderr: str

    def __str__(self) -> str:
        return f"git {self.args_summary} exited with status {self.status}: {self.stderr}"


@dataclass
class GitTimedOut(Exception):
    args_summary: str
    timeout: float

    def __str__(self) -> str:
        return f"git {self.args_summary} did not finish within {format_seconds(self.timeout)}"


def format_seconds(seconds: float) -> str:
    return f"{seconds:g}s"


def run_git(
    args: Sequence[str],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> str:
    """Run `git *args` and return its stdout; raise GitCommandFailed or GitTimedOut."""
    return run_git_streams(args, timeout=timeout, env=env, cwd=cwd)[0]


def run_git_streams(
    args: Sequence[str],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> tuple[str, str]:
    """Run `git *args` and return (stdout, stderr) of a successful run."""
    full_env = {k: v for k, v in os.environ.items()
                if k not in _DROPPED and not k.startswith("GIT_CONFIG_KEY_")
                and not k.startswith("GIT_CONFIG_VALUE_")}
    full_env.update(BASE_ENV)
    full_env.update(env or {})
    summary = args[0] if args else ""
    proc = subprocess.Popen(
        ["git", *args],
        cwd=cwd,
        env=full_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # The whole group: git's transport helpers and ssh outlive a killed parent otherwise.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise GitTimedOut(summary, timeout) from None
    if proc.returncode != 0:
        raise GitCommandFailed(summary, proc.returncode, err.decode("utf-8", "replace"))
    return out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
