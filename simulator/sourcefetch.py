"""Fetching a source artifact (the tar.gz a GitRepository's `status.artifact.url` names) and
unpacking it, bounded, for the simulated controllers that build or test source (Tekton, kpack).

How an artifact URL resolves:

- When a store in this process holds it (`reconciler.sources.artifacts.local_archive`), it is
  read from that store's directory, without HTTP. This is the case for `simulate` and `test`,
  whose URLs carry the in-cluster host `source-controller.reconciler-system.svc.cluster.local.`
  that no server answers, and for `serve --controllers all` and `run`, whose product controllers
  run in the same process.
- Otherwise it is downloaded over plain HTTP(S) (`serve` with the product's controllers in
  another process: their artifact server on 127.0.0.1): no proxy, no redirects, one overall
  time limit for the whole download (`Limits.source_fetch_seconds`, or less when the caller's
  own deadline comes first: a Tekton run's timeout), enforced between reads and as each read's
  socket timeout, so a server sending a byte now and then cannot hold it longer, and a size
  bound (`Limits.artifact_bytes` plus room for tar headers). Any other scheme is refused.

Unpacking goes through `reconciler.sources.unpack.unpack_artifact` (bounded files and bytes, no
links, nothing written outside `dest`). Artifact URLs are content addressed (the file name is the
archive's digest), so downloaded archives are cached by URL in a private temporary directory,
at most `_CACHE_ENTRIES` of them.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import shutil
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import IO, NoReturn
from urllib.parse import urlsplit

import structlog

from reconciler.model.errors import ReconcilerError
from reconciler.model.limits import DEFAULT_LIMITS, Limits
from reconciler.sources.artifacts import ARCHIVE_SUFFIX, ArtifactError, local_archive
from reconciler.sources.unpack import unpack_artifact

log = structlog.get_logger(__name__)

_CACHE_ENTRIES = 16
_CHUNK = 1 << 16
# Room on top of the unpacked bytes for tar headers and gzip framing of an archive within limits.
_ARCHIVE_ALLOWANCE = 1024 * 1024


class SourceFetchError(ReconcilerError):
    """A source artifact cannot be fetched or unpacked; the message names the URL and why."""

    def __init__(self, url: str, message: str) -> None:
        self.url = url
        super().__init__(f"source artifact {url}: {message}")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str,
                         headers: object, newurl: str) -> NoReturn:
        fp.close()
        raise urllib.error.HTTPError(req.full_url, code,
                                     f"redirect to {newurl} refused", None, None)  # type: ignore[arg-type]


_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())
_cache_lock = threading.Lock()
_cache_dir: Path | None = None


def fetch_source(url: str, dest: Path, limits: Limits = DEFAULT_LIMITS,
                 deadline: float | None = None) -> Path:
    """Unpack the artifact at `url` into `dest` (created 0700 when missing) and return `dest`.

    A download must finish within `limits.source_fetch_seconds` in all, and by `deadline`
    (`time.monotonic()` seconds) when one is given, whichever comes first.

    Raises `SourceFetchError` for a URL that cannot be read (scheme, status, time, size) or an
    archive that cannot be unpacked safely.
    """
    return unpack_source(archive_for(url, limits, deadline), url, dest, limits)


def unpack_source(archive: Path, url: str, dest: Path, limits: Limits = DEFAULT_LIMITS) -> Path:
    """Unpack `archive` (what `archive_for(url)` gave) into `dest` as `fetch_source` does;
    raises `SourceFetchError` naming `url`."""
    try:
        unpack_artifact(archive, dest, limits=limits)
    except ArtifactError as exc:
        raise SourceFetchError(url, str(exc)) from exc
    except (OSError, tarfile.TarError, EOFError, zlib.error) as exc:
        raise SourceFetchError(url, f"not a readable tar.gz archive: {exc}") from exc
    return dest


def archive_for(url: str, limits: Limits = DEFAULT_LIMITS,
                deadline: float | None = None) -> Path:
    """The archive at `url` as a local file, not unpacked: a store's own file when this process
    holds it, else downloaded (bounded as `fetch_source` says) into the download cache. Not to
    be changed; raises `SourceFetchError`."""
    archive = local_archive(url)
    return archive if archive is not None else _download(url, limits, deadline)


_HEX = frozenset("0123456789abcdef")


def archive_with_digest(url: str, limits: Limits = DEFAULT_LIMITS) -> tuple[Path, str]:
    """`archive_for(url)` and the archive's sha256 (hex). A store in this process names each
    archive by that digest (`<sha256>.tar.gz`: a content address), so its file is not read to
    know it; a downloaded archive is named by its URL, and is read."""
    local = local_archive(url)
    if local is not None:
        name = local.name
        digest = name[:-len(ARCHIVE_SUFFIX)]
        if name.endswith(ARCHIVE_SUFFIX) and len(digest) == 64 and _HEX.issuperset(digest):
            return local, digest
    archive = archive_for(url, limits)
    with archive.open("rb") as f:
        return archive, hashlib.file_digest(f, "sha256").hexdigest()


def archive_bytes_limit(limits: Limits) -> int:
    """The largest archive downloaded: its contents may not exceed `artifact_bytes` unpacked."""
    return limits.artifact_bytes + _ARCHIVE_ALLOWANCE


def _download(url: str, limits: Limits, deadline: float | None) -> Path:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SourceFetchError(url, "only http:// and https:// artifact URLs can be fetched")
    cached = _cache_path(url)
    if cached.is_file():
        with contextlib.suppress(OSError):
            cached.touch()
        return cached
    limit = archive_bytes_limit(limits)
    fd, tmp_name = tempfile.mkstemp(prefix=".incoming-", dir=cached.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            _copy_bounded(url, out, limit, _Deadline(limits.source_fetch_seconds, deadline))
        os.replace(tmp, cached)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    log.debug("source artifact downloaded", url=url, bytes=cached.stat().st_size)
    _evict(cached.parent)
    return cached


class _Deadline:
    """When a download must be over: `source_fetch_seconds` from now, or the caller's deadline
    when that comes first."""

    def __init__(self, seconds: float, caller: float | None) -> None:
        now = time.monotonic()
        self.at = now + seconds
        self.why = f"did not finish within {seconds:g}s (limit source_fetch_seconds)"
        if caller is not None and caller < self.at:
            self.at = caller
            self.why = (f"did not finish by the run's deadline "
                        f"({max(0.0, caller - now):.3g}s left when it started)")

    def remaining(self, url: str) -> float:
        """Seconds left; raises `SourceFetchError` once none are."""
        left = self.at - time.monotonic()
        if left <= 0:
            raise SourceFetchError(url, f"download {self.why}")
        return left


def _copy_bounded(url: str, out: IO[bytes], limit: int, deadline: _Deadline) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "reconciler-simulator"})
    try:
        with _opener.open(request, timeout=deadline.remaining(url)) as response:
            length = response.headers.get("Content-Length")
            if length is not None and length.isdigit() and int(length) > limit:
                raise SourceFetchError(url, f"archive of {length} bytes is larger than "
                                            f"{limit} bytes (limit artifact_bytes)")
            # The socket's timeout bounds one read; the deadline bounds them all. read1 makes
            # at most one read of the socket, so the deadline is checked between any two.
            sock = getattr(getattr(response.fp, "raw", None), "_sock", None)
            total = 0
            while True:
                left = deadline.remaining(url)
                if sock is not None:
                    sock.settimeout(left)
                chunk = response.read1(_CHUNK)
                if not chunk:
                    break
                total += len(chunk)
                if total > limit:
                    raise SourceFetchError(url, f"archive is larger than {limit} bytes "
                                                "(limit artifact_bytes)")
                out.write(chunk)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise SourceFetchError(url, f"HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        if time.monotonic() >= deadline.at:
            raise SourceFetchError(url, f"download {deadline.why}") from None
        reason = getattr(exc, "reason", exc)
        raise SourceFetchError(url, f"cannot download: {reason}") from None


def _cache_path(url: str) -> Path:
    global _cache_dir
    with _cache_lock:
        if _cache_dir is None or not _cache_dir.is_dir():
            _cache_dir = Path(tempfile.mkdtemp(prefix="reconciler-sources-"))
            atexit.register(shutil.rmtree, _cache_dir, True)
        return _cache_dir / (hashlib.sha256(url.encode()).hexdigest() + ".tar.gz")


def _evict(directory: Path) -> None:
    with _cache_lock:
        entries = []
        for path in directory.glob("*.tar.gz"):
            with contextlib.suppress(FileNotFoundError):
                entries.append((path.stat().st_mtime_ns, path))
        entries.sort(reverse=True)
        for _, path in entries[_CACHE_ENTRIES:]:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
