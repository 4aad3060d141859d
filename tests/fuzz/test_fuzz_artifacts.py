"""What a source artifact holds: kustomization files (reconciler/apply/kustomize.py) and the
tar.gz itself (reconciler/sources/unpack.py). Any kustomization gives objects or a
KustomizeError; any archive unpacks within the limits or raises the unpacker's errors (or
TarError / OSError for one that is not a readable archive, as documented), and nothing is ever
written outside the destination."""

from __future__ import annotations

import contextlib
import io
import os
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from reconciler.apply.kustomize import KustomizeError, build
from reconciler.model.limits import Limits
from reconciler.sources.artifacts import ArtifactError
from reconciler.sources.unpack import unpack_artifact

FIELDS = st.sampled_from(["resources", "namespace", "apiVersion", "kind", "images",
                          "commonLabels", "x"])
REFS = st.sampled_from(["a.yaml", "sub", "../out", "/etc", "missing.yaml", ".", "sub/../a.yaml",
                        "https://example.com/x", "a\x00b", "", "sub/k"])
VALUES = st.none() | st.integers() | REFS | st.lists(REFS | st.integers() | st.none(),
                                                     max_size=4) | st.dictionaries(
    st.sampled_from(["a", "b"]), REFS, max_size=2)


def _tree(root: Path, kustomization: Any) -> None:
    (root / "sub").mkdir()
    (root / "a.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n")
    (root / "sub" / "b.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                                         "  name: b\n")
    (root / "kustomization.yaml").write_text(
        kustomization if isinstance(kustomization, str) else yaml.safe_dump(kustomization))


@given(st.dictionaries(FIELDS, VALUES, max_size=4))
@example({"resources": "a.yaml"})
@example({"resources": 7})
@example({"resources": ["a\x00b"]})
@example({"resources": [None]})
@example({"resources": ["."]})
@example({"namespace": {"a": "b"}, "resources": ["a.yaml"]})
@example({"resources": [{"a": "sub"}]})
def test_a_kustomization_builds_or_says_why(kustomization: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _tree(root, kustomization)
        try:
            objects = build(root)
        except KustomizeError:
            return
        for obj in objects:
            assert isinstance(obj, dict)


@given(st.text(st.sampled_from(list("resources:-[]{} a.yml/\n")), max_size=80))
def test_a_kustomization_text_builds_or_says_why(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _tree(root, text)
        with contextlib.suppress(KustomizeError):
            build(root)


MEMBER_NAMES = st.sampled_from(["a", "dir/b", "../x", "/abs", "dir/../../y", "./c", "d/./e",
                                "link", "dir", "a/b/c/d", "x\x00", "dir/link/f", ".hidden"])
MEMBER = st.tuples(MEMBER_NAMES, st.sampled_from([tarfile.REGTYPE, tarfile.DIRTYPE,
                                                   tarfile.SYMTYPE, tarfile.LNKTYPE,
                                                   tarfile.FIFOTYPE, tarfile.CHRTYPE]),
                   st.binary(max_size=64), st.sampled_from(["", "a", "../..", "/etc/passwd"]))


def _archive(members: list[tuple[str, bytes, bytes, str]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, kind, data, link in members:
            info = tarfile.TarInfo(name.replace("\x00", "_") if kind != tarfile.REGTYPE
                                   else name.split("\x00")[0] or "z")
            info.type = kind
            info.linkname = link
            info.mode = 0o644
            if kind == tarfile.REGTYPE:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return out.getvalue()


def _outside(sandbox: Path, destination: Path) -> list[str]:
    return sorted(str(p.relative_to(sandbox)) for p in sandbox.rglob("*")
                  if not p.is_relative_to(destination) and p.name not in ("in.tgz", "dest"))


@given(st.lists(MEMBER, max_size=8), st.sampled_from(["", "sub", "a/b"]),
       st.sampled_from(["", "dir", "a"]))
@example([("link", tarfile.SYMTYPE, b"", "/etc/passwd"), ("link", tarfile.REGTYPE, b"x", "")],
         "", "")
@example([("dir/link", tarfile.SYMTYPE, b"", "../.."), ("dir/link/f", tarfile.REGTYPE, b"x",
                                                          "")], "", "")
@example([("a", tarfile.LNKTYPE, b"", "/etc/passwd")], "", "")
def test_an_archive_unpacks_inside_or_is_refused(members: list[Any], into: str,
                                                  only: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sandbox = Path(tmp)
        archive = sandbox / "in.tgz"
        archive.write_bytes(_archive(members))
        destination = sandbox / "dest"
        limits = Limits(artifact_bytes=4096, artifact_files=6)
        with contextlib.suppress(ArtifactError, tarfile.TarError, OSError):
            unpack_artifact(archive, destination, into=into, only=only, limits=limits)
        assert _outside(sandbox, destination) == []
        for path in destination.rglob("*") if destination.exists() else []:
            assert not path.is_symlink(), path
            assert not (path.is_file() and os.stat(path).st_nlink > 1), path


@given(st.binary(max_size=300))
@example(b"\x1f\x8b\x08\x00" + b"\x00" * 20)
@example(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff")
def test_any_bytes_are_an_archive_or_refused(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sandbox = Path(tmp)
        archive = sandbox / "in.tgz"
        archive.write_bytes(data)
        with contextlib.suppress(ArtifactError, tarfile.TarError, OSError):
            unpack_artifact(archive, sandbox / "dest", limits=Limits(artifact_bytes=4096,
                                                                      artifact_files=6))


def test_a_gzip_bomb_stops_at_the_byte_limit() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sandbox = Path(tmp)
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w:gz") as tar:
            info = tarfile.TarInfo("big")
            info.size = 50 * 1024 * 1024
            tar.addfile(info, io.BytesIO(b"\x00" * info.size))
        (sandbox / "in.tgz").write_bytes(out.getvalue())
        try:
            unpack_artifact(sandbox / "in.tgz", sandbox / "dest",
                            limits=Limits(artifact_bytes=1024 * 1024))
        except ArtifactError as exc:
            assert "limit" in str(exc) or "large" in str(exc), exc
        else:
            raise AssertionError("a 50 MiB entry unpacked under a 1 MiB limit")


def test_regression_kustomization_resources_not_a_list_of_paths_are_named() -> None:
    # Found by the fuzzer above: 7 raised TypeError, "a.yaml" was read letter by letter, a NUL
    # byte raised ValueError.
    cases = {7: "resources must be a list", "a.yaml": "resources must be a list",
             "a\x00b": "holds a NUL byte"}
    for value, said in cases.items():
        with tempfile.TemporaryDirectory() as tmp:
            _tree(Path(tmp), {"resources": [value] if said.startswith("holds") else value})
            try:
                build(Path(tmp))
            except KustomizeError as exc:
                assert "kustomization.yaml" in str(exc) and said in str(exc), exc
            else:
                raise AssertionError(f"{value!r} accepted")


def test_regression_a_truncated_artifact_is_an_unpack_error() -> None:
    # Found while fuzzing: a gzip stream cut short raised a bare EOFError.
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        info = tarfile.TarInfo("a")
        info.size = 5000
        tar.addfile(info, io.BytesIO(b"x" * info.size))
    full = out.getvalue()
    for cut in (10, len(full) // 2, len(full) - 5):
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "in.tgz").write_bytes(full[:cut])
            try:
                unpack_artifact(Path(tmp) / "in.tgz", Path(tmp) / "dest")
            except ArtifactError as exc:
                assert "truncated or not gzip" in str(exc), exc
            else:
                raise AssertionError(f"cut at {cut} unpacked")
