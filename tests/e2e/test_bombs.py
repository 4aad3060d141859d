"""Hostile input as an attacker hands it over: bomb files through the CLI, bomb Workloads
through a simulation. Each is refused quickly, with file and line, or fails only its own
resource with a TemplateStampFailure naming the template, the field and the limit."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.loader import load_paths
from reconciler.simulation import simulate
from tests.conftest import CliResult

CHAIN = """\
apiVersion: carto.run/v1alpha1
kind: ClusterSupplyChain
metadata:
  name: cfg
spec:
  selector:
    kind: cfg
  resources:
    - name: config
      templateRef:
        kind: ClusterTemplate
        name: cm
---
apiVersion: carto.run/v1alpha1
kind: ClusterTemplate
metadata:
  name: cm
spec:
  template:
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: $(workload.metadata.name)$
    data:
      value: $(workload.spec.params[0].value)$
"""

JINJA_CHAIN = """\
apiVersion: carto.run/v1alpha1
kind: ClusterSupplyChain
metadata:
  name: jinja
spec:
  selector:
    kind: jinja
  resources:
    - name: config
      templateRef:
        kind: ClusterTemplate
        name: loops
---
apiVersion: carto.run/v1alpha1
kind: ClusterTemplate
metadata:
  name: loops
spec:
  jinja2: |
    {% if workload.metadata.name == "bomb" %}{% for i in range(100000) %}
    {%- for j in range(100000) %}{% endfor %}{% endfor %}{% endif %}
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: {{ workload.metadata.name }}
"""


def _workload(name: str, label: str, params: list[str]) -> str:
    lines = "".join(f"    - name: p{i}\n      value: {value}\n" for i, value in enumerate(params))
    return (f"---\napiVersion: carto.run/v1alpha1\nkind: Workload\nmetadata:\n  name: {name}\n"
            f"  namespace: default\n  labels:\n    kind: {label}\nspec:\n  params:\n{lines}")


def _chained(depth: int, copies: int) -> list[str]:
    """Param k holds `copies` references to param k+1; the last holds a plain value."""
    return [f"$(workload.spec.params[{k + 1}].value)$" * copies for k in range(depth - 1)] + ["lol"]


def _conditions(result: object, name: str) -> dict[str, dict[str, str]]:
    workloads = result.workloads  # type: ignore[attr-defined]
    workload = next(w for w in workloads if w["metadata"]["name"] == name)
    return {c["type"]: c for c in workload["status"]["conditions"]}


def test_exponential_params_fail_only_their_workload(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    bomb = _workload("bomb", "cfg", _chained(28, 2))
    assert len(bomb) < 3000
    (tmp_path / "chain.yaml").write_text(CHAIN)
    (tmp_path / "bomb.yaml").write_text(bomb)
    (tmp_path / "good.yaml").write_text(_workload("good", "cfg", ["hello"]))
    started = time.monotonic()
    result = cli("simulate", str(tmp_path), "-o", "json")
    assert time.monotonic() - started < 60
    assert result.code == 1, result.stderr
    workloads = {w["metadata"]["name"]: w for w in result.json()["workloads"]}
    ready = {c["type"]: c for c in workloads["bomb"]["status"]["conditions"]}["Ready"]
    assert ready["status"] == "False"
    assert ready["reason"] == "TemplateStampFailure"
    for fragment in ("ClusterTemplate/cm", "data.value", "interpolation_bytes"):
        assert fragment in ready["message"]
    good = {c["type"]: c for c in workloads["good"]["status"]["conditions"]}["Ready"]
    assert good["status"] == "True"


@pytest.mark.parametrize(("copies", "limit"), [(1, "interpolation_depth"),
                                               (2, "interpolation_bytes")])
def test_chained_params_are_bounded(tmp_path: Path, copies: int, limit: str) -> None:
    (tmp_path / "chain.yaml").write_text(CHAIN)
    (tmp_path / "bomb.yaml").write_text(_workload("bomb", "cfg", _chained(40, copies)))
    (tmp_path / "good.yaml").write_text(_workload("good", "cfg", _chained(5, 1)))
    result = simulate(load_paths([tmp_path], env={}))
    ready = _conditions(result, "bomb")["Ready"]
    assert ready["reason"] == "TemplateStampFailure"
    assert limit in ready["message"] and "data.value" in ready["message"]
    assert _conditions(result, "good")["Ready"]["status"] == "True"


def test_wide_template_of_large_values_is_bounded(tmp_path: Path) -> None:
    """Many fields each copying a large value: each is small enough, the total is not."""
    fields = "".join(f"      f{i}: $(workload.spec.params[0].value)$\n" for i in range(40))
    chain = CHAIN.replace("      value: $(workload.spec.params[0].value)$\n", fields)
    (tmp_path / "chain.yaml").write_text(chain)
    (tmp_path / "bomb.yaml").write_text(_workload("bomb", "cfg", ["x" * 500_000]))
    result = simulate(load_paths([tmp_path], env={}))
    ready = _conditions(result, "bomb")["Ready"]
    assert ready["reason"] == "TemplateStampFailure"
    assert "interpolation_work_bytes" in ready["message"]


def test_jinja_nested_loops_stop(tmp_path: Path) -> None:
    (tmp_path / "chain.yaml").write_text(JINJA_CHAIN)
    (tmp_path / "bomb.yaml").write_text(_workload("bomb", "jinja", ["x"]))
    (tmp_path / "good.yaml").write_text(_workload("good", "jinja", ["x"]))
    started = time.monotonic()
    result = simulate(load_paths([tmp_path], env={}))
    assert time.monotonic() - started < 30
    ready = _conditions(result, "bomb")["Ready"]
    assert ready["reason"] == "TemplateStampFailure"
    assert "ClusterTemplate/loops" in ready["message"]
    assert "render_iterations" in ready["message"] or "render_seconds" in ready["message"]
    assert _conditions(result, "good")["Ready"]["status"] == "True"


def _laughs() -> str:
    lines = ['apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lol\ndata:\n',
             '  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n']
    for i in range(1, 9):
        refs = ",".join([f"*{chr(96 + i)}"] * 9)
        lines.append(f"  {chr(97 + i)}: &{chr(97 + i)} [{refs}]\n")
    return "".join(lines)


CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (_laughs().encode(), ["bomb.yaml:", "excessive aliasing"]),
        ((CM + "data:\n  x: " + "[" * 10_000 + "]" * 10_000 + "\n").encode(),
         ["bomb.yaml:6", "nesting"]),
        ((CM + "data:\n" + "".join("  " * (i + 1) + "k:\n" for i in range(1_000))).encode(),
         ["bomb.yaml:", "deeper than the limit of 100"]),
        ((CM + "data:\n  x: a\0b\n").encode(), ["bomb.yaml:6", "NUL byte"]),
        ((CM + "data:\n  x: a\x07b\n").encode(), ["bomb.yaml:6", "U+0007"]),
        (CM.encode() + b"data:\n  x: \xff\xfe\n", ["bomb.yaml:6", "invalid UTF-8"]),
        ((CM + "data:\n  x: one\n  x: two\n").encode(), ["bomb.yaml:7", "duplicate key 'x'",
                                                        "first at line 6"]),
        ((CM + "data:\n  x: &x [*x]\n").encode(), ["bomb.yaml:6", "contains it"]),
        ((CM + "data:\n  x: '" + "y" * (3 * 1024 * 1024) + "'\n").encode(),
         ["bomb.yaml", "too large"]),
    ],
    ids=["billion-laughs", "deep-flow", "deep-block", "nul", "control-char", "invalid-utf8",
         "duplicate-key", "recursive-alias", "oversized"],
)
@pytest.mark.parametrize("command", ["validate", "simulate"])
def test_bomb_files_are_input_errors(
    tmp_path: Path, cli: Callable[..., CliResult], content: bytes, expected: list[str],
    command: str,
) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_bytes(content)
    result = cli(command, str(bomb))
    assert result.code == 2, result.stdout + result.stderr
    for fragment in expected:
        assert fragment in result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


def test_unset_variable_in_a_comment_is_not_required(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    cm = tmp_path / "cm.yaml"
    cm.write_text("# uses ${NOT_SET_ANYWHERE} later\n" + CM +
                  "data:\n  x: ${SET_HERE} # ${NOT_SET_ANYWHERE}\n"
                  "  y: '# ${SET_HERE}'\n  z: |\n    # ${SET_HERE}\n")
    result = cli("simulate", str(cm), "-o", "json", env={"SET_HERE": "v"})
    assert result.code == 0, result.stderr
    data = next(o for o in result.json()["objects"] if o["kind"] == "ConfigMap")["data"]
    assert data == {"x": "v", "y": "# v", "z": "# v\n"}


def test_unset_variable_outside_comments_is_still_required(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    cm = tmp_path / "cm.yaml"
    cm.write_text(CM + "data:\n  x: 'a # ${NOT_SET_ANYWHERE}'\n")
    result = cli("validate", str(cm))
    assert result.code == 2
    assert "cm.yaml:6" in result.stderr and "NOT_SET_ANYWHERE" in result.stderr
