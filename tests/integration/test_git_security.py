"""Hostile repositories against a real `git daemon`: symlinks under spec.include's toPath,
file:// and local-path submodules, local URLs, archive bombs, links in the artifact, modes of
what we write, and the environment git runs with."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.model.limits import Limits
from reconciler.sources import gitexec
from reconciler.sources.artifacts import ArtifactStore
from reconciler.sources.git import GitRepositoryController, SourceResult
from reconciler.sources.unpack import UnpackError, unpack_artifact
from tests.gitservers import BareRepo, GitDaemon, run
from tests.integration.conftest import FakeClock, Objects, cond, gitrepository


def members(store: ArtifactStore, result: SourceResult) -> dict[str, tarfile.TarInfo]:
    data = store.open(result.status["artifact"]["path"]).read_bytes()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: m for m in tar.getmembers()}


def commit_symlinks(repo: BareRepo, links: dict[str, str], files: dict[str, str] | None = None
                    ) -> str:
    """Commit symbolic links (path -> target) and files as an attacker would push them."""
    for rel, target in links.items():
        path = repo.work / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target)
    return repo.commit(files or {}, "links")


def tree_snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def not_ready(result: SourceResult) -> dict[str, object]:
    ready = cond(result, "Ready")
    assert ready["status"] == "False", result.status
    return ready


# --- 1. spec.include never writes through a link of the including repository ----------------


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory of the host outside every root of ours, with a file to overwrite."""
    d = tmp_path / "host-outside"
    d.mkdir()
    (d / "config.yaml").write_text("host original\n")
    return d


@pytest.fixture
def included(served: Path, daemon: GitDaemon, controller: GitRepositoryController,
             objects: Objects) -> Iterator[BareRepo]:
    lib = BareRepo(served, "lib")
    lib.commit({"config.yaml": "attacker\n", "sub/evil.yaml": "attacker\n"}, "lib")
    obj = gitrepository(daemon.url(lib), {"branch": "main"}, name="lib")
    obj["status"] = controller.reconcile(obj, objects.get).status
    assert cond(SourceResult(obj["status"], 0), "Ready")["status"] == "True"
    objects.add(obj)
    yield lib


@pytest.mark.parametrize(
    ("links", "to_path"),
    [
        pytest.param({"deploy": "{outside}"}, "deploy", id="absolute-link-is-toPath"),
        pytest.param({"deploy": "../../../../../../../../../../{outside}"}, "deploy",
                     id="relative-link-climbing-out"),
        pytest.param({"deploy": "{outside}"}, "deploy/nested/dir", id="link-inside-toPath"),
        pytest.param({"a/b": "{outside}"}, "a/b/c", id="link-deeper-in-toPath"),
        pytest.param({"deploy/config.yaml": "{outside}/config.yaml"}, "deploy",
                     id="file-link-under-toPath"),
        pytest.param({"deploy/sub": "{outside}"}, "deploy", id="dir-link-under-toPath"),
    ],
)
def test_include_never_writes_through_a_symlink_of_the_including_repository(
    controller: GitRepositoryController, objects: Objects, served: Path, daemon: GitDaemon,
    included: BareRepo, outside: Path, links: dict[str, str], to_path: str,
) -> None:
    before = tree_snapshot(outside)
    app = BareRepo(served, "app")
    commit_symlinks(app, {k: v.format(outside=outside) for k, v in links.items()},
                    {"README.md": "app\n"})
    obj = gitrepository(daemon.url(app), {"branch": "main"},
                        include=[{"repository": {"name": "lib"}, "toPath": to_path}])

    result = controller.reconcile(obj, objects.get)

    assert tree_snapshot(outside) == before, "an include wrote outside the checkout"
    ready = not_ready(result)
    assert ready["reason"] == "StorageOperationFailed"
    unavailable = cond(result, "IncludeUnavailable")
    assert unavailable["status"] == "True"
    assert "symbolic link" in str(unavailable["message"])
    assert f"to '{to_path}'" in str(unavailable["message"])
    assert "artifact" not in result.status


def test_include_into_a_plain_directory_still_works(
    controller: GitRepositoryController, objects: Objects, served: Path, daemon: GitDaemon,
    included: BareRepo, store: ArtifactStore,
) -> None:
    app = BareRepo(served, "app")
    app.commit({"deploy/app.yaml": "app\n", "deploy/lib": "a file in the way\n"}, "app")
    obj = gitrepository(daemon.url(app), {"branch": "main"},
                        include=[{"repository": {"name": "lib"}, "toPath": "deploy/lib",
                                  "fromPath": "sub"}])
    result = controller.reconcile(obj, objects.get)
    assert cond(result, "Ready")["status"] == "True", result.status
    assert {"deploy/app.yaml", "deploy/lib/evil.yaml"} <= set(members(store, result))


# --- 2. submodules: never file:// or a local path -------------------------------------------


def add_submodule(repo: BareRepo, url: str, path: str = "sub") -> None:
    repo.git("-c", "protocol.file.allow=always", "submodule", "add", "-q", url, path)
    repo.commit({}, f"submodule {path}")


@pytest.fixture
def host_secret(tmp_path: Path) -> Path:
    """A repository on the daemon's host that no GitRepository may read."""
    path = tmp_path / "host-secret"
    run("git", "init", "-q", "-b", "main", str(path))
    (path / "secret.txt").write_text("host secret\n")
    run("git", "add", "-A", cwd=path)
    run("git", "commit", "-qm", "secret", cwd=path)
    return path


@pytest.mark.parametrize("form", ["file-url", "absolute-path"])
def test_submodule_on_the_daemons_host_is_refused(
    controller: GitRepositoryController, served: Path, daemon: GitDaemon, store: ArtifactStore,
    host_secret: Path, form: str,
) -> None:
    app = BareRepo(served, "app")
    app.commit({"README.md": "app\n"}, "initial")
    add_submodule(app, host_secret.as_uri() if form == "file-url" else str(host_secret))

    result = controller.reconcile(gitrepository(daemon.url(app), {"branch": "main"},
                                                recurseSubmodules=True))

    not_ready(result)
    failed = cond(result, "FetchFailed")
    assert "submodule 'sub'" in str(failed["message"])
    assert "never file:// or a local path" in str(failed["message"])
    assert "artifact" not in result.status
    cache = controller.workdir / "gitrepository" / "default" / "app"
    assert not (cache / "sub" / "secret.txt").exists()


def test_nested_submodule_on_the_host_is_refused_by_git(
    controller: GitRepositoryController, served: Path, daemon: GitDaemon, host_secret: Path,
) -> None:
    # The first level is a fine git:// submodule; it names the host's repository in turn.
    middle = BareRepo(served, "middle")
    middle.commit({"m.txt": "m\n"}, "initial")
    add_submodule(middle, host_secret.as_uri(), "deep")
    app = BareRepo(served, "app")
    app.commit({"README.md": "app\n"}, "initial")
    add_submodule(app, daemon.url(middle), "middle")

    result = controller.reconcile(gitrepository(daemon.url(app), {"branch": "main"},
                                                recurseSubmodules=True))

    not_ready(result)
    assert "transport 'file' not allowed" in str(cond(result, "FetchFailed")["message"])
    cache = controller.workdir / "gitrepository" / "default" / "app"
    assert not (cache / "middle" / "deep" / "secret.txt").exists()


def test_network_submodule_still_works(
    controller: GitRepositoryController, served: Path, daemon: GitDaemon, store: ArtifactStore,
) -> None:
    lib = BareRepo(served, "lib")
    lib.commit({"lib.txt": "lib\n"}, "lib")
    app = BareRepo(served, "app")
    app.commit({"README.md": "app\n"}, "initial")
    add_submodule(app, daemon.url(lib))
    result = controller.reconcile(gitrepository(daemon.url(app), {"branch": "main"},
                                                recurseSubmodules=True))
    assert cond(result, "Ready")["status"] == "True", result.status
    names = members(store, result)
    assert "sub/lib.txt" in names
    assert "sub/.git" not in names  # the submodule's gitdir file names a host path


# --- 3. spec.url: no local paths or file:// unless the setting allows them ------------------


@pytest.mark.parametrize("form", ["path", "file-url", "other-namespace-cache"])
def test_local_urls_are_refused_by_default(
    store: ArtifactStore, clock: FakeClock, tmp_path: Path, repo: BareRepo, daemon: GitDaemon,
    form: str,
) -> None:
    controller = GitRepositoryController(store, clock, tmp_path / "work")  # as the daemon has it
    if form == "other-namespace-cache":
        # Another tenant's GitRepository, fetched over the network into the cache.
        other = gitrepository(daemon.url(repo), {"branch": "main"})
        other["metadata"]["namespace"] = "tenant-a"
        assert cond(controller.reconcile(other), "Ready")["status"] == "True"
        url = str(tmp_path / "work" / "gitrepository" / "tenant-a" / "app")
    else:
        url = repo.path.as_uri() if form == "file-url" else str(repo.path)

    result = controller.reconcile(gitrepository(url, {"branch": "main"}, name="thief"))

    stalled = cond(result, "Stalled")
    assert stalled["reason"] == "URLSchemeNotAllowed"
    message = str(stalled["message"])
    assert ("scheme 'file'" if form == "file-url" else "a local path") in message
    assert "http://, https://, ssh://" in message and "git://" in message
    assert "artifact" not in result.status
    assert controller.ls_remote_calls == (1 if form == "other-namespace-cache" else 0)


def test_local_urls_work_when_allowed(
    store: ArtifactStore, clock: FakeClock, tmp_path: Path, repo: BareRepo,
) -> None:
    controller = GitRepositoryController(store, clock, tmp_path / "work", allow_local_urls=True)
    for url in (str(repo.path), repo.path.as_uri()):
        result = controller.reconcile(gitrepository(url, {"branch": "main"}))
        assert cond(result, "Ready")["status"] == "True", result.status


@pytest.mark.parametrize("url", [
    "-uhelp", "--upload-pack=touch /tmp/pwned", "ext::sh -c touch% /tmp/pwned",
    "fd::17", "https::https://example.com/repo", "ssh://-oProxyCommand=touch%20x/repo",
    "-oProxyCommand=touch x:repo",
])
def test_option_and_command_transport_urls_are_refused(
    controller: GitRepositoryController, url: str, tmp_path: Path,
) -> None:
    result = controller.reconcile(gitrepository(url, {"branch": "main"}))
    assert cond(result, "Stalled")["reason"] == "InvalidURL"
    assert controller.ls_remote_calls == 0


# --- 4. artifacts: no links in them, and a bounded unpack ----------------------------------


def test_symlinks_are_left_out_of_the_artifact(
    controller: GitRepositoryController, served: Path, daemon: GitDaemon, store: ArtifactStore,
    tmp_path: Path,
) -> None:
    app = BareRepo(served, "app")
    commit_symlinks(app, {"other/etc": "/etc", "other/up": "../../..", "deploy/alias.yaml":
                          "app.yaml"}, {"deploy/app.yaml": "replicas: 1\n"})
    result = controller.reconcile(gitrepository(daemon.url(app), {"branch": "main"}))
    assert cond(result, "Ready")["status"] == "True"
    names = members(store, result)
    assert not any(m.issym() or m.islnk() for m in names.values())
    assert "deploy/app.yaml" in names and "other/etc" not in names
    # Every consumer can unpack it (an absolute link anywhere used to fail them all).
    stats = unpack_artifact(store.open(result.status["artifact"]["path"]), tmp_path / "out")
    assert stats.files == 1


def test_a_zero_bomb_in_a_repository_stops_at_the_limit(
    controller: GitRepositoryController, served: Path, daemon: GitDaemon, store: ArtifactStore,
    tmp_path: Path,
) -> None:
    app = BareRepo(served, "app")
    (app.work / "zeros.bin").write_bytes(bytes(4 * 1024 * 1024))
    app.commit({"deploy/app.yaml": "replicas: 1\n"}, "bomb")
    result = controller.reconcile(gitrepository(daemon.url(app), {"branch": "main"}))
    archive = store.open(result.status["artifact"]["path"])
    assert archive.stat().st_size < 64 * 1024
    limits = Limits(artifact_bytes=1024 * 1024)
    with pytest.raises(UnpackError, match=r"more than 1048576 bytes \(limit artifact_bytes\)"):
        unpack_artifact(archive, tmp_path / "out", limits=limits)
    written = sum(p.stat().st_size for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert written <= limits.artifact_bytes


def test_sourceignore_symlink_is_not_followed(
    controller: GitRepositoryController, served: Path, daemon: GitDaemon, store: ArtifactStore,
    outside: Path,
) -> None:
    # Followed, the host file would be read as ignore rules (and /dev/zero would never end).
    (outside / "rules").write_text("deploy/\n")
    app = BareRepo(served, "app")
    commit_symlinks(app, {".sourceignore": str(outside / "rules")}, {"deploy/app.yaml": "a\n"})
    result = controller.reconcile(gitrepository(daemon.url(app), {"branch": "main"}))
    assert cond(result, "Ready")["status"] == "True"
    assert "deploy/app.yaml" in members(store, result)


def test_an_artifact_stored_with_links_is_rebuilt_once(
    controller: GitRepositoryController, repo: BareRepo, daemon: GitDaemon, store: ArtifactStore,
    clock: FakeClock,
) -> None:
    obj = gitrepository(daemon.url(repo), {"branch": "main"})
    obj["status"] = controller.reconcile(obj).status
    # What an older version stored for the same revision: the files and a link.
    current = store.open(obj["status"]["artifact"]["path"])
    old = current.with_name("0" * 64 + ".tar.gz")
    with tarfile.open(current, "r:gz") as src, tarfile.open(old, "w:gz") as tar:
        for member in src.getmembers():
            tar.addfile(member, src.extractfile(member) if member.isfile() else None)
        info = tarfile.TarInfo("link")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc"
        tar.addfile(info)
    current.unlink()
    obj["status"]["artifact"].update(path=old.relative_to(store.root).as_posix(),
                                     digest="sha256:" + "0" * 64)
    fresh = GitRepositoryController(store, clock, controller.workdir)
    result = fresh.reconcile(obj)
    assert cond(result, "Ready")["status"] == "True"
    assert "link" not in members(store, result)


# --- 5. modes of what we write --------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_caches_and_store_are_private_whatever_the_umask(
    repo: BareRepo, daemon: GitDaemon, clock: FakeClock, tmp_path: Path, umask: int,
) -> None:
    old = os.umask(umask)
    try:
        store = ArtifactStore(tmp_path / "data" / "artifacts", "http://a.test")
        controller = GitRepositoryController(store, clock, tmp_path / "data" / "git")
        result = controller.reconcile(gitrepository(daemon.url(repo), {"branch": "main"}))
    finally:
        os.umask(old)
    assert cond(result, "Ready")["status"] == "True"
    work = tmp_path / "data" / "git"
    for directory in (store.root, store.root / "gitrepository",
                      store.root / "gitrepository" / "default",
                      store.root / "gitrepository" / "default" / "app", work, work / "home",
                      work / "gitrepository", work / "gitrepository" / "default",
                      work / "gitrepository" / "default" / "app"):
        assert mode(directory) == 0o700, directory
    assert mode(store.open(result.status["artifact"]["path"])) == 0o600


@pytest.mark.parametrize("umask", [0o000, 0o277])
def test_credential_files_are_0600_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    from reconciler.sources.credentials import GitCredentials, git_auth_env

    creds = GitCredentials("default/auth", username="u", password="p", ca=b"CA")
    old = os.umask(umask)
    try:
        with git_auth_env("https", creds, tmp_path / "work" / "tmp") as env:
            config = Path(env["GIT_CONFIG_GLOBAL"])
            files = sorted(config.parent.iterdir())
            modes = {p.name: mode(p) for p in files}
            dir_mode = mode(config.parent)
    finally:
        os.umask(old)
    assert modes == {"ca.crt": 0o600, "credential": 0o600, "gitconfig": 0o600}
    assert dir_mode == 0o700
    assert mode(tmp_path / "work" / "tmp") == 0o700


# --- 6. git's environment is an allow-list -------------------------------------------------


HOSTILE_ENV = {
    "GIT_SSL_CAINFO": "/nonexistent/ca.pem", "GIT_SSL_CAPATH": "/nonexistent",
    "GIT_PROXY_COMMAND": "/bin/false", "GIT_EXEC_PATH": "/nonexistent",
    "GIT_TEMPLATE_DIR": "/nonexistent", "GIT_ASKPASS": "/bin/echo", "SSH_ASKPASS": "/bin/echo",
    "GIT_ALLOW_PROTOCOL": "ext:file", "GIT_SSH": "/bin/false", "SSH_AUTH_SOCK": "/tmp/agent",
    "GIT_CONFIG_PARAMETERS": "'protocol.ext.allow'='always'", "GIT_DIR": "/nonexistent",
    "XDG_CONFIG_HOME": "/nonexistent", "CURL_CA_BUNDLE": "/nonexistent",
    "GIT_PROTOCOL_FROM_USER": "1", "PYTHONPATH": "/nonexistent",
}


def test_git_environment_is_built_from_an_allow_list(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    for key, value in HOSTILE_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.test:3128")
    monkeypatch.setenv("NO_PROXY", "internal.test")
    monkeypatch.setenv("HOME", str(tmp_path / "operator-home"))

    env = gitexec.git_environment(home=tmp_path / "private")

    for key in HOSTILE_ENV:
        if key in gitexec.BASE_ENV:
            assert env[key] == gitexec.BASE_ENV[key], key
        else:
            assert key not in env, key
    assert env["HOME"] == str(tmp_path / "private")
    assert env["HTTPS_PROXY"] == "http://proxy.test:3128"
    assert env["NO_PROXY"] == "internal.test"
    assert env["PATH"] == os.environ["PATH"]


def test_fetch_works_with_a_hostile_environment(
    monkeypatch: pytest.MonkeyPatch, controller: GitRepositoryController, repo: BareRepo,
    daemon: GitDaemon, store: ArtifactStore,
) -> None:
    for key, value in HOSTILE_ENV.items():
        monkeypatch.setenv(key, value)
    result = controller.reconcile(gitrepository(daemon.url(repo), {"branch": "main"}))
    assert cond(result, "Ready")["status"] == "True", result.status
    assert "deploy/app.yaml" in members(store, result)


def test_netrc_in_the_operators_home_is_not_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    home = tmp_path / "operator-home"
    home.mkdir()
    (home / ".gitconfig").write_text("[url \"ext::\"]\n\tinsteadOf = https://\n")
    monkeypatch.setenv("HOME", str(home))
    env = gitexec.git_environment()
    assert env["HOME"] != str(home)
    assert not any(Path(env["HOME"]).iterdir())
    assert mode(Path(env["HOME"])) == 0o700


def test_protocol_policy_refuses_ext_even_if_asked() -> None:
    pairs = dict(gitexec.protocol_config(allow_file=False))
    assert pairs["protocol.allow"] == "never"
    assert pairs["protocol.file.allow"] == "never"
    assert "protocol.ext.allow" not in pairs
