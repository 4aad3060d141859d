"""The artifact store: deterministic tar.gz archives of source trees, named by their digest.

The store owns one directory tree, `<root>/<kind>/<namespace>/<name>/<sha256>.tar.gz`, and is the
only code that writes into it. Archives are reproducible (sorted entries, zeroed times and owners)
so that the same tree always yields the same digest, which makes the file name a content address:
a file, once written, never changes, and readers (the HTTP server, consumers of an artifact URL)
can never observe a half-written or replaced archive.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import re
import shutil
import stat
import tarfile
import tempfile
import weakref
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import structlog

from reconciler.model.errors import ReconcilerError

log = structlog.get_logger(__name__)

ARCHIVE_SUFFIX = ".tar.gz"

# Kubernetes names and namespaces are DNS labels/subdomains; refusing anything else here keeps a
# hostile object name from ever becoming a path component like `..`.
_SEGMENT = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


class ArtifactError(ReconcilerError):
    """Base of the artifact store's errors."""


class ArtifactPathError(ArtifactError):
    """A path or name that would resolve outside the store; never carries the store's root."""


class ArtifactNotFoundError(ArtifactError):
    """The artifact is not (or no longer) in the store."""


@dataclass(frozen=True)
class Artifact:
    """One stored archive, as `status.artifact` of a Flux source reports it."""

    url: str
    path: str
    revision: str
    digest: str
    size: int
    last_update_time: str

    def to_status(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "url": self.url,
            "revision": self.revision,
            "digest": self.digest,
            "lastUpdateTime": self.last_update_time,
            "size": self.size,
        }

    @classmethod
    def from_status(cls, status: object) -> Artifact | None:
        """Read `status.artifact` back; None when it is absent or not the shape we write."""
        if not isinstance(status, dict):
            return None
        try:
            return cls(
                url=str(status["url"]),
                path=str(status["path"]),
                revision=str(status["revision"]),
                digest=str(status["digest"]),
                size=int(status["size"]),
                last_update_time=str(status["lastUpdateTime"]),
            )
        except (KeyError, TypeError, ValueError):
            return None


class _HashingWriter(io.RawIOBase):
    """Counts and hashes bytes on their way to the file, so the archive is read only once."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.sha256 = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._out.write(view)
        self.sha256.update(view)
        self.size += len(view)
        return len(view)


class ArtifactStore:
    """Writes, finds, serves paths for, and garbage-collects archives under `root`."""

    def __init__(self, root: Path, base_url: str) -> None:
        self.root = Path(root)
        private_dir(self.root)
        self._resolved_root = self.root.resolve()
        self._root_text = str(self._resolved_root).rstrip("/")
        self.base_url = base_url.rstrip("/")
        _LIVE_STORES.add(self)

    def url_for(self, path: str) -> str:
        return f"{self.base_url}/{path}"

    def store_directory(
        self,
        kind: str,
        namespace: str,
        name: str,
        revision: str,
        directory: Path,
        exclude: Callable[[str], bool] | None = None,
        *,
        now: str,
    ) -> Artifact:
        """Archive `directory` (never its `.git`) and return the stored artifact.

        `exclude` gets each path relative to `directory` in POSIX form, directories with a
        trailing `/`; returning True leaves the file (or the whole directory) out.
        """
        object_dir = self._object_dir(kind, namespace, name)
        private_dir(object_dir, self.root)
        fd, tmp_name = tempfile.mkstemp(prefix=".incoming-", suffix=ARCHIVE_SUFFIX, dir=object_dir)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as raw:
                sink = _HashingWriter(raw)
                _write_archive(sink, Path(directory), exclude)
            digest_hex = sink.sha256.hexdigest()
            final = object_dir / f"{digest_hex}{ARCHIVE_SUFFIX}"
            # Same digest means same bytes: keep the file readers may already be streaming and
            # only bump its mtime, which gc uses to tell the latest artifact. Anything else in
            # its place (a link planted there) is replaced, never followed.
            try:
                kept = stat.S_ISREG(os.lstat(final).st_mode)
            except FileNotFoundError:
                kept = False
            if kept:
                tmp.unlink()
                os.utime(final, follow_symlinks=False)
            else:
                os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        rel = final.relative_to(self.root).as_posix()
        artifact = Artifact(
            url=self.url_for(rel),
            path=rel,
            revision=revision,
            digest=f"sha256:{digest_hex}",
            size=sink.size,
            last_update_time=now,
        )
        log.info(
            "artifact stored",
            kind=kind,
            namespace=namespace,
            name=name,
            revision=revision,
            digest=artifact.digest,
            size=artifact.size,
        )
        return artifact

    def store_copy(
        self, kind: str, namespace: str, name: str, revision: str, source: Artifact, *, now: str,
        keep: int | None = None,
    ) -> Artifact:
        """Store an archive already in the store (built for another object) under this object.

        Content addressing makes this a hard link: the bytes, digest and size are the source's.
        A link appears whole or not at all, so readers never see a partial file; only the
        copy made where links are refused goes through a temporary name. This runs once per
        object sharing a commit, so it does no more than it must, on path strings rather than
        `Path` objects: the object's directory is made only when missing (one mkdir when its
        namespace's directory is already the store's), the source is resolved once. With
        `keep`, the object's older archives are then collected as `gc(..., keep, protect=[the
        copy])` collects them; a directory this call made holds nothing else to collect.
        Raises ArtifactNotFoundError when `source` is no longer stored.
        """
        check_object_key(kind, namespace, name)
        rel_dir = f"{kind.lower()}/{namespace}/{name}"
        object_dir = f"{self._root_text}/{rel_dir}"
        depth = self._private_depth(rel_dir, 3)
        made = depth < 3 and self._make_object_dir(rel_dir, depth)
        origin = self._open_text(source.path)
        file_name = origin.rsplit("/", 1)[1]
        final = f"{object_dir}/{file_name}"
        if final != origin:
            try:
                os.link(origin, final)
            except FileExistsError:
                pass
            except OSError:
                tmp = f"{object_dir}/.incoming-{file_name}"
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                shutil.copyfile(origin, tmp)
                os.chmod(tmp, 0o600)
                os.replace(tmp, final)
        # gc tells the latest archive by its mtime. Never through a link planted in its place.
        os.utime(final, follow_symlinks=False)
        rel = f"{rel_dir}/{file_name}"
        if keep is not None and not made:
            self.gc(kind, namespace, name, keep=keep, protect=[rel])
        return Artifact(url=self.url_for(rel), path=rel, revision=revision, digest=source.digest,
                        size=source.size, last_update_time=now)

    def _private_depth(self, rel_dir: str, levels: int) -> int:
        """How many of the first `levels` directories of `rel_dir` below the root, from the
        top, are directories the store made (0700, none of them a link: an operation on a path
        follows a link in any of its components, not only the last)."""
        parts = rel_dir.split("/")
        here = self._root_text
        for i in range(levels):
            here = f"{here}/{parts[i]}"
            if not _is_private_dir(here):
                return i
        return levels

    def _make_object_dir(self, rel_dir: str, depth: int) -> bool:
        """Create an object's directory, of which the first `depth` levels below the root are
        known to be the store's (`_private_depth`): a single mkdir when both levels above it
        (kind, namespace) are; otherwise, or when something is in the way already,
        `private_dir` from the root, which makes every missing level and refuses a link at
        any of them. True when the single mkdir made it (it is empty)."""
        object_dir = f"{self._root_text}/{rel_dir}"
        if depth == 2:
            try:
                os.mkdir(object_dir, 0o700)
            except FileExistsError:
                pass
            else:
                os.chmod(object_dir, 0o700)  # whatever the umask took away
                return True
        private_dir(Path(object_dir), self._resolved_root)
        return False

    def open(self, path: str) -> Path:
        """Resolve a store-relative path to an existing archive file inside the store."""
        return Path(self._open_text(path))

    def _open_text(self, path: str) -> str:
        """`open`, as a path string."""
        if not path or path.startswith("/") or "\\" in path or "\x00" in path:
            raise ArtifactPathError(f"artifact path {path!r} is not a relative store path")
        # Checked on the raw text: a path type would quietly fold "./" and "//" away.
        parts = path.split("/")
        if any(part in ("..", ".", "") for part in parts):
            raise ArtifactPathError(f"artifact path {path!r} must not contain '.' or '..'")
        plain = self._plain_file(parts)
        if plain is not None:
            return plain
        candidate = self.root.joinpath(*parts)
        try:
            resolved = candidate.resolve(strict=True)
        except (FileNotFoundError, NotADirectoryError):
            raise ArtifactNotFoundError(f"artifact {path!r} is not in the store") from None
        except (OSError, RuntimeError):
            raise ArtifactPathError(f"artifact path {path!r} cannot be resolved") from None
        # A symlink planted inside the store must not lead a reader out of it.
        if not resolved.is_relative_to(self._resolved_root):
            raise ArtifactPathError(f"artifact path {path!r} leads outside the store")
        if not resolved.is_file():
            raise ArtifactNotFoundError(f"artifact {path!r} is not a file in the store")
        return str(resolved)

    def _plain_file(self, parts: Sequence[str]) -> str | None:
        """The file at `parts` under the resolved root when no component below the root is a
        link (what the store itself writes): a few lstat calls, where resolving the whole path
        walks every component from `/`. None sends the caller to the full resolution."""
        here = self._root_text
        last = len(parts) - 1
        for i, part in enumerate(parts):
            here = f"{here}/{part}"
            try:
                mode = os.lstat(here).st_mode
            except OSError:
                return None
            if not (stat.S_ISREG(mode) if i == last else stat.S_ISDIR(mode)):
                return None
        return here

    def exists(self, path: str) -> bool:
        try:
            self.open(path)
        except ArtifactError:
            return False
        return True

    def gc(
        self, kind: str, namespace: str, name: str, keep: int = 2, protect: Collection[str] = ()
    ) -> list[str]:
        """Remove all but the `keep` newest archives of one object; return the removed paths.

        The newest archive always survives (even with `keep` < 1), as do the store-relative
        paths in `protect`, such as the artifact the object's status currently points at.
        """
        check_object_key(kind, namespace, name)
        rel_dir = f"{kind.lower()}/{namespace}/{name}"
        object_dir = f"{self._root_text}/{rel_dir}"
        # A link in the object's place, or at its kind's or namespace's, is not followed: what
        # it leads to is not the store's.
        parts = rel_dir.split("/")
        try:
            for i in range(1, 4):
                if not stat.S_ISDIR(os.lstat(f"{self._root_text}/{'/'.join(parts[:i])}").st_mode):
                    return []
            with os.scandir(object_dir) as entries:
                archives = [e for e in entries if _is_archive_entry(e)]
        except (FileNotFoundError, NotADirectoryError):
            return []
        kept = max(keep, 1)
        if len(archives) <= kept:  # the common case: nothing to collect, nothing to sort
            return []
        archives.sort(key=lambda e: (e.stat(follow_symlinks=False).st_mtime_ns, e.name),
                      reverse=True)
        protected = set(protect)
        removed: list[str] = []
        for archive in archives[kept:]:
            rel = f"{rel_dir}/{archive.name}"
            if rel in protected:
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(archive.path)
            removed.append(rel)
        if removed:
            log.info("artifacts garbage-collected", kind=kind, namespace=namespace, name=name,
                     removed=len(removed))
        return removed

    def _object_dir(self, kind: str, namespace: str, name: str) -> Path:
        check_object_key(kind, namespace, name)
        return self.root.joinpath(kind.lower(), namespace, name)


# Every store alive in this process, so that an in-process reader of an artifact URL (the
# simulator's Tekton and kpack, through `local_archive`) finds the file without HTTP: `simulate`
# and `test` write URLs with the in-cluster host, which no server answers.
_LIVE_STORES: weakref.WeakSet[ArtifactStore] = weakref.WeakSet()


def local_archive(url: str) -> Path | None:
    """The archive an artifact URL names, when a store in this process holds it; else None.

    Archive names are content addresses, so any live store whose base URL prefixes `url` and
    holds the path holds the same bytes. The path goes through `ArtifactStore.open`, the one
    guard against traversal and planted links.
    """
    for store in list(_LIVE_STORES):
        prefix = store.base_url + "/"
        if not url.startswith(prefix):
            continue
        try:
            return store.open(url[len(prefix):].split("?", 1)[0].split("#", 1)[0])
        except ArtifactError:
            continue
    return None


def private_dir(path: Path, top: Path | None = None) -> None:
    """Create `path` and its missing parents (up to `top`, or all of them) as 0700 directories,
    whatever the umask; an existing `path` (or `top`) is made 0700 too, since we own it. Below
    `top`, a level that is a link (or not a directory) is refused (`ArtifactPathError`): what
    is made or changed there would be made through it, outside `top`."""
    path = Path(path)
    if top is not None and path.is_relative_to(top):
        level = Path(top)
        for part in path.relative_to(top).parts:
            level = level / part
            try:
                mode = os.lstat(level).st_mode
            except FileNotFoundError:
                break
            if not stat.S_ISDIR(mode):
                raise ArtifactPathError(
                    f"{level.relative_to(top).as_posix()!r} is a link or not a directory: "
                    "refusing to write through it")
    missing: list[Path] = []
    current = path
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=0o700)
        os.chmod(directory, 0o700)
    owned = [path]
    if top is not None and path.is_relative_to(top):
        owned += [top, *(top / p for p in path.relative_to(top).parents if str(p) != ".")]
    for directory in owned:
        if directory.is_dir() and not directory.is_symlink():
            os.chmod(directory, 0o700)


def check_object_key(kind: str, namespace: str, name: str) -> None:
    """Refuse a kind, namespace or name that could not safely be a path segment."""
    for segment in (kind.lower(), namespace, name):
        if not _SEGMENT.match(segment):
            raise ArtifactPathError(
                f"{kind}/{namespace}/{name}: {segment!r} is not a valid name for the store "
                "(lowercase letters, digits, '-' and '.', starting and ending alphanumeric)"
            )


def _is_private_dir(path: Path | str) -> bool:
    """A directory (not a link to one) that only its owner may enter, as private_dir makes."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    return stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700


def _is_archive_entry(entry: os.DirEntry[str]) -> bool:
    """A stored archive: a regular file (not a link) with the archive suffix, not a temporary
    `.incoming-` one; its type comes with the listing, no stat."""
    return (entry.name.endswith(ARCHIVE_SUFFIX) and not entry.name.startswith(".")
            and entry.is_file(follow_symlinks=False))


def _walk(
    directory: Path, exclude: Callable[[str], bool] | None, prefix: str = ""
) -> Iterator[tuple[str, Path]]:
    """Yield (relative POSIX path, absolute path) depth-first in name order, pruning excluded
    directories; the order is what makes the archive reproducible."""
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        rel = f"{prefix}{entry.name}"
        is_dir = entry.is_dir(follow_symlinks=False)
        # `.git` is a directory at the top and a `gitdir:` file in each submodule: never ours
        # to ship. Symbolic links are left out, as Flux leaves them out: one pointing out of
        # the tree would make every consumer of the artifact refuse it.
        if entry.name == ".git" or entry.is_symlink():
            continue
        if exclude is not None and exclude(f"{rel}/" if is_dir else rel):
            continue
        yield rel, Path(entry.path)
        if is_dir:
            yield from _walk(Path(entry.path), exclude, f"{rel}/")


def _tar_info(rel: str, path: Path) -> tarfile.TarInfo | None:
    st = path.lstat()
    info = tarfile.TarInfo(rel)
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
    elif stat.S_ISREG(st.st_mode):
        info.type = tarfile.REGTYPE
        info.size = st.st_size
        # Git tracks only the executable bit, so that is all the archive keeps.
        info.mode = 0o755 if st.st_mode & stat.S_IXUSR else 0o644
    else:
        return None
    return info


def _write_archive(
    sink: io.RawIOBase, directory: Path, exclude: Callable[[str], bool] | None
) -> None:
    buffered = io.BufferedWriter(sink, buffer_size=1 << 16)
    # filename="" and mtime=0 keep the gzip header free of anything that varies between runs.
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=buffered, mtime=0, compresslevel=6) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for rel, path in _walk(directory, exclude):
            info = _tar_info(rel, path)
            if info is None:
                continue
            if info.type == tarfile.REGTYPE:
                # O_NOFOLLOW: a file swapped for a link since lstat is refused, not followed.
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                with os.fdopen(fd, "rb") as fh:
                    tar.addfile(info, fh)
            else:
                tar.addfile(info)
    buffered.flush()
    buffered.detach()
