"""The `--state` file: one writer at a time, written privately and atomically.

A saved cluster holds Secret data, so the file is written 0600 (its folder, when we create it,
0700) whatever the umask. A save goes to a fresh temporary file beside the target, is flushed to
disk and then renamed over it, so a reader sees the old state or the new one, never half of one.

Two runs writing one state would each load it, work, and save: the later save silently drops
the earlier run's changes. `state_lock` takes an exclusive, non-blocking `flock` on `FILE.lock`
for the whole run (load, reconcile, save), so a second writer is refused with a message naming
the process that holds it. The lock is released by the kernel when its holder exits, even after
kill -9, so a stale lock file never blocks anyone.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from reconciler.model.errors import InputError


class StateInUse(InputError):
    """Another process holds the state file's lock."""

    def __init__(self, path: Path, holder: str) -> None:
        self.path = path
        self.holder = holder
        super().__init__(
            f"--state {path}: in use by another reconciler ({holder}); wait for it to finish, "
            "or give this run another state file")


def lock_path(state: Path) -> Path:
    return state.with_name(state.name + ".lock")


@contextlib.contextmanager
def state_lock(state: Path) -> Iterator[None]:
    """Hold the exclusive lock of `state` for the body; raises `StateInUse` when taken."""
    _make_private_dir(state.parent)
    path = lock_path(state)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise InputError(f"--state {state}: cannot create its lock file {path}: "
                         f"{exc.strerror}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StateInUse(state, _holder(fd)) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
    except OSError:
        text = ""
    return f"pid {text}" if text.isdigit() else "a process that holds its lock"


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` atomically, readable by its owner only."""
    _make_private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            os.fchmod(out.fileno(), 0o600)
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _make_private_dir(folder: Path) -> None:
    """Create `folder` (and parents) 0700 when missing; an existing folder is left as it is."""
    if folder.is_dir():
        return
    folder.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700)
        os.chmod(folder, 0o700)
