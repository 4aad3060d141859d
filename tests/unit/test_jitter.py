"""Source interval jitter (Flux's `--interval-jitter-percentage`): the bounds with a seeded
random source, the Git controller's next poll after a success, the daemon's setting and flag,
and `simulate`'s determinism (jitter 0)."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import main
from reconciler.model.errors import InputError
from reconciler.runtime.jitter import check_percentage, jittered
from reconciler.settings import DaemonSettings, SourceSettings
from reconciler.sources.artifacts import ArtifactStore
from reconciler.sources.git import GitRepositoryController


@pytest.mark.parametrize("fraction", [0.05, 0.1, 0.5])
@pytest.mark.parametrize("interval", [1.0, 60.0, 3600.0])
def test_jittered_stays_within_the_bounds_and_spreads(interval: float, fraction: float) -> None:
    rng = random.Random(42)
    draws = [jittered(interval, fraction, rng.random) for _ in range(2000)]
    low, high = interval * (1 - fraction), interval * (1 + fraction)
    assert all(low <= d <= high for d in draws)
    # Uniform over the whole band: both tails reached, centred on the interval.
    assert min(draws) < interval * (1 - 0.9 * fraction)
    assert max(draws) > interval * (1 + 0.9 * fraction)
    assert abs(sum(draws) / len(draws) - interval) < interval * fraction * 0.1
    # Seeded: the same draws again.
    rng2 = random.Random(42)
    assert draws == [jittered(interval, fraction, rng2.random) for _ in range(2000)]


@pytest.mark.parametrize(("draw", "expected"), [(0.0, 57.0), (0.5, 60.0), (0.999999, 63.0)])
def test_jittered_edges(draw: float, expected: float) -> None:
    assert jittered(60.0, 0.05, lambda: draw) == pytest.approx(expected, abs=1e-3)


def test_no_jitter_draws_nothing() -> None:
    def never() -> float:
        raise AssertionError("jitter 0 must not draw")
    assert jittered(60.0, 0.0, never) == 60.0
    assert jittered(0.0, 0.05, never) == 0.0


@pytest.mark.parametrize(("percentage", "fraction"), [(0, 0.0), (5, 0.05), (99.5, 0.995)])
def test_check_percentage(percentage: float, fraction: float) -> None:
    assert check_percentage(percentage) == pytest.approx(fraction)


@pytest.mark.parametrize("percentage", [-1, 100, 150])
def test_check_percentage_refuses_outside_0_to_100(percentage: float) -> None:
    with pytest.raises(ValueError, match="at least 0 and below 100"):
        check_percentage(percentage)
    with pytest.raises(InputError, match="--interval-jitter-percentage"):
        DaemonSettings(interval_jitter_percentage=percentage)


def test_defaults_daemon_five_percent_simulate_none(tmp_path: Path) -> None:
    assert DaemonSettings().interval_jitter_percentage == 5.0
    assert SourceSettings(tmp_path / "a", tmp_path / "w").interval_jitter == 0.0


def test_run_refuses_a_bad_percentage_flag() -> None:
    result = CliRunner().invoke(main, ["run", "--interval-jitter-percentage", "100", "x.yaml"])
    assert result.exit_code == 2
    assert "--interval-jitter-percentage" in result.output


class _Clock:
    def now(self) -> float:
        return 1_700_000_000.0


def _repo(path: Path) -> str:
    path.mkdir(parents=True)
    for args in (["init", "-q", "-b", "main"], ["config", "user.email", "t@example.com"],
                 ["config", "user.name", "t"]):
        subprocess.run(["git", *args], cwd=path, check=True)
    (path / "a.yaml").write_text("a: 1\n")
    subprocess.run(["git", "add", "-A"], cwd=path, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "one"], cwd=path, check=True)
    return f"file://{path}"


def _git(tmp_path: Path, jitter: float, seed: int = 7) -> GitRepositoryController:
    return GitRepositoryController(ArtifactStore(tmp_path / "store", "http://artifacts.test"),
                                   _Clock(), tmp_path / "work", allow_local_urls=True,
                                   interval_jitter=jitter, random=random.Random(seed).random)


@pytest.mark.parametrize("jitter", [0.0, 0.05])
def test_a_successful_poll_comes_back_after_the_jittered_interval(tmp_path: Path,
                                                                  jitter: float) -> None:
    source = _repo(tmp_path / "repo")
    obj = {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
           "metadata": {"name": "app", "namespace": "default", "generation": 1, "uid": "u1"},
           "spec": {"url": source, "interval": "1m0s", "ref": {"branch": "main"}}}
    git = _git(tmp_path, jitter)
    result = git.reconcile(obj)
    assert result.status.get("artifact")
    expected = jittered(60.0, jitter, random.Random(7).random)
    assert result.requeue_after == pytest.approx(expected)
    if jitter:
        assert result.requeue_after != 60.0 and 57.0 <= result.requeue_after <= 63.0
    else:
        assert result.requeue_after == 60.0
    # Within the interval the object is skipped until the same jittered moment.
    again = git.reconcile({**obj, "status": result.status})
    assert again.requeue_after == pytest.approx(expected)


def test_many_sources_on_one_interval_spread_out(tmp_path: Path) -> None:
    git = _git(tmp_path, 0.05, seed=1)
    polls = {round(git.next_interval(60.0), 3) for _ in range(1000)}
    assert len(polls) > 900
    assert min(polls) >= 57.0 and max(polls) <= 63.0
