"""`reconciler test` as a user runs it: output lines, exit codes, -k, --timeout, --junit."""

from __future__ import annotations

import re
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import SHARED, CliResult
from tests.manifests import greeter_chain

CONFORMANCE = SHARED / "conformance" / "cartographer-kuttl"

CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  colour: blue
"""


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(content))
    return root


@pytest.fixture
def tests_folder(tmp_path: Path) -> Path:
    return _write(tmp_path / "checks", {
        "passes/00-configmap.yaml": CONFIGMAP,
        "passes/00-assert.yaml": CONFIGMAP,
        "fails/00-configmap.yaml": CONFIGMAP,
        "fails/00-assert.yaml": CONFIGMAP.replace("blue", "red"),
    })


def test_reports_each_test_and_a_summary_and_exits_1_on_failure(
    tests_folder: Path, cli: Callable[..., CliResult]
) -> None:
    result = cli("test", str(tests_folder))
    assert result.code == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"FAIL checks/fails \(\d+\.\d\ds\)", lines[0])
    assert 'data.colour: expected "red", got "blue"' in result.stdout
    assert any(re.fullmatch(r"PASS checks/passes \(\d+\.\d\ds\)", line) for line in lines)
    assert lines[-1] == "1 passed, 1 failed"
    assert "Traceback" not in result.stderr


def test_k_filters_and_all_passing_exits_0_with_junit(
    tests_folder: Path, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    junit = tmp_path / "out" / "junit.xml"
    result = cli("test", str(tests_folder), "-k", "pass", "--junit", str(junit))
    assert result.code == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "1 passed, 0 failed"
    suite = ET.parse(junit).getroot()
    assert [c.get("name") for c in suite.iter("testcase")] == ["passes"]


def test_timeout_option_bounds_virtual_time(
    tests_folder: Path, cli: Callable[..., CliResult]
) -> None:
    result = cli("test", str(tests_folder / "fails"), "--timeout", "7")
    assert result.code == 1
    assert "(timeout 7s;" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["does-not-exist"], "no such file or folder"),
        ([".", "-k", "no-test-has-this-name"], "no test name contains"),
    ],
    ids=["missing-path", "k-matches-nothing"],
)
def test_unusable_input_exits_2(
    tests_folder: Path, cli: Callable[..., CliResult], args: list[str], message: str
) -> None:
    args = [str(tests_folder) if a == "." else a for a in args]
    result = cli("test", *args)
    assert result.code == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(not CONFORMANCE.is_dir(), reason="conformance data not present")
def test_conformance_suite_runs_every_test_and_fails_ytt_clearly(
    cli: Callable[..., CliResult]
) -> None:
    result = cli("test", str(CONFORMANCE))
    assert result.code in (0, 1), result.stderr
    lines = result.stdout.splitlines()
    names = [line.split()[1] for line in lines if line.startswith(("PASS ", "FAIL "))]
    assert "supplychain/workload-status" in names and "runnable/CRDs" in names
    assert re.fullmatch(r"\d+ passed, \d+ failed", lines[-1])
    # The product's CRDs are installed by the simulator: these only assert that.
    assert "PASS supplychain/CRDs" in result.stdout
    assert "FAIL supplychain/templates-ytt" in result.stdout
    assert "ytt templates are not supported" in result.stdout
    assert "Traceback" not in result.stderr


def test_the_readme_example_ships_and_passes(cli: Callable[..., CliResult]) -> None:
    """README's `reconciler test examples/greeter` runs on what the repository ships, and the
    files the README shows are the files in that folder."""
    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text()
    shown = dict(re.findall(r"```yaml\n# (00-[\w-]+\.yaml)\n(.*?)```", readme, re.S))
    assert set(shown) == {p.name for p in (root / "examples" / "greeter").glob("*.yaml")}
    for name, body in shown.items():
        assert (root / "examples" / "greeter" / name).read_text() == body, name
    # The tests' greeter chain is the example's, so the two cannot drift apart.
    assert (root / "examples" / "greeter" / "00-supply-chain.yaml").read_text() == greeter_chain()
    result = cli("test", str(root / "examples" / "greeter"))
    assert result.code == 0, result.stdout + result.stderr
    assert "1 passed, 0 failed" in result.stdout
