"""`reconciler serve` tunes the cycle collector before it loads and serves the cluster, as
`simulate` and `run` do (`runtime.gctuning`), and leaves it as Python sets it when
`RECONCILER_GC_TUNING` says off.

The server itself is replaced by a recorder of the thresholds in force when it starts: what is
under test is the command's wiring, which a served cluster in a subprocess cannot show."""

from __future__ import annotations

import gc
import importlib.metadata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from reconciler.cli import main
from reconciler.runtime.gctuning import GEN0_THRESHOLD, GEN1_THRESHOLD


@pytest.fixture
def thresholds_restored() -> Iterator[None]:
    before = gc.get_threshold()
    try:
        yield
    finally:
        gc.set_threshold(*before)


class _Recorder:
    name = "simulator"

    def __init__(self) -> None:
        self.seen: list[tuple[int, ...]] = []

    def load(self) -> Any:
        def server(objects: Any, **options: Any) -> None:
            self.seen.append(gc.get_threshold())
        return server


def _serve(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str]) -> _Recorder:
    recorder = _Recorder()
    real = importlib.metadata.entry_points

    def entry_points(**kwargs: Any) -> Any:
        if kwargs.get("group") == "reconciler.servers":
            return [recorder]
        return real(**kwargs)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    result = CliRunner().invoke(
        main, ["serve", "--kubeconfig", str(tmp_path / "kc"), "--listen", "127.0.0.1:0"],
        env=env)
    assert result.exit_code == 0, result.output
    return recorder


def test_serve_raises_the_collector_thresholds_before_serving(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, thresholds_restored: None) -> None:
    gc.set_threshold(700, 10, 10)
    recorder = _serve(monkeypatch, tmp_path, {"RECONCILER_GC_TUNING": "on"})
    assert recorder.seen == [(GEN0_THRESHOLD, GEN1_THRESHOLD, 10)]


def test_serve_leaves_the_collector_alone_when_tuning_is_off(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, thresholds_restored: None) -> None:
    gc.set_threshold(700, 10, 10)
    recorder = _serve(monkeypatch, tmp_path, {"RECONCILER_GC_TUNING": "off"})
    assert recorder.seen == [(700, 10, 10)]
