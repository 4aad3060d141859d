"""`reconciler run`'s HA flags are refused where they cannot work, before anything starts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conftest import EXAMPLES, CliResult


def test_leader_elect_is_refused_on_the_simulator(cli: Callable[..., CliResult]) -> None:
    done = cli("run", str(EXAMPLES / "greeter"), "--leader-elect")
    assert done.code == 2, done.stderr
    assert "--leader-elect needs --environment kubernetes" in done.stderr


def test_an_invalid_shard_key_is_refused(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    done = cli("run", str(EXAMPLES / "greeter" / "00-supply-chain.yaml"),
               str(EXAMPLES / "greeter" / "00-workload.yaml"), "--shard", "not a label value!",
               "--listen", "127.0.0.1:0", "--artifacts-listen", "127.0.0.1:0")
    assert done.code == 2, done.stderr
    assert "--shard: invalid shard key" in done.stderr
