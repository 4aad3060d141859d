"""Cartographer's own kuttl tests (the supply chain and delivery sample) through `reconciler test`.

`templates-ytt` is expected to fail: ytt is not shipped, and the failure must be the clear
`TemplateStampFailure` condition pointing at the supported template languages.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import SHARED, CliResult

SUITE = SHARED / "conformance" / "cartographer-kuttl"
PASSING = [
    "supplychain/CRDs", "supplychain/immutables", "supplychain/options",
    "supplychain/params-supply-chain", "supplychain/templates-consume-output-of-components",
    "supplychain/workload-no-supply-chain", "supplychain/workload-status",
    "delivery/deliverable", "delivery/deploy-w-bad-match", "delivery/options",
]

pytestmark = pytest.mark.skipif(not SUITE.is_dir(), reason=f"{SUITE} is not present")


def _run(cli: Callable[..., CliResult], test: str) -> CliResult:
    return cli("test", "--manifest-dir", str(SUITE / "test-crds"), str(SUITE / test))


@pytest.mark.parametrize("test", PASSING)
def test_cartographer_kuttl_passes(cli: Callable[..., CliResult], test: str) -> None:
    result = _run(cli, test)
    assert result.code == 0, result.stdout + result.stderr


def test_ytt_fails_with_a_clear_condition(cli: Callable[..., CliResult]) -> None:
    result = _run(cli, "supplychain/templates-ytt")
    assert result.code == 1
    assert "TemplateStampFailure" in result.stdout
    assert "ytt templates are not supported" in result.stdout
