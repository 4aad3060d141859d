"""JSONPath `=~` matches with RE2, as client-go's Go `regexp` does: Go's syntax, and time linear in
the subject whatever a user writes as the pattern.

A backtracking engine takes exponential time on `^(a+)+b` against a run of `a`s; these tests would
hang there (and fail on the suite's timeout) rather than assert anything about time.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler.loader import load_paths
from reconciler.model.jsonpath import (
    MAX_REGEXP_CHARS,
    JSONPathError,
    JSONPathSyntaxError,
    compile_path,
    evaluate,
)
from reconciler.settings import SimulateSettings
from reconciler.simulation import simulate
from tests.conftest import CliResult
from tests.manifests import settings_chain

HOSTILE = "a" * 50_000 + "!"
DATA: dict[str, Any] = {"items": [
    {"name": "ready", "value": 1},
    {"name": HOSTILE, "value": 2},
    {"name": "Readiness", "value": 3},
    {"name": "٣", "value": 4},
]}


def values(expr: str, data: Any = DATA) -> list[Any]:
    return compile_path(expr).find(data)


@pytest.mark.parametrize(("pattern", "found"), [
    ("^rea", [1]),
    ("(?i)^READ", [1, 3]),
    ("ness$", [3]),
    ("^[a-z]+$", [1]),
    # Go's \d is ASCII only: the Arabic-Indic digit three is not one (the path's quoted string
    # takes `\\` for one backslash).
    (r"\\d", []),
    (r"\\pN", [4]),
    ("^(a+)+b", []),
    ("^(a|a)*b", []),
    ("^(a|aa)+$", []),
    ("(x+x+)+y", []),
])
def test_patterns_match_as_go_regexp(pattern: str, found: list[int]) -> None:
    assert values(f'items[?(@.name=~"{pattern}")].value') == found


def test_non_ascii_and_a_lone_surrogate_are_matched_as_utf8() -> None:
    data = {"items": [{"name": "café"}, {"name": "\ud800x"}, {"name": "CAFÉ"}]}
    assert values('items[?(@.name=~"^caf.$")].name', data) == ["café"]
    assert values('items[?(@.name=~"(?i)^café$")].name', data) == ["café", "CAFÉ"]
    assert values('items[?(@.name=~"x$")].name', data) == ["\ud800x"]
    # No encoding error from a pattern holding one either: its bytes match the same bytes.
    assert values('items[?(@.name=~"\ud800")].name', data) == ["\ud800x"]


def test_a_catastrophic_pattern_from_the_data_is_linear_too() -> None:
    data = {"items": [{"name": HOSTILE, "pattern": "^(a+)+b"},
                      {"name": "aab", "pattern": "^(a+)+b"}]}
    assert values("items[?(@.name=~@.pattern)].name", data) == ["aab"]


@pytest.mark.parametrize(("pattern", "reason"), [
    (r"(a)\\1", "invalid escape sequence"),
    ("x(?=y)", "invalid perl operator"),
    ("a{1001}", "invalid repetition size"),
    ("((a{100}){100}){100}", "invalid repetition size"),
    ("(", "missing )"),
])
def test_a_pattern_go_refuses_is_a_syntax_error_naming_it(pattern: str, reason: str) -> None:
    expr = f'items[?(@.name=~"{pattern}")].value'
    with pytest.raises(JSONPathSyntaxError) as raised:
        compile_path(expr)
    message = str(raised.value)
    assert raised.value.expr == expr and message.endswith(expr)
    assert "invalid regexp" in message and reason in message


def test_a_bad_pattern_from_the_data_fails_the_evaluation_naming_the_path() -> None:
    expr = "items[?(@.name=~@.pattern)].name"
    with pytest.raises(JSONPathError) as raised:
        evaluate(expr, {"items": [{"name": "a", "pattern": "(?<!a)b"}]})
    assert "invalid regexp '(?<!a)b'" in str(raised.value) and expr in str(raised.value)


def test_an_overlong_pattern_is_refused() -> None:
    pattern = "a" * (MAX_REGEXP_CHARS + 1)
    with pytest.raises(JSONPathSyntaxError, match=f"longer than {MAX_REGEXP_CHARS} characters"):
        compile_path(f'items[?(@.name=~"{pattern}")].value')
    assert values(f'items[?(@.name=~"{pattern[:MAX_REGEXP_CHARS]}")].value') == [2]


# --- as a user meets it ------------------------------------------------------------------------

CHAIN_WITH_FIELD_SELECTOR = """\
apiVersion: carto.run/v1alpha1
kind: ClusterSupplyChain
metadata:
  name: picky
spec:
  selectorMatchFields:
    - key: 'spec.params[?(@.name=~"(a)\\\\1")].value'
      operator: Exists
  resources: []
"""


@pytest.mark.parametrize("command", ["validate", "simulate"])
def test_a_bad_pattern_in_a_field_selector_is_exit_2_naming_file_object_and_field(
        tmp_path: Path, cli: Callable[..., CliResult], command: str) -> None:
    path = tmp_path / "chain.yaml"
    path.write_text(CHAIN_WITH_FIELD_SELECTOR)
    result = cli(command, str(path))
    assert result.code == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert str(path) in result.stderr and "ClusterSupplyChain" in result.stderr
    assert "spec.selectorMatchFields[0].key" in result.stderr
    assert "invalid regexp '(a)\\\\1': invalid escape sequence: \\1" in result.stderr
    assert 'spec.params[?(@.name=~"(a)\\\\1")].value' in result.stderr


def _template(tag: str) -> str:
    return f"""template:
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: $(workload.metadata.name)$-settings
    data:
      value: $({tag})$"""


WORKLOAD = """\
apiVersion: carto.run/v1alpha1
kind: Workload
metadata:
  name: app
  namespace: default
  labels:
    app.example.com/kind: settings
spec:
  params:
    - name: {hostile}
      value: hostile
    - name: greeting
      value: hello
"""


def _simulate(tmp_path: Path, tag: str) -> dict[str, Any]:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "chain.yaml").write_text(settings_chain(body=_template(tag)))
    (folder / "workload.yaml").write_text(WORKLOAD.format(hostile="a" * 20_000 + "!"))
    result = simulate(load_paths([folder], {}), settings=SimulateSettings(budget_seconds=120))
    return dict(result.workloads[0])


def test_a_template_with_a_catastrophic_pattern_stamps(tmp_path: Path) -> None:
    workload = _simulate(tmp_path, 'workload.spec.params[?(@.name=~"^(a+)+b|^gr")].value')
    ready = next(c for c in workload["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True", ready
    assert workload["status"]["resources"][0]["stampedRef"]["name"] == "app-settings"


def test_a_template_with_a_bad_pattern_names_template_tag_and_pattern(tmp_path: Path) -> None:
    tag = 'workload.spec.params[?(@.name=~"(?=g)")].value'
    workload = _simulate(tmp_path, tag)
    ready = next(c for c in workload["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "TemplateStampFailure")
    assert "ClusterTemplate/settings" in ready["message"]
    assert "invalid regexp '(?=g)': invalid perl operator: (?=" in ready["message"]
    assert tag in ready["message"]
