"""Which files of a checkout go into an artifact: Flux's exclusion rules in gitignore syntax.

It owns the rule order Flux's source-controller uses, last match wins: the default exclusions
(VCS files, media, CI and CLI configs), then every `.sourceignore` file in the tree (each scoped to
its own directory, as `.gitignore` files are), then `spec.ignore`. So a `.sourceignore` or
`spec.ignore` may re-include what a default excludes with `!pattern`.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pathspec

SOURCEIGNORE = ".sourceignore"

# fluxcd/pkg sourceignore: VCS, then file extensions, then CI/CLI/Flux v1 configs.
DEFAULT_PATTERNS = (
    ".git/", ".gitignore", ".gitmodules", ".gitattributes",
    "*.jpg", "*.jpeg", "*.gif", "*.png", "*.wmv", "*.flv", "*.tar.gz", "*.zip",
    ".github/", ".circleci/", ".travis.yml", ".gitlab-ci.yml", "appveyor.yml", ".drone.yml",
    "cloudbuild.yaml", "codeship-services.yml", "codeship-steps.yml",
    "**/.goreleaser.yml", "**/.sops.yaml", "**/.flux.yaml",
)


@dataclass(frozen=True)
class _Scoped:
    """Rules from one source, applying to paths under `domain` ('' for the whole tree)."""

    domain: str
    spec: pathspec.GitIgnoreSpec


class IgnoreRules:
    """A predicate over checkout-relative POSIX paths (directories end in '/'): True = leave out."""

    def __init__(self, scoped: Iterable[_Scoped]) -> None:
        self._scoped = list(scoped)

    @classmethod
    def for_checkout(cls, directory: Path, spec_ignore: str | None) -> IgnoreRules:
        scoped = [_Scoped("", pathspec.GitIgnoreSpec.from_lines(DEFAULT_PATTERNS))]
        scoped += _sourceignore_files(directory)
        if spec_ignore is not None:
            scoped.append(_Scoped("", pathspec.GitIgnoreSpec.from_lines(spec_ignore.splitlines())))
        return cls(scoped)

    def __call__(self, path: str) -> bool:
        excluded = False
        for rules in self._scoped:
            if rules.domain and not path.startswith(rules.domain):
                continue
            rel = path[len(rules.domain):]
            if not rel:
                continue
            result = rules.spec.check_file(rel)
            if result.include is not None:
                excluded = bool(result.include)
        return excluded


_MAX_SOURCEIGNORE = 1024 * 1024


def _read_sourceignore(path: Path) -> list[str]:
    """The lines of a `.sourceignore` that is a regular file of the checkout; a symbolic link
    (to /dev/zero, to a host file) is not followed, and at most 1 MiB is read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return []
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            return []
        return fh.read(_MAX_SOURCEIGNORE).decode("utf-8", "replace").splitlines()


def _sourceignore_files(directory: Path) -> list[_Scoped]:
    """Every `.sourceignore` under `directory`, parents before children, skipping `.git`."""
    found: list[_Scoped] = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if d != ".git")
        if SOURCEIGNORE in files:
            rel = Path(root).relative_to(directory).as_posix()
            domain = "" if rel == "." else f"{rel}/"
            lines = _read_sourceignore(Path(root) / SOURCEIGNORE)
            found.append(_Scoped(domain, pathspec.GitIgnoreSpec.from_lines(lines)))
    return found
