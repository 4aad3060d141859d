"""Running the git CLI for the source controller: one subprocess, a hard timeout, a clean env.

It owns how git is started: in its own process group (so a timeout kills the whole tree, including
`git-remote-https` and `ssh` children), never prompting a human, with only the transports that
`spec.url` may name (never `file` for a submodule), and isolated from the machine's
environment and configuration: git's environment is built from an allow-list (a credential
helper, CA bundle, proxy command or exec path set around the daemon must never reach it), HOME is
a private empty directory, and system and global git configuration are not read.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# Never let git wait for a human: a prompt for credentials would hang the reconcile until the
# timeout instead of failing with a clear authentication error.
BASE_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    # Empty, not unset: git would fall back to core.askPass and then to SSH_ASKPASS.
    "GIT_ASKPASS": "",
    "SSH_ASKPASS": "",
    "GIT_SSH_COMMAND": "ssh -o BatchMode=yes",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "LC_ALL": "C",
}

NETWORK_PROTOCOLS = ("git", "http", "https", "ssh")
"""The transports `spec.url` may name by default, and the only ones a submodule may ever use."""

# Variables of the daemon's environment git may see; everything else (GIT_*, SSH_AUTH_SOCK,
# SSH_ASKPASS, XDG_CONFIG_HOME, CURL_CA_BUNDLE, ...) is left out, so nothing around the daemon
# can reconfigure git. The proxy variables are honoured as Flux honours them (spec.proxySecretRef
# overrides them for its object).
PASSED_ENV = ("PATH", "LANG", "LANGUAGE", "TZ", "TMPDIR",
              "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy",
              "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy")
_PASSED_PREFIXES = ("LC_",)

_home_lock = threading.Lock()
_default_home: Path | None = None


def protocol_config(allow_file: bool) -> list[tuple[str, str]]:
    """git config that allows only the network transports, plus `file` (local paths included)
    when `allow_file`, and then only for what we ask for: git marks the clones it starts for
    submodules as not from the user, so a submodule can never use `file` or a local path."""
    pairs = [("protocol.allow", "never")]
    pairs += [(f"protocol.{p}.allow", "always") for p in NETWORK_PROTOCOLS]
    pairs.append(("protocol.file.allow", "user" if allow_file else "never"))
    return pairs


def private_home() -> Path:
    """An empty 0700 directory for HOME when the caller names none: git, curl and ssh read
    ~/.gitconfig, ~/.netrc and ~/.ssh from HOME, none of which may come from the host."""
    global _default_home
    with _home_lock:
        if _default_home is None or not _default_home.is_dir():
            _default_home = Path(tempfile.mkdtemp(prefix="reconciler-git-home-"))
        return _default_home


def git_environment(
    env: Mapping[str, str] | None = None, *, home: Path | None = None, allow_file: bool = False,
) -> dict[str, str]:
    """The whole environment of one git command: an allow-list of the daemon's own variables,
    a private HOME, our fixed settings, the protocol policy, then the caller's `env`."""
    full = {k: v for k, v in os.environ.items()
            if k in PASSED_ENV or k.startswith(_PASSED_PREFIXES)}
    full.setdefault("PATH", os.defpath)
    full["HOME"] = str(home if home is not None else private_home())
    full.update(BASE_ENV)
    pairs = protocol_config(allow_file)
    full["GIT_CONFIG_COUNT"] = str(len(pairs))
    for i, (key, value) in enumerate(pairs):
        full[f"GIT_CONFIG_KEY_{i}"] = key
        full[f"GIT_CONFIG_VALUE_{i}"] = value
    full.update(env or {})
    return full


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
    home: Path | None = None,
    allow_file: bool = False,
) -> str:
    """Run `git *args` and return its stdout; raise GitCommandFailed or GitTimedOut."""
    return run_git_streams(args, timeout=timeout, env=env, cwd=cwd, home=home,
                           allow_file=allow_file)[0]


def run_git_streams(
    args: Sequence[str],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    home: Path | None = None,
    allow_file: bool = False,
) -> tuple[str, str]:
    """Run `git *args` and return (stdout, stderr) of a successful run.

    `home` is the private HOME git runs with (an empty temporary one when None); `allow_file`
    lets this command (never a submodule it clones) use file:// URLs and local paths.
    """
    full_env = git_environment(env, home=home, allow_file=allow_file)
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
