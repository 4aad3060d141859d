"""Unpacking an artifact (tar.gz) into a directory, bounded and without following links.

It owns the one way artifacts are unpacked (the Kustomization controller's checkout, a
GitRepository's `spec.include`): total unpacked bytes and entries are bounded by `Limits`
(`artifact_bytes`, `artifact_files`), counted while streaming, never trusted from headers alone;
only regular files and directories are written (a symbolic or hard link, a device or a FIFO is
refused, as are absolute names and `..`); and every write goes through directory file
descriptors opened with O_NOFOLLOW from the destination's root, so no existing link, whether in
the destination or planted by an earlier entry, is ever followed out of it.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import io
import os
import stat
import tarfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from reconciler.model.limits import DEFAULT_LIMITS, Limits, check_deadline
from reconciler.sources.artifacts import ArtifactError, private_dir

_CHUNK = 1 << 16
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# Room in the decompressed tar stream for headers (PAX ones included) and block padding, on
# top of the file bytes themselves.
_HEADER_ALLOWANCE = 3 * 512


class UnpackError(ArtifactError):
    """An artifact cannot be unpacked safely: too large, too many files, or an entry that would
    leave the destination; the message names the entry or the limit."""


class UnsafePathError(UnpackError):
    """A write would go through a symbolic link, or out of its root."""


@dataclass
class UnpackStats:
    files: int = 0
    directories: int = 0
    bytes: int = 0
    matched: bool = False
    """Whether any entry lay under `only` (always True without it)."""


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _BoundedReader(io.RawIOBase):
    """Reads the decompressed stream, failing once more than `limit` bytes came out of it: the
    last line of defence against a tar stream (PAX headers included) larger than any archive
    within the limits could be."""

    def __init__(self, raw: _Readable, limit: int, limits: Limits) -> None:
        self._raw = raw
        self._limit = limit
        self._limits = limits
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        data = self._raw.read(len(buffer))
        self.read_bytes += len(data)
        if self.read_bytes > self._limit:
            raise UnpackError(
                f"artifact unpacks to more than {self._limits.artifact_bytes} bytes "
                f"(limit artifact_bytes)")
        buffer[: len(data)] = data
        return len(data)


def member_parts(name: str) -> list[str]:
    """The path components of a tar entry name; raise UnpackError for an absolute name or one
    with `..`. `.` and empty components fold away (the root itself is [])."""
    if name.startswith("/"):
        raise UnpackError(f"artifact entry {name!r} has an absolute path")
    if "\x00" in name:
        raise UnpackError(f"artifact entry {name!r} holds a NUL byte")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnpackError(f"artifact entry {name!r} climbs out with '..'")
    return parts


def relative_parts(path: str, where: str) -> list[str]:
    """Components of a relative path we were given (a toPath, a subdirectory); no `..`."""
    if path.startswith("/") or "\x00" in path:
        raise UnsafePathError(f"{where} {path!r} must be a relative path")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafePathError(f"{where} {path!r} must not contain '..'")
    return parts


def open_root(root: Path, *, create: bool = True) -> int:
    """A directory descriptor of `root`, creating it and missing parents (0700) when asked; the
    caller closes it."""
    if create and not root.exists():
        private_dir(root)
    try:
        return os.open(root, _DIR_FLAGS)
    except OSError as exc:
        raise UnsafePathError(f"cannot open directory: {exc.strerror}") from None


def open_subdir(dir_fd: int, parts: Sequence[str], *, create: bool, shown: str = "",
                mode: int = 0o755) -> int:
    """Descend from `dir_fd` through `parts`, never following a link (a securejoin by
    descriptors): each component must be a real directory, created when `create`. Returns a new
    descriptor the caller closes; raises UnsafePathError naming the offending path."""
    fd = os.dup(dir_fd)
    walked: list[str] = []
    try:
        for part in parts:
            walked.append(part)
            shown_path = "/".join([shown, *walked] if shown else walked)
            try:
                st = os.stat(part, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                if not create:
                    raise UnsafePathError(f"'{shown_path}' does not exist") from None
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, mode, dir_fd=fd)
                st = os.stat(part, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                raise UnsafePathError(
                    f"'{shown_path}' is a symbolic link; nothing is written through links")
            if not stat.S_ISDIR(st.st_mode):
                raise UnsafePathError(f"'{shown_path}' exists and is not a directory")
            try:
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise UnsafePathError(
                        f"'{shown_path}' is a symbolic link; nothing is written through links"
                    ) from None
                raise
            os.close(fd)
            fd = nxt
        return fd
    except BaseException:
        os.close(fd)
        raise


def unpack_artifact(
    archive: Path,
    destination: Path,
    *,
    into: str = "",
    only: str = "",
    limits: Limits = DEFAULT_LIMITS,
) -> UnpackStats:
    """Unpack the tar.gz `archive` under `destination` (created 0700 when missing).

    `into` is a relative directory under `destination` to unpack into (created, never through a
    link); `only` keeps the entries under that relative directory of the archive, with the
    prefix removed. A regular file already at an entry's path is replaced; a link there, or on
    the way to it, is refused. Raises UnpackError (an ArtifactError), or OSError / TarError for
    an unreadable archive.
    """
    stats = UnpackStats(matched=not only)
    only_parts = relative_parts(only, "path") if only else []
    into_parts = relative_parts(into, "path") if into else []
    stream_limit = limits.artifact_bytes + (limits.artifact_files + 2) * _HEADER_ALLOWANCE
    root_fd = open_root(destination)
    try:
        base_fd = open_subdir(root_fd, into_parts, create=True)
        try:
            with (
                gzip.open(archive, "rb") as gz,
                io.BufferedReader(_BoundedReader(gz, stream_limit, limits), _CHUNK) as bounded,
                tarfile.open(fileobj=bounded, mode="r|") as tar,
            ):
                for member in tar:
                    check_deadline("unpacking an artifact")
                    parts = member_parts(member.name)
                    if only_parts:
                        if parts[: len(only_parts)] != only_parts:
                            continue
                        if member.isdir() or len(parts) > len(only_parts):
                            stats.matched = True
                        parts = parts[len(only_parts):]
                        if not parts and not member.isdir():
                            continue  # `only` names a file, not a directory
                    _count(stats, limits)
                    _write_member(tar, member, parts, base_fd, stats, limits, into)
        except (EOFError, zlib.error) as exc:
            # Found by fuzzing: a truncated gzip stream raised a bare EOFError.
            raise UnpackError(f"artifact {archive.name} is truncated or not gzip: {exc}") \
                from exc
        finally:
            os.close(base_fd)
    finally:
        os.close(root_fd)
    return stats


def _count(stats: UnpackStats, limits: Limits) -> None:
    if stats.files + stats.directories >= limits.artifact_files:
        raise UnpackError(
            f"artifact holds more than {limits.artifact_files} files and directories "
            f"(limit artifact_files)")


def _write_member(tar: tarfile.TarFile, member: tarfile.TarInfo, parts: list[str], base_fd: int,
                  stats: UnpackStats, limits: Limits, into: str) -> None:
    if member.isdir():
        if parts:
            os.close(open_subdir(base_fd, parts, create=True, shown=into))
        stats.directories += 1
        return
    if not member.isreg():
        kind = ("a symbolic link" if member.issym() else "a hard link" if member.islnk()
                else "a device, FIFO or other special file")
        raise UnpackError(f"artifact entry {member.name!r} is {kind}; only regular files and "
                          "directories are unpacked")
    if not parts:
        raise UnpackError(f"artifact entry {member.name!r} has no file name")
    if stats.bytes + max(member.size, 0) > limits.artifact_bytes:
        raise _too_large(limits)
    parent_fd = open_subdir(base_fd, parts[:-1], create=True, shown=into)
    try:
        name = parts[-1]
        shown = "/".join([into, *parts] if into else parts)
        with contextlib.suppress(FileNotFoundError):
            st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                raise UnsafePathError(
                    f"'{shown}' is a symbolic link; nothing is written through links")
            if stat.S_ISDIR(st.st_mode):
                raise UnsafePathError(f"'{shown}' exists and is a directory")
            os.unlink(name, dir_fd=parent_fd)
        mode = 0o755 if member.mode & 0o111 else 0o644
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     mode, dir_fd=parent_fd)
        source = tar.extractfile(member)
        with os.fdopen(fd, "wb") as out:
            if source is not None:
                for chunk in _chunks(source):
                    stats.bytes += len(chunk)
                    if stats.bytes > limits.artifact_bytes:
                        raise _too_large(limits)
                    out.write(chunk)
        stats.files += 1
    finally:
        os.close(parent_fd)


def _chunks(source: IO[bytes]) -> Iterator[bytes]:
    while chunk := source.read(_CHUNK):
        check_deadline("unpacking an artifact")
        yield chunk


def _too_large(limits: Limits) -> UnpackError:
    return UnpackError(f"artifact unpacks to more than {limits.artifact_bytes} bytes "
                       "(limit artifact_bytes)")
