"""Bad input exits 2 with file, object and field; unresolvable chains become conditions (exit 1)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, CliResult

PLATFORM = EXAMPLES / "paved-path" / "platform"

WORKLOAD = """\
apiVersion: carto.run/v1alpha1
kind: Workload
metadata:
  name: app
  labels:
    apps.example.com/workload-type: {type}
spec:
  source:
    git:
      url: {url}
      ref:
        branch: main
"""


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("kind: ConfigMap\napiVersion: v1\nmetadata:\n  name: a\ndata: [unclosed\n",
         ["bad.yaml:", "invalid YAML"]),
        ("apiVersion: carto.run/v1alpha1\nkind: Workload\nmetadata:\n  name: a\nspec:\n"
         "  soruce: {}\n", ["bad.yaml:6", "Workload/a", "spec.soruce", "unknown field"]),
        ("apiVersion: carto.run/v1alpha1\nkind: ClusterSupplyChain\nmetadata:\n  name: c\n"
         "spec:\n  resources:\n    - name: x\n", ["ClusterSupplyChain/c",
                                               "spec.resources[0].templateRef", "required"]),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n",
         ["bad.yaml:4", "metadata.name", "Bad_Name", "RFC 1123 subdomain"]),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  x: ${NOT_SET_ANYWHERE}\n",
         ["bad.yaml:6", "NOT_SET_ANYWHERE"]),
        ("apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n",
         ["bad.yaml:1", "Widget/w", "no matches for kind \"Widget\""]),
    ],
    ids=["malformed-yaml", "unknown-field", "missing-required", "bad-name", "unset-var",
         "unknown-kind"],
)
def test_invalid_input_exits_2(
    tmp_path: Path, cli: Callable[..., CliResult], content: str, expected: list[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(content)
    result = cli("simulate", str(bad))
    assert result.code == 2, result.stdout + result.stderr
    for fragment in expected:
        assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_escaped_variable_stays_literal(tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    cm = tmp_path / "cm.yaml"
    cm.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"
                  "data:\n  x: $${LITERAL}\n")
    result = cli("simulate", str(cm), "-o", "json")
    assert result.code == 0, result.stderr
    cms = [o for o in result.json()["objects"] if o["kind"] == "ConfigMap"]
    assert cms[0]["data"]["x"] == "${LITERAL}"


def _setup(tmp_path: Path, workload: str) -> Path:
    shutil.copytree(PLATFORM, tmp_path / "platform")
    (tmp_path / "workload.yaml").write_text(workload)
    return tmp_path


def _ready(result: CliResult) -> dict[str, str]:
    workload = result.json()["workloads"][0]
    return next(c for c in workload["status"]["conditions"] if c["type"] == "Ready")


def test_no_matching_supply_chain_is_a_condition(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    root = _setup(tmp_path, WORKLOAD.format(type="worker", url="file:///nowhere"))
    result = cli("simulate", str(root), "-o", "json")
    assert result.code == 1, result.stderr
    ready = _ready(result)
    assert ready["status"] == "False"
    assert ready["reason"] == "SupplyChainNotFound"


def test_unknown_template_is_a_condition(tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    root = _setup(tmp_path, WORKLOAD.format(type="web", url="file:///nowhere"))
    (root / "platform" / "templates.yaml").write_text(
        (PLATFORM / "templates.yaml").read_text().replace("name: knative-deploy",
                                                          "name: knative-deploy-renamed"))
    result = cli("simulate", str(root), "-o", "json")
    assert result.code == 1
    ready = _ready(result)
    assert ready["reason"] == "TemplatesNotFound"
    # Cartographer's wording: the resources whose template is missing.
    assert ready["message"] == "did not find the template of the resource(s) [deployer]"


def test_missing_path_at_stamp_time_is_a_condition(
    tmp_path: Path, cli: Callable[..., CliResult], make_repo: Callable[..., object]
) -> None:
    repo = make_repo("app")
    # No spec.build.env in this workload: the image template's $(workload.spec.build.env)$ fails.
    root = _setup(tmp_path, WORKLOAD.format(type="web", url=repo.url))  # type: ignore[attr-defined]
    result = cli("simulate", str(root), "-o", "json", "--budget", "120")
    assert result.code == 1, result.stderr
    workload = result.json()["workloads"][0]
    submitted = next(c for c in workload["status"]["conditions"]
                     if c["type"] == "ResourcesSubmitted")
    assert submitted["status"] == "False"
    assert submitted["reason"] == "TemplateStampFailure"
    assert "workload.spec.build.env" in submitted["message"]
    assert "image-builder" in submitted["message"]
    result_table = cli("simulate", str(root), "--budget", "120")
    assert "TemplateStampFailure" in result_table.stdout


@pytest.mark.parametrize("command", ["simulate", "diff", "validate"])
def test_a_folder_without_objects_is_an_error(
    tmp_path: Path, cli: Callable[..., CliResult], command: str
) -> None:
    (tmp_path / "notes.txt").write_text("not yaml")
    result = cli(command, str(tmp_path))
    assert result.code == 2, result.stdout
    assert "no Kubernetes objects to load" in result.stderr
    assert "no *.yaml or *.yml files" in result.stderr
