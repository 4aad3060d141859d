"""`simulate`'s live side: the progress line on a terminal's stderr, and `--watch`, which runs
the inputs again whenever one of their files changes or a Git repository they name gets a
commit, and prints only what changed since the last run.

A change is noticed by polling, which needs no extra dependency and behaves the same on every
platform: the input files' (size, mtime) every `FILE_POLL_SECONDS`, the repositories' refs
(`git ls-remote`, through the product's sandboxed Git layer) every `REPO_POLL_SECONDS`. Each
run is a fresh simulated cluster, so a run's result depends only on the inputs and the
repositories, never on the run before.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

import click

from reconciler.commands.common import EXIT_INPUT, EXIT_OK
from reconciler.model.errors import ReconcilerError
from reconciler.model.objects import Obj, ObjectKey
from reconciler.settings import SimulateSettings
from reconciler.simulation import RunProgress, SimulationResult

FILE_POLL_SECONDS = 0.1
REPO_POLL_SECONDS = 1.0
REPO_LIST_SECONDS = 10.0
MAX_WATCHED_FILES = 10_000
MAX_WATCHED_REPOSITORIES = 50
REDRAW_SECONDS = 0.1

# Fields that differ between two runs of the same inputs (each run is a fresh cluster).
_VOLATILE_METADATA = ("uid", "resourceVersion", "managedFields", "creationTimestamp",
                      "generation", "ownerReferences")


class Progress:
    """A live `settled N/M · virtual Ts · round R` line on a terminal, redrawn at most every
    `REDRAW_SECONDS` and wiped when the run ends; does nothing when off."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream
        self._drawn = 0.0
        self._width = 0

    @classmethod
    def for_stderr(cls, quiet: bool) -> Progress:
        """On when stderr is a terminal and not `quiet`."""
        stream = sys.stderr
        return cls(None if quiet or not stream.isatty() else stream)

    @property
    def enabled(self) -> bool:
        return self.stream is not None

    def update(self, progress: RunProgress) -> None:
        if self.stream is None:
            return
        now = time.monotonic()
        if now - self._drawn < REDRAW_SECONDS:
            return
        self._drawn = now
        settled, total = progress.count()
        self.show(f"settled {settled}/{total} · virtual {progress.virtual_seconds:.0f}s · "
                  f"round {progress.rounds}")

    def show(self, line: str) -> None:
        if self.stream is None:
            return
        self.stream.write("\r" + line.ljust(self._width))
        self.stream.flush()
        self._width = len(line)

    def clear(self) -> None:
        if self.stream is not None and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.clear()


def render_result(result: SimulationResult, output: str, show_secrets: bool) -> str:
    """`simulate`'s output: the table, or the whole document as JSON or YAML."""
    from reconciler.report import render_json, render_table, render_yaml

    if output == "table":
        return render_table(result.workloads, result.summary, result.objects)
    document = result.document()
    if not show_secrets:
        from reconciler.diff.mask import mask_secret

        document["objects"] = [mask_secret(o) for o in document["objects"]]
    return render_json(document) if output == "json" else render_yaml(document)


# --- what changed between two runs ---------------------------------------------------------


def comparable(obj: Obj) -> Obj:
    """`obj` without what differs between two runs of the same inputs."""
    metadata = {k: v for k, v in (obj.get("metadata") or {}).items()
                if k not in _VOLATILE_METADATA}
    return {**obj, "metadata": metadata}


@dataclass
class Changes:
    added: list[Obj] = field(default_factory=list)
    changed: list[Obj] = field(default_factory=list)
    removed: list[ObjectKey] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)


def changes_between(before: Sequence[Obj], after: Sequence[Obj]) -> Changes:
    old = {ObjectKey.of(o): comparable(o) for o in before}
    new = {ObjectKey.of(o): o for o in after}
    found = Changes()
    for key in sorted(old.keys() | new.keys()):
        if key not in new:
            found.removed.append(key)
        elif key not in old:
            found.added.append(new[key])
        elif comparable(new[key]) != old[key]:
            found.changed.append(new[key])
    return found


def _title(key: ObjectKey) -> str:
    return f"{key.kind}/{key.namespace + '/' if key.namespace else ''}{key.name}"


def _state(obj: Obj) -> str:
    from reconciler.model.conditions import find_condition

    for type_ in ("Ready", "Succeeded"):
        cond = find_condition((obj.get("status") or {}).get("conditions"), type_)
        if cond is not None:
            reason = f" ({cond['reason']})" if cond.get("reason") else ""
            return f"  {type_}={cond.get('status')}{reason}"
    return ""


def render_changes(changes: Changes, result: SimulationResult, output: str,
                   show_secrets: bool) -> str:
    """What changed since the last run: one line per object (+ added, ~ changed, - removed)
    and the summary; as JSON or YAML, a document with those objects."""
    from reconciler.report import render_json, render_yaml

    if output == "table":
        lines = [f"+ {_title(ObjectKey.of(o))}{_state(o)}" for o in changes.added]
        lines += [f"~ {_title(ObjectKey.of(o))}{_state(o)}" for o in changes.changed]
        lines += [f"- {_title(k)}" for k in changes.removed]
        return "\n".join([*(lines or ["(no object changed)"]), result.summary])
    from reconciler.diff.mask import mask_secret

    def shown(obj: Obj) -> Obj:
        return obj if show_secrets else mask_secret(obj)
    document: dict[str, Any] = {
        "added": [shown(o) for o in changes.added],
        "changed": [shown(o) for o in changes.changed],
        "removed": [{"kind": k.kind, "namespace": k.namespace, "name": k.name}
                    for k in changes.removed],
        "summary": result.document()["summary"],
    }
    return render_json(document) if output == "json" else render_yaml(document)


# --- noticing a change -----------------------------------------------------------------------


def input_files(paths: Sequence[str]) -> Iterator[Path]:
    """The files the loader reads under `paths` (YAML and JSON), at most MAX_WATCHED_FILES."""
    count = 0
    for raw in paths:
        path = Path(raw)
        found = ([path] if path.is_file()
                 else sorted(p for p in path.rglob("*") if p.is_file()
                             and p.suffix in (".yaml", ".yml", ".json"))
                 if path.is_dir() else [])
        for item in found:
            count += 1
            if count > MAX_WATCHED_FILES:
                return
            yield item


def file_stamps(paths: Sequence[str]) -> dict[str, tuple[int, int]]:
    """(size, mtime in ns) of every input file; a missing path counts as a stamp too."""
    stamps: dict[str, tuple[int, int]] = {}
    for raw in paths:
        if not Path(raw).exists():
            stamps[raw] = (-1, -1)
    for item in input_files(paths):
        try:
            stat = item.stat()
        except OSError:
            continue
        stamps[str(item)] = (stat.st_size, stat.st_mtime_ns)
    return stamps


def repositories(objects: Sequence[Obj]) -> list[str]:
    """The URLs of the GitRepositories a run made or was given, at most
    MAX_WATCHED_REPOSITORIES."""
    urls = sorted({str((o.get("spec") or {}).get("url")) for o in objects
                   if o.get("kind") == "GitRepository" and (o.get("spec") or {}).get("url")})
    return urls[:MAX_WATCHED_REPOSITORIES]


def repository_refs(url: str) -> str:
    """The remote's refs as `git ls-remote` lists them ('' when it cannot be reached: a watch
    keeps going, and the next run reports the fetch failure as the GitRepository's status)."""
    from reconciler.sources.gitexec import GitCommandFailed, GitTimedOut, run_git

    try:
        return run_git(["ls-remote", "--", url], timeout=REPO_LIST_SECONDS, allow_file=True)
    except (GitCommandFailed, GitTimedOut, OSError):
        return ""


@dataclass
class Watched:
    """What the last run depended on: its files' stamps and its repositories' refs."""

    files: dict[str, tuple[int, int]]
    refs: dict[str, str]

    def changed(self, paths: Sequence[str], check_repositories: bool) -> str:
        """Why a new run is due ('' when none is): the first changed file or repository."""
        files = file_stamps(paths)
        if files != self.files:
            moved = sorted(k for k in files.keys() | self.files.keys()
                           if files.get(k) != self.files.get(k))
            self.files = files
            return f"{moved[0] if moved else 'an input file'} changed"
        if check_repositories:
            for url, refs in self.refs.items():
                now = repository_refs(url)
                if now != refs:
                    self.refs[url] = now
                    return f"{url} has a new commit"
        return ""


def watch_inputs(paths: Sequence[str], output: str, settings: SimulateSettings,
                 show_secrets: bool, quiet: bool, *,
                 runs: int | None = None, echo: Callable[[str], None] = click.echo,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> int:
    """Run, print, then run again on each change and print what changed, until interrupted
    (or after `runs` runs: tests and benchmarks). Invalid input between runs is reported and
    waited out (fix the file, save, it runs again); exit 2 only when the first run has no
    valid input to start from."""
    from reconciler.loader import load_paths
    from reconciler.simulation import simulate as run_simulation

    last: SimulationResult | None = None
    watched = Watched(file_stamps(paths), {})
    count = 0
    why = ""
    started = clock()
    try:
        while True:
            progress = Progress.for_stderr(quiet)
            # The refs of the repositories known so far, read before the run: a commit that
            # lands while it runs is then seen as a change afterwards, not lost.
            before = {url: repository_refs(url) for url in watched.refs}
            try:
                objects = load_paths(paths, allow_empty=False)
                with progress:
                    result = run_simulation(objects, None, settings, progress=progress.update)
            except ReconcilerError as exc:
                if last is None and runs is None:
                    click.echo(f"error: {exc}", err=True)
                    return EXIT_INPUT
                echo(f"error: {exc}\n(waiting for a change)")
            else:
                took = clock() - started
                # Before printing: whoever commits after seeing the result must be noticed.
                watched.refs = {url: before[url] if url in before else repository_refs(url)
                                for url in repositories(result.objects)}
                if last is None:
                    echo(render_result(result, output, show_secrets))
                else:
                    header = f"--- {why}: ran again in {took:.2f}s"
                    echo(header if output == "table" else f"# {header}")
                    echo(render_changes(changes_between(last.objects, result.objects), result,
                                        output, show_secrets))
                last = result
            count += 1
            if runs is not None and count >= runs:
                return EXIT_OK
            why = _wait_for_change(paths, watched, clock, sleep)
            started = clock()
    except KeyboardInterrupt:
        return EXIT_OK


def _wait_for_change(paths: Sequence[str], watched: Watched, clock: Callable[[], float],
                     sleep: Callable[[float], None]) -> str:
    last_repo_check = clock()
    while True:
        sleep(FILE_POLL_SECONDS)
        due = clock() - last_repo_check >= REPO_POLL_SECONDS
        if due:
            last_repo_check = clock()
        why = watched.changed(paths, check_repositories=due)
        if why:
            return why

