"""The bounded unpack: limits counted while streaming, no links, no escapes, no following."""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.model.limits import Limits
from reconciler.sources.artifacts import ArtifactError
from reconciler.sources.unpack import UnpackError, UnsafePathError, unpack_artifact

Entry = Callable[[tarfile.TarFile], None]


def archive(path: Path, *entries: Entry) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for add in entries:
            add(tar)
    return path


def file(name: str, data: bytes = b"x", size: int | None = None) -> Entry:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data) if size is None else size
        tar.addfile(info, io.BytesIO(data))
    return add


def special(name: str, type_: bytes, linkname: str = "") -> Entry:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = type_, linkname
        tar.addfile(info)
    return add


def directory(name: str) -> Entry:
    return special(name, tarfile.DIRTYPE)


def test_unpacks_files_and_directories(tmp_path: Path) -> None:
    tgz = archive(tmp_path / "a.tgz", directory("deploy"), file("deploy/app.yaml", b"a: 1\n"),
                  file("./top.txt", b"t"))
    stats = unpack_artifact(tgz, tmp_path / "out")
    assert (tmp_path / "out" / "deploy" / "app.yaml").read_bytes() == b"a: 1\n"
    assert (tmp_path / "out" / "top.txt").read_bytes() == b"t"
    assert (stats.files, stats.directories, stats.bytes) == (2, 1, 6)


def test_a_zero_bomb_stops_at_the_byte_limit(tmp_path: Path) -> None:
    # 64 MiB of zeros in an archive of some 64 KiB; the limit is 1 MiB.
    path = tmp_path / "bomb.tgz"
    with gzip.open(path, "wb", compresslevel=9) as gz, tarfile.open(fileobj=gz, mode="w|") as tar:
        info = tarfile.TarInfo("zeros")
        info.size = 64 * 1024 * 1024
        tar.addfile(info, _Zeros(info.size))
    assert path.stat().st_size < 1024 * 1024
    limits = Limits(artifact_bytes=1024 * 1024)
    with pytest.raises(UnpackError, match=r"more than 1048576 bytes \(limit artifact_bytes\)"):
        unpack_artifact(path, tmp_path / "out", limits=limits)
    assert sum(p.stat().st_size for p in (tmp_path / "out").rglob("*")) <= 1024 * 1024


def test_many_small_files_add_up_to_the_byte_limit(tmp_path: Path) -> None:
    tgz = archive(tmp_path / "a.tgz", *(file(f"f{i}", b"y" * 100) for i in range(20)))
    with pytest.raises(UnpackError, match="limit artifact_bytes"):
        unpack_artifact(tgz, tmp_path / "out", limits=Limits(artifact_bytes=1000))


def test_the_file_count_is_bounded(tmp_path: Path) -> None:
    tgz = archive(tmp_path / "a.tgz", *(directory(f"d{i}") for i in range(30)))
    with pytest.raises(UnpackError, match=r"more than 10 files and directories \(limit "
                                          r"artifact_files\)"):
        unpack_artifact(tgz, tmp_path / "out", limits=Limits(artifact_files=10))


@pytest.mark.parametrize(("entry", "says"), [
    (special("link", tarfile.SYMTYPE, "/etc"), "symbolic link"),
    (special("rel", tarfile.SYMTYPE, "../../.."), "symbolic link"),
    (special("hard", tarfile.LNKTYPE, "/etc/passwd"), "hard link"),
    (special("dev", tarfile.CHRTYPE), "device"),
    (special("fifo", tarfile.FIFOTYPE), "FIFO"),
    (file("/etc/evil", b"x"), "absolute path"),
    (file("../evil", b"x"), "'..'"),
    (file("a/../../evil", b"x"), "'..'"),
])
def test_links_specials_and_escapes_are_refused(tmp_path: Path, entry: Entry, says: str) -> None:
    tgz = archive(tmp_path / "a.tgz", entry)
    with pytest.raises(ArtifactError, match=says):
        unpack_artifact(tgz, tmp_path / "sub" / "out")
    assert not (tmp_path / "evil").exists() and not (tmp_path / "sub" / "evil").exists()


def test_a_link_planted_in_the_destination_is_never_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f").write_text("original")
    out = tmp_path / "out"
    out.mkdir()
    (out / "dir").symlink_to(outside)
    (out / "f").symlink_to(outside / "f")
    for entry in (file("dir/f", b"evil"), file("f", b"evil")):
        with pytest.raises(UnsafePathError, match="symbolic link"):
            unpack_artifact(archive(tmp_path / "a.tgz", entry), out)
    assert (outside / "f").read_text() == "original"
    with pytest.raises(UnsafePathError, match="symbolic link"):
        unpack_artifact(archive(tmp_path / "b.tgz", file("x", b"evil")), out, into="dir")
    assert sorted(p.name for p in outside.iterdir()) == ["f"]


def test_only_and_into(tmp_path: Path) -> None:
    tgz = archive(tmp_path / "a.tgz", directory("lib"), file("lib/a.yaml", b"a"),
                  file("other.yaml", b"o"))
    stats = unpack_artifact(tgz, tmp_path / "out", into="vendor/lib", only="lib")
    assert stats.matched
    assert sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*")
                  ) == ["vendor", "vendor/lib", "vendor/lib/a.yaml"]
    assert not unpack_artifact(tgz, tmp_path / "out2", only="missing").matched


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n
