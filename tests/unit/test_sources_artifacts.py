"""ArtifactStore: reproducible archives, content-addressed names, path safety, gc."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from reconciler.sources.artifacts import (
    Artifact,
    ArtifactNotFoundError,
    ArtifactPathError,
    ArtifactStore,
)

NOW = "2024-01-01T00:00:00Z"


def make_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return root


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "store", "http://artifacts.test/")


def members(store: ArtifactStore, artifact: Artifact) -> list[tarfile.TarInfo]:
    data = store.open(artifact.path).read_bytes()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return tar.getmembers()


def test_same_tree_gives_same_digest_regardless_of_mtimes_and_order(
    tmp_path: Path, store: ArtifactStore
) -> None:
    files = {"b.yaml": "b: 1\n", "a/x.yaml": "x: 1\n", "a/y.yaml": "y: 2\n"}
    one = make_tree(tmp_path / "one", files)
    two = make_tree(tmp_path / "two", dict(reversed(list(files.items()))))
    os.utime(two / "b.yaml", (1_000_000, 1_000_000))
    (one / ".git").mkdir()
    (one / ".git" / "HEAD").write_text("ref: refs/heads/main\n")

    first = store.store_directory("GitRepository", "default", "app", "main@sha1:1", one, now=NOW)
    second = store.store_directory("GitRepository", "default", "app", "main@sha1:1", two, now=NOW)

    assert first.digest == second.digest
    assert first.path == second.path
    assert first.path == f"gitrepository/default/app/{first.digest.removeprefix('sha256:')}.tar.gz"
    assert first.url == f"http://artifacts.test/{first.path}"
    assert first.size == store.open(first.path).stat().st_size


def test_archive_entries_are_sorted_and_carry_no_owner_or_time(
    tmp_path: Path, store: ArtifactStore
) -> None:
    tree = make_tree(tmp_path / "t", {"z.txt": "z", "a/b.txt": "b", "run.sh": "#!/bin/sh\n"})
    (tree / "run.sh").chmod(0o755)
    artifact = store.store_directory("GitRepository", "ns", "n", "r", tree, now=NOW)

    infos = members(store, artifact)
    assert [m.name for m in infos] == ["a", "a/b.txt", "run.sh", "z.txt"]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in infos} == {(0, 0, 0, "", "")}
    assert {m.name: m.mode for m in infos}["run.sh"] == 0o755
    assert {m.name: m.mode for m in infos}["z.txt"] == 0o644


def test_exclude_drops_files_and_whole_directories(tmp_path: Path, store: ArtifactStore) -> None:
    tree = make_tree(tmp_path / "t", {"keep.yaml": "k", "ci/x.yml": "x", "logo.png": "p"})
    seen: list[str] = []

    def exclude(path: str) -> bool:
        seen.append(path)
        return path == "ci/" or path.endswith(".png")

    artifact = store.store_directory("GitRepository", "ns", "n", "r", tree, exclude, now=NOW)
    assert [m.name for m in members(store, artifact)] == ["keep.yaml"]
    assert "ci/" in seen and "ci/x.yml" not in seen


def test_to_status_has_flux_shape(tmp_path: Path, store: ArtifactStore) -> None:
    tree = make_tree(tmp_path / "t", {"a": "1"})
    artifact = store.store_directory("GitRepository", "ns", "n", "main@sha1:abc", tree, now=NOW)
    status = artifact.to_status()
    assert set(status) == {"path", "url", "revision", "digest", "lastUpdateTime", "size"}
    assert status["lastUpdateTime"] == NOW
    assert Artifact.from_status(status) == artifact
    assert Artifact.from_status({"path": "x"}) is None


@pytest.mark.parametrize(
    "path", ["../outside", "gitrepository/../../outside", "/etc/passwd", "./x", "a\\..\\b", ""]
)
def test_open_refuses_paths_outside_the_store(store: ArtifactStore, path: str) -> None:
    with pytest.raises(ArtifactPathError) as info:
        store.open(path)
    assert str(store.root) not in str(info.value)


def test_open_refuses_symlinks_leading_out(tmp_path: Path, store: ArtifactStore) -> None:
    secret = tmp_path / "secret.tar.gz"
    secret.write_text("secret")
    (store.root / "gitrepository").mkdir()
    (store.root / "gitrepository" / "evil.tar.gz").symlink_to(secret)
    with pytest.raises(ArtifactPathError):
        store.open("gitrepository/evil.tar.gz")


def test_open_missing_is_not_found(store: ArtifactStore) -> None:
    with pytest.raises(ArtifactNotFoundError):
        store.open("gitrepository/ns/n/nope.tar.gz")
    assert not store.exists("gitrepository/ns/n/nope.tar.gz")


@pytest.mark.parametrize("name", ["..", "a/b", "", "UPPER", "-x"])
def test_object_names_that_are_not_dns_names_are_refused(
    tmp_path: Path, store: ArtifactStore, name: str
) -> None:
    tree = make_tree(tmp_path / "t", {"a": "1"})
    with pytest.raises(ArtifactPathError):
        store.store_directory("GitRepository", "ns", name, "r", tree, now=NOW)


def test_gc_keeps_the_newest_and_protected(tmp_path: Path, store: ArtifactStore) -> None:
    paths = []
    for i in range(4):
        tree = make_tree(tmp_path / f"t{i}", {"v": str(i)})
        artifact = store.store_directory("GitRepository", "ns", "n", f"r{i}", tree, now=NOW)
        full = store.open(artifact.path)
        os.utime(full, ns=(i * 10**9, i * 10**9))
        paths.append(artifact.path)

    removed = store.gc("GitRepository", "ns", "n", keep=0, protect=[paths[0]])
    assert sorted(removed) == sorted([paths[1], paths[2]])
    assert store.exists(paths[3]) and store.exists(paths[0])
    assert store.gc("GitRepository", "ns", "other") == []


def test_restoring_same_content_refreshes_it_as_latest(
    tmp_path: Path, store: ArtifactStore
) -> None:
    old_tree = make_tree(tmp_path / "old", {"v": "old"})
    new_tree = make_tree(tmp_path / "new", {"v": "new"})
    old = store.store_directory("GitRepository", "ns", "n", "r1", old_tree, now=NOW)
    os.utime(store.open(old.path), ns=(0, 0))
    new = store.store_directory("GitRepository", "ns", "n", "r2", new_tree, now=NOW)
    os.utime(store.open(new.path), ns=(10**9, 10**9))
    # A revert to the old tree must make the old archive the latest one again.
    again = store.store_directory("GitRepository", "ns", "n", "r3", old_tree, now=NOW)
    assert again.path == old.path
    assert store.gc("GitRepository", "ns", "n", keep=1) == [new.path]
    assert store.exists(again.path)
    assert not list((store.root / "gitrepository" / "ns" / "n").glob(".incoming-*"))


@pytest.mark.parametrize("umask", [0o022, 0o277])
def test_shared_copies_live_in_private_directories_whatever_the_umask(
    tmp_path: Path, store: ArtifactStore, umask: int
) -> None:
    """store_copy makes an object's directory with a single mkdir when its namespace's is
    there already, and still leaves it 0700 (the umask may take bits from mkdir's mode)."""
    tree = make_tree(tmp_path / "t", {"a": "1"})
    source = store.store_directory("GitRepository", "ns", "first", "r", tree, now=NOW)
    old = os.umask(umask)
    try:
        same_ns = store.store_copy("GitRepository", "ns", "second", "r", source, now=NOW)
        new_ns = store.store_copy("GitRepository", "other", "third", "r", source, now=NOW)
    finally:
        os.umask(old)
    for copy in (same_ns, new_ns):
        assert store.open(copy.path).read_bytes() == store.open(source.path).read_bytes()
        assert copy.digest == source.digest and copy.size == source.size
    root = store.root / "gitrepository"
    for directory in (root / "ns" / "second", root / "other", root / "other" / "third"):
        assert stat.S_IMODE(directory.lstat().st_mode) == 0o700, directory


def test_gc_does_not_follow_a_link_in_an_objects_place(
    tmp_path: Path, store: ArtifactStore
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    for i in range(3):
        (outside / f"{i}.tar.gz").write_bytes(b"not the store's")
    (store.root / "gitrepository" / "ns").mkdir(parents=True)
    (store.root / "gitrepository" / "ns" / "n").symlink_to(outside)
    assert store.gc("GitRepository", "ns", "n", keep=1) == []
    assert sorted(p.name for p in outside.iterdir()) == ["0.tar.gz", "1.tar.gz", "2.tar.gz"]


def test_a_shared_copy_does_not_touch_what_a_planted_link_leads_to(
    tmp_path: Path, store: ArtifactStore
) -> None:
    """The copy's mtime is refreshed (gc tells the latest by it), never through a link left
    in its place."""
    tree = make_tree(tmp_path / "t", {"a": "1"})
    source = store.store_directory("GitRepository", "ns", "first", "r", tree, now=NOW)
    victim = tmp_path / "victim"
    victim.write_bytes(b"someone else's")
    os.utime(victim, ns=(0, 0))
    name = store.open(source.path).name
    (store.root / "gitrepository" / "ns" / "second").mkdir(mode=0o700)
    (store.root / "gitrepository" / "ns" / "second" / name).symlink_to(victim)
    copy = store.store_copy("GitRepository", "ns", "second", "r", source, now=NOW)
    assert victim.stat().st_mtime_ns == 0
    with pytest.raises(ArtifactPathError):
        store.open(copy.path)


def _private(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


@pytest.mark.parametrize("level", ["kind", "namespace"])
def test_gc_does_not_follow_a_link_above_an_objects_directory(
    tmp_path: Path, store: ArtifactStore, level: str
) -> None:
    # Every path operation follows a link in any of its components, not only the last.
    outside = _private(tmp_path / "outside")
    victims = _private(outside / "ns" / "n" if level == "kind" else outside / "n")
    for i in range(3):
        (victims / f"{i}.tar.gz").write_bytes(b"not the store's")
        os.utime(victims / f"{i}.tar.gz", ns=(i, i))
    if level == "kind":
        (store.root / "gitrepository").symlink_to(outside)
    else:
        _private(store.root / "gitrepository")
        (store.root / "gitrepository" / "ns").symlink_to(outside)
    assert store.gc("GitRepository", "ns", "n", keep=1) == []
    assert sorted(p.name for p in victims.iterdir()) == ["0.tar.gz", "1.tar.gz", "2.tar.gz"]


@pytest.mark.parametrize("level", ["kind", "namespace"])
def test_a_shared_copy_is_not_written_through_a_link_above_its_directory(
    tmp_path: Path, store: ArtifactStore, level: str
) -> None:
    tree = make_tree(tmp_path / "t", {"a": "1"})
    source = store.store_directory("OCIRepository", "real", "first", "r", tree, now=NOW)
    outside = _private(tmp_path / "outside")
    _private(outside / "ns")  # what the link's target offers: a private directory already
    if level == "kind":
        (store.root / "gitrepository").symlink_to(outside)
    else:
        _private(store.root / "gitrepository")
        (store.root / "gitrepository" / "ns").symlink_to(outside)
    with pytest.raises(ArtifactPathError, match="link"):
        store.store_copy("GitRepository", "ns", "second", "r", source, now=NOW)
    assert [p for p in outside.rglob("*") if p != outside / "ns"] == []


def test_an_archive_is_not_stored_through_a_link_below_the_root(
    tmp_path: Path, store: ArtifactStore
) -> None:
    tree = make_tree(tmp_path / "t", {"a": "1"})
    outside = _private(tmp_path / "outside")
    (store.root / "gitrepository").symlink_to(outside)
    with pytest.raises(ArtifactPathError, match="link"):
        store.store_directory("GitRepository", "ns", "n", "r", tree, now=NOW)
    assert list(outside.iterdir()) == []


def test_storing_an_archive_again_replaces_a_link_planted_in_its_place(
    tmp_path: Path, store: ArtifactStore
) -> None:
    tree = make_tree(tmp_path / "t", {"a": "1"})
    first = store.store_directory("GitRepository", "ns", "n", "r", tree, now=NOW)
    final = store.root / first.path
    victim = tmp_path / "victim"
    victim.write_bytes(b"someone else's")
    os.utime(victim, ns=(0, 0))
    final.unlink()
    final.symlink_to(victim)
    again = store.store_directory("GitRepository", "ns", "n", "r", tree, now=NOW)
    assert victim.stat().st_mtime_ns == 0 and victim.read_bytes() == b"someone else's"
    assert again.path == first.path and not final.is_symlink()
    assert store.open(again.path).read_bytes()[:2] == b"\x1f\x8b"  # the archive, servable


def test_a_shared_copy_with_keep_collects_the_objects_older_archives(
    tmp_path: Path, store: ArtifactStore
) -> None:
    """store_copy(keep=...) collects as gc does after it (the shared fan-out's one call);
    the copy is the newest archive and is never collected, whatever its file's old mtime."""
    older = []
    for i in range(3):
        tree = make_tree(tmp_path / f"old{i}", {"v": str(i)})
        artifact = store.store_directory("GitRepository", "ns", "second", f"r{i}", tree,
                                         now=NOW)
        os.utime(store.open(artifact.path), ns=((i + 10) * 10**9, (i + 10) * 10**9))
        older.append(artifact.path)
    source = store.store_directory("GitRepository", "ns", "first", "r",
                                   make_tree(tmp_path / "new", {"v": "new"}), now=NOW)
    os.utime(store.open(source.path), ns=(0, 0))  # built long before this object shares it

    copy = store.store_copy("GitRepository", "ns", "second", "r", source, now=NOW, keep=2)
    assert store.exists(copy.path)
    assert [store.exists(path) for path in older] == [False, False, True]
    # A directory the copy makes holds nothing else; one without `keep` collects nothing.
    fresh = store.store_copy("GitRepository", "ns", "third", "r", source, now=NOW, keep=1)
    assert store.exists(fresh.path) and store.exists(copy.path)
    kept = store.store_copy("GitRepository", "ns", "second", "r", source, now=NOW)
    assert kept == copy and store.exists(older[2])
