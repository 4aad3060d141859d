"""`reconciler --version`, `--help`, `version` and `completion` import nothing of the product
beyond the CLI's own table: the modules a fresh interpreter holds after each are checked (the
time it takes is `benchmarks/cli_start.py`'s business, not a test's)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("structlog", "yaml", "jinja2", "deepdiff", "kubernetes", "pydantic", "urllib3",
         "reconciler.loader", "reconciler.simulation", "reconciler.engine", "reconciler.daemon",
         "reconciler.model.errors", "reconciler.commands.local", "reconciler.commands.cluster",
         "reconciler.commands.servers", "simulator")

PROBE = """
import json, sys
from reconciler.cli import main
try:
    main(sys.argv[1:], prog_name="reconciler")
except SystemExit:
    pass
sys.stdout = sys.__stdout__
print("\\n" + json.dumps(sorted(sys.modules)))
"""


def modules_after(*args: str) -> set[str]:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True,
                          text=True, check=True, timeout=60)
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("args", [("--version",), ("--help",), ("version",),
                                  ("completion", "bash")])
def test_light_commands_import_nothing_heavy(args: tuple[str, ...]) -> None:
    loaded = modules_after(*args)
    heavy = sorted(m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert heavy == [], f"reconciler {' '.join(args)} imported {heavy}"


def test_a_command_imports_its_own_module_only() -> None:
    """`validate --help` loads the local commands, not the cluster's or the servers'."""
    loaded = modules_after("validate", "--help")
    assert "reconciler.commands.local" in loaded
    assert "reconciler.commands.cluster" not in loaded
    assert "reconciler.commands.servers" not in loaded
    assert "kubernetes" not in loaded
