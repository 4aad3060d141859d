"""The CLI's surface without a cluster: every command's help has Examples, shell completion
works for the three shells, kinds and targets parse as kubectl's, the shared printer's formats,
and `simulate --watch`'s change detection and progress line."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from reconciler.cli import COMMANDS, main
from reconciler.commands import output as out
from reconciler.commands.cluster import GIT_REPOSITORY, WORKLOAD, kind_ref, split_target
from reconciler.commands.watching import (
    Progress,
    Watched,
    changes_between,
    file_stamps,
    render_changes,
)
from reconciler.model.annotations import SUSPEND_ANNOTATION
from reconciler.model.errors import InputError
from reconciler.simulation import RunProgress


@pytest.mark.parametrize("command", sorted({*COMMANDS, "version", "completion"}))
def test_every_command_help_has_examples(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0, result.output
    examples = result.output.split("Examples:")
    assert len(examples) == 2, f"{command} --help has no Examples section"
    assert f"reconciler {command}" in examples[1] or command == "completion"


def test_main_help_lists_every_command_from_the_table() -> None:
    result = CliRunner().invoke(main, ["--help"])
    listed = result.output.split("Commands:")[1].split()
    assert set(COMMANDS) | {"version", "completion"} <= set(listed)


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_a_script_for_each_shell(shell: str) -> None:
    result = CliRunner().invoke(main, ["completion", shell])
    assert result.exit_code == 0
    assert "_RECONCILER_COMPLETE" in result.output


def test_completion_script_answers_with_commands_and_flags() -> None:
    """The protocol the bash script speaks: COMP_WORDS and COMP_CWORD in, candidates out."""
    script = Path(sys.executable).with_name("reconciler")
    env = {**os.environ, "_RECONCILER_COMPLETE": "bash_complete"}
    commands = subprocess.run([str(script)], env={**env, "COMP_WORDS": "reconciler re",
                                                  "COMP_CWORD": "1"},
                              capture_output=True, text=True, timeout=60).stdout
    assert {"plain,reconcile", "plain,resume"} <= set(commands.split())
    flags = subprocess.run([str(script)], env={**env, "COMP_WORDS": "reconciler get --all",
                                               "COMP_CWORD": "2"},
                           capture_output=True, text=True, timeout=60).stdout
    assert "plain,--all-namespaces" in flags.split()


def test_unknown_shell_is_a_usage_error() -> None:
    assert CliRunner().invoke(main, ["completion", "tcsh"]).exit_code == 2


# --- kinds and targets -------------------------------------------------------------------


def test_kinds_by_kubectl_and_flux_names() -> None:
    assert kind_ref("WRK") is WORKLOAD and kind_ref("sources") is GIT_REPOSITORY
    with pytest.raises(InputError, match=r"unknown kind 'pods'.*workloads \(wrk\)"):
        kind_ref("pods")


def test_targets_as_kind_names_or_kind_slash_name() -> None:
    assert split_target(["wrk", "a", "b"]) == (WORKLOAD, ["a", "b"])
    assert split_target(["workload/a", "wl/b"]) == (WORKLOAD, ["a", "b"])
    with pytest.raises(InputError, match="one kind"):
        split_target(["workload/a", "gitrepo/b"])
    with pytest.raises(InputError, match="KIND/NAME"):
        split_target(["workload/"])
    with pytest.raises(InputError, match="name a kind"):
        split_target([])


def test_verbs_refuse_a_bad_command_line_before_connecting(tmp_path: Path) -> None:
    """No cluster is reachable through this kubeconfig: exit 2 proves nothing dialled out."""
    kubeconfig = tmp_path / "none"
    for args in (["get", "wrk", "-n", "a", "-A"], ["get", "wrk", "x", "-A"],
                 ["reconcile", "wrk"], ["reconcile", "wrk", "a", "b"],
                 ["events", "--for", "workload"], ["get", "wrk", "-l", "a in (b"]):
        result = CliRunner().invoke(main, [*args, "--kubeconfig", str(kubeconfig)])
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.startswith("error: ")


# --- the printer ---------------------------------------------------------------------------


def _workload(name: str, ready: str, namespace: str = "dev") -> dict[str, object]:
    return {"apiVersion": "carto.run/v1alpha1", "kind": "Workload",
            "metadata": {"name": name, "namespace": namespace,
                         "creationTimestamp": "2026-01-01T00:00:00Z",
                         "annotations": {SUSPEND_ANNOTATION: "true"} if name == "b" else {}},
            "status": {"conditions": [{"type": "Ready", "status": ready, "reason": "Why",
                                       "message": "line one\nline two"}],
                       "supplyChainRef": {"name": "web"}}}


def test_table_wide_and_namespaces() -> None:
    objects = [_workload("a", "True"), _workload("b", "False")]
    table = out.render(objects, "Workload", "table").splitlines()
    assert table[0].split() == ["NAME", "READY", "REASON", "SUSPENDED", "AGE"]
    assert table[2].split()[:4] == ["b", "False", "Why", "True"]
    wide = out.render(objects, "Workload", "wide", namespaces=True).splitlines()
    assert wide[0].split()[:5] == ["NAMESPACE", "NAME", "SOURCE", "SUPPLY", "CHAIN"]
    assert "line one line two" in wide[1]  # one line per cell
    assert out.render([], "Workload", "table") == ""


def test_json_yaml_and_name() -> None:
    objects = [_workload("a", "True"), _workload("b", "True")]
    assert json.loads(out.render(objects[:1], "Workload", "json", single=True))["kind"] == (
        "Workload")
    listed = yaml.safe_load(out.render(objects, "Workload", "yaml"))
    assert listed["kind"] == "List" and len(listed["items"]) == 2
    assert out.render(objects, "Workload", "name") == (
        "workload.carto.run/a\nworkload.carto.run/b")
    event = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"}}
    assert out.name_of_kind(event) == "event/e"


def test_age_reads_like_kubectl() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 1, 3, 0, 0, 0, tzinfo=UTC)
    assert out.age("2026-01-02T23:59:18Z", now) == "42s"
    assert out.age("2026-01-02T23:55:00Z", now) == "5m"
    assert out.age("2026-01-02T21:00:00Z", now) == "3h"
    assert out.age("2026-01-01T00:00:00Z", now) == "2d"
    assert out.age(None, now) == out.age("garbage", now) == "<unknown>"


# --- simulate --watch ----------------------------------------------------------------------


def _obj(name: str, data: str, uid: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default", "uid": uid,
                         "resourceVersion": uid},
            "data": {"k": data}}


def test_changes_between_runs_ignore_what_every_run_makes_anew() -> None:
    before = [_obj("same", "x", "1"), _obj("edited", "x", "2"), _obj("gone", "x", "3")]
    after = [_obj("same", "x", "9"), _obj("edited", "y", "8"), _obj("new", "x", "7")]
    found = changes_between(before, after)
    assert [o["metadata"]["name"] for o in found.added] == ["new"]
    assert [o["metadata"]["name"] for o in found.changed] == ["edited"]
    assert [k.name for k in found.removed] == ["gone"]
    assert not changes_between(before, [_obj("same", "x", "5"), _obj("edited", "x", "6"),
                                        _obj("gone", "x", "4")])


def test_render_changes_as_lines() -> None:
    class Result:
        summary = "1/1 workloads Ready"

    found = changes_between([_obj("a", "x", "1")], [_obj("a", "y", "2"), _obj("b", "x", "3")])
    text = render_changes(found, Result(), "table", False)  # type: ignore[arg-type]
    assert text.splitlines() == ["+ ConfigMap/default/b", "~ ConfigMap/default/a",
                                 "1/1 workloads Ready"]


def test_a_saved_input_file_is_noticed(tmp_path: Path) -> None:
    folder = tmp_path / "inputs"
    folder.mkdir()
    (folder / "a.yaml").write_text("a: 1\n")
    (folder / "notes.txt").write_text("not an input")
    watched = Watched(file_stamps([str(folder)]), {})
    assert watched.changed([str(folder)], check_repositories=False) == ""
    (folder / "notes.txt").write_text("still not an input")
    assert watched.changed([str(folder)], check_repositories=False) == ""
    (folder / "a.yaml").write_text("a: 22\n")
    assert "a.yaml changed" in watched.changed([str(folder)], check_repositories=False)
    (folder / "b.yml").write_text("b: 1\n")
    assert "b.yml changed" in watched.changed([str(folder)], check_repositories=False)


def test_progress_draws_on_a_terminal_only() -> None:
    stream = io.StringIO()
    progress = Progress(stream)
    with progress:
        progress.update(RunProgress(7, 120.0, lambda: (3, 10)))
        assert "settled 3/10 · virtual 120s · round 7" in stream.getvalue()
        progress.update(RunProgress(8, 121.0, lambda: (4, 10)))  # within REDRAW_SECONDS
        assert "round 8" not in stream.getvalue()
    assert stream.getvalue().endswith("\r")  # wiped at the end
    silent = Progress.for_stderr(quiet=True)
    assert not silent.enabled

    def never() -> tuple[int, int]:
        raise AssertionError("a silent progress counts nothing")

    silent.update(RunProgress(1, 0.0, never))
