"""`simulate` works in a scratch directory of its own (Git checkouts, artifacts) when it is given
no state to keep, and removes it after the run on a thread of its own (`remove_later`):
the result does not wait for the disk, and nothing is left behind."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from reconciler.loader import load_paths
from reconciler.simulation import RunProgress, simulate, wait_for_removals

GREETER = Path(__file__).resolve().parents[2] / "examples" / "greeter"


def test_the_scratch_directory_is_there_during_the_run_and_gone_after(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    seen: list[list[Path]] = []

    def progress(where: RunProgress) -> None:
        seen.append(sorted(tmp_path.glob("reconciler-*")))

    result = simulate(load_paths([GREETER / "00-supply-chain.yaml",
                                  GREETER / "00-workload.yaml"]), progress=progress)
    assert result.ready
    assert seen and all(len(found) == 1 for found in seen)
    wait_for_removals()
    assert not list(tmp_path.glob("reconciler-*"))


def test_with_state_the_data_directory_is_kept(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    state = tmp_path / "state.json"
    result = simulate(load_paths([GREETER / "00-supply-chain.yaml",
                                  GREETER / "00-workload.yaml"]), state=state)
    assert result.ready
    wait_for_removals()
    assert state.exists()
    assert not list(scratch.glob("reconciler-*"))  # no scratch made: the state's own directory
    assert state.with_name(state.name + ".d").is_dir()
