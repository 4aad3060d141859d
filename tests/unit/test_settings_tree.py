"""The settings tree of `reconciler run`: the generated default file, precedence, strictness."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import main
from reconciler.model.errors import InputError, LoadError
from reconciler.settings import ListenAddress
from reconciler.settings.tree import (
    FLAGS,
    RunSettings,
    field_docs,
    render_defaults,
    resolve,
)


def test_generated_default_file_loads_back_to_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text(render_defaults())
    resolved = resolve(path, {}, {})
    assert resolved.settings == RunSettings()
    # Every field is in the file, so every value came from it.
    assert all(origin.startswith(f"file {path}:") for origin in resolved.origins.values())


def test_every_field_is_documented() -> None:
    assert [f.name for f in fields(RunSettings)] == ["daemon", "kubernetes", "limits", "owners"]
    for group in ("daemon", "kubernetes", "limits", "owners"):
        cls: object = type(getattr(RunSettings(), group))
        docs = field_docs(cls)
        missing = [f.name for f in fields(getattr(RunSettings(), group)) if not docs.get(f.name)]
        assert not missing, f"{group}: undocumented fields {missing}"


def test_the_settings_command_prints_the_default_file() -> None:
    result = CliRunner().invoke(main, ["settings", "--defaults"])
    assert result.exit_code == 0
    assert result.output == render_defaults()


# One field of each group, set at every layer; the highest layer given wins.
# (group, field, file text, env variable and text, flag and value, expected by top layer)
CASES = [
    ("daemon", "concurrent", "2", ("RECONCILER_DAEMON_CONCURRENT", "3"), ("--concurrent", 4),
     {"file": 2, "env": 3, "flag": 4}),
    ("daemon", "webhook_listen", "127.0.0.1:1", ("RECONCILER_DAEMON_WEBHOOK_LISTEN", ":2"),
     ("--webhook-listen", "[::1]:3"),
     {"file": ListenAddress("127.0.0.1", 1), "env": ListenAddress("0.0.0.0", 2),
      "flag": ListenAddress("::1", 3)}),
    ("daemon", "lease_duration_seconds", "20", ("RECONCILER_DAEMON_LEASE_DURATION_SECONDS", "30"),
     ("--lease-duration", 40.0), {"file": 20.0, "env": 30.0, "flag": 40.0}),
    ("kubernetes", "qps", "1.5", ("RECONCILER_KUBERNETES_QPS", "2.5"), None,
     {"file": 1.5, "env": 2.5}),
    ("kubernetes", "qps", "1.5", ("RECONCILER_KUBE_QPS", "7"), None, {"file": 1.5, "env": 7.0}),
    ("kubernetes", "default_service_account", "builder",
     ("RECONCILER_KUBE_DEFAULT_SERVICE_ACCOUNT", "deployer"), None,
     {"file": "builder", "env": "deployer"}),
    ("limits", "reconcile_seconds", "60", ("RECONCILER_LIMITS_RECONCILE_SECONDS", "90"), None,
     {"file": 60.0, "env": 90.0}),
    ("owners", "fast_path", "false", ("RECONCILER_OWNERS_FAST_PATH", "true"), None,
     {"file": False, "env": True}),
    ("owners", "fast_path_max_age_seconds", "30",
     ("RECONCILER_OWNERS_FAST_PATH_MAX_AGE_SECONDS", "45.5"), None, {"file": 30.0, "env": 45.5}),
]


LAYERS = [("file",), ("file", "env"), ("file", "env", "flag"), ("env",), ("flag",),
          ("file", "flag")]
# Every case at every layer combination it can have (a setting without a flag has no flag layer).
PRECEDENCE = [(layers, *case) for case in CASES for layers in LAYERS
              if case[4] is not None or "flag" not in layers]


@pytest.mark.parametrize(("layers", "group", "name", "file_text", "env", "flag", "expected"),
                         PRECEDENCE)
def test_precedence(tmp_path: Path, layers: tuple[str, ...], group: str, name: str,
                    file_text: str, env: tuple[str, str], flag: tuple[str, object] | None,
                    expected: dict[str, object]) -> None:
    config = None
    if "file" in layers:
        config = tmp_path / "settings.yaml"
        config.write_text(f"{group}:\n  {name}: {file_text}\n")
    environ = dict([env]) if "env" in layers else {}
    flags = dict([flag]) if flag is not None and "flag" in layers else {}
    resolved = resolve(config, environ, flags)
    top = layers[-1]
    assert getattr(getattr(resolved.settings, group), name) == expected[top]
    assert resolved.origins[group, name].split()[0] == top
    # The layers below lose, and the rest of the tree keeps its defaults.
    others = {key: origin for key, origin in resolved.origins.items() if key != (group, name)}
    assert set(others.values()) == {"default"}


def test_without_any_source_every_value_is_a_default() -> None:
    resolved = resolve(None, {}, {})
    assert resolved.settings == RunSettings()
    assert set(resolved.origins.values()) == {"default"}


def test_a_list_from_the_file_or_comma_separated_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text("kubernetes:\n  impersonate_user: ci\n  impersonate_groups: [a, b]\n")
    assert resolve(path, {}, {}).settings.kubernetes.impersonate_groups == ("a", "b")
    resolved = resolve(path, {"RECONCILER_KUBE_AS_GROUPS": "c, d"}, {})
    assert resolved.settings.kubernetes.impersonate_groups == ("c", "d")


def test_the_new_variable_wins_over_the_old_name() -> None:
    resolved = resolve(None, {"RECONCILER_KUBE_QPS": "7", "RECONCILER_KUBERNETES_QPS": "9"}, {})
    assert resolved.settings.kubernetes.qps == 9.0
    assert resolved.origins["kubernetes", "qps"] == "env RECONCILER_KUBERNETES_QPS"


def test_every_flag_names_a_field() -> None:
    defaults = RunSettings()
    for group, name in FLAGS.values():
        assert hasattr(getattr(defaults, group), name)


@pytest.mark.parametrize(("text", "line", "message"), [
    ("daemon:\n  concurrent: 2\n  tick_secs: 1\n", 3,
     "unknown setting daemon.tick_secs (did you mean 'tick_seconds'?)"),
    ("deamon:\n  concurrent: 2\n", 1, "unknown group 'deamon' (did you mean 'daemon'?)"),
    ("daemon:\n  concurrent: two\n", 2, "daemon.concurrent: expected an integer, got 'two'"),
    ("daemon:\n  concurrent: true\n", 2, "daemon.concurrent: expected an integer, got true"),
    ("daemon:\n  leader_elect: 'yes'\n", 2, "daemon.leader_elect: expected true or false"),
    ("kubernetes:\n  qps: [1]\n", 2, "kubernetes.qps: expected a number, got a list"),
    ("daemon:\n  listen: 8080\n", 2, "daemon.listen: expected HOST:PORT, got 8080"),
    ("daemon:\n  environment: null\n", 2, "daemon.environment: expected a string, got null"),
    ("daemon: 3\n", 1, "daemon: expected a mapping of settings"),
    ("owners:\n  fast_path: true\n  fastpath_max_age: 5\n", 3,
     "unknown setting owners.fastpath_max_age (did you mean 'fast_path_max_age_seconds'?)"),
    ("owner:\n  fast_path: true\n", 1, "unknown group 'owner' (did you mean 'owners'?)"),
    ("owners:\n  fast_path: 'off'\n", 2, "owners.fast_path: expected true or false"),
    ("- daemon\n", 1, "a settings file is a mapping of groups"),
    ("daemon:\n  concurrent: 1\n  concurrent: 2\n", 3, "duplicate key 'concurrent'"),
])
def test_a_strict_file_names_file_line_and_key(tmp_path: Path, text: str, line: int,
                                               message: str) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text(text)
    with pytest.raises(LoadError) as caught:
        resolve(path, {}, {})
    assert caught.value.line == line
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"{path}:{line}: ")


@pytest.mark.parametrize(("environ", "message"), [
    ({"RECONCILER_DAEMON_CONCURRENT": "many"}, "RECONCILER_DAEMON_CONCURRENT='many'"),
    ({"RECONCILER_KUBE_INFORMERS": "yes"}, "expected 1, 0, true or false"),
    ({"RECONCILER_DAEMON_CONCURRENT": "0"}, "--concurrent must be at least 1"),
    ({"RECONCILER_LIMITS_YAML_DEPTH": "0"}, "limits: yaml_depth must be positive"),
    ({"RECONCILER_OWNERS_FAST_PATH": "off"}, "RECONCILER_OWNERS_FAST_PATH='off'"),
    ({"RECONCILER_OWNERS_FAST_PATH_MAX_AGE_SECONDS": "-1"},
     "owners settings (env RECONCILER_OWNERS_FAST_PATH_MAX_AGE_SECONDS): "
     "fast_path_max_age_seconds must be 0"),
])
def test_a_bad_variable_is_refused_by_name(environ: dict[str, str], message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        resolve(None, environ, {})


def test_an_empty_file_and_an_empty_variable_change_nothing(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text("# nothing yet\n")
    assert resolve(path, {"RECONCILER_DAEMON_SHARD": ""}, {}).settings == RunSettings()


def test_the_settings_command_says_where_each_value_came_from(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text("daemon:\n  concurrent: 8\n  tick_seconds: 2\n")
    result = CliRunner().invoke(
        main, ["settings", "--config", str(path), "--tick", "3"],
        env={"RECONCILER_DAEMON_SHARD": "blue"})
    assert result.exit_code == 0, result.output
    assert f"  concurrent: 8  # file {path}:2\n" in result.output
    assert "  tick_seconds: 3.0  # flag --tick\n" in result.output
    assert "  shard: blue  # env RECONCILER_DAEMON_SHARD\n" in result.output
    assert "  environment: simulator  # default\n" in result.output


def test_run_refuses_a_bad_settings_file_with_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text("daemon:\n  concurent: 8\n")
    result = CliRunner().invoke(main, ["run", "--config", str(path), str(tmp_path)])
    assert result.exit_code == 2
    assert f"{path}:2: unknown setting daemon.concurent" in result.output
