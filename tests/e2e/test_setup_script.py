"""`scripts/setup.sh`, which the README's set-up command runs: a second run installs nothing,
so the example can be run again with no network."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_setup_again_needs_no_package_index() -> None:
    # Bring the install up to date first (a no-op after `scripts/test.sh`, which ran setup; an
    # install when pyproject.toml changed since). Then a package index that cannot be reached
    # makes any further install attempt fail.
    for mode in ([], ["--dev"]):
        subprocess.run(["bash", str(ROOT / "scripts" / "setup.sh"), *mode], check=True,
                       capture_output=True, timeout=600)
    offline = {**os.environ, "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
               "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": ""}
    for mode in ([], ["--dev"]):
        done = subprocess.run(["bash", str(ROOT / "scripts" / "setup.sh"), *mode],
                              capture_output=True, text=True, env=offline, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout == "" and "pip" not in done.stderr
