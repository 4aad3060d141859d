"""`reconciler tree`: the paved path's Workload and what it stamped, from PATHS or a saved state."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conftest import EXAMPLES, CliResult, GitRepo

PAVED = EXAMPLES / "paved-path"


def test_tree_of_the_paved_path(make_repo: Callable[..., GitRepo], cli: Callable[..., CliResult],
                                tmp_path: Path) -> None:
    files = {p.name: p.read_text() for p in (PAVED / "developer" / "app").iterdir()}
    repo = make_repo("band-service", files)
    state = tmp_path / "state.json"
    ran = cli("tree", str(PAVED), "--state", str(state), env={"APP_REPO_URL": repo.url})
    assert ran.code == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert lines[0] == "Workload/default/band-service  Ready=True (Ready)  supply chain: web"
    # The stamped objects in supply-chain order, each named after its stage.
    assert [line[4:] for line in lines[1:] if line[:4] in ("├── ", "└── ")] == [
        "source-provider: GitRepository/default/band-service  Ready=True (Succeeded)",
        "image-builder: Image/default/band-service  Ready=True",
        "deployer: Service/default/band-service  Ready=True",
    ]
    assert [line.split("│")[-1].strip() for line in lines if "template: " in line] == [
        "template: ClusterSourceTemplate/git-source",
        "template: ClusterImageTemplate/buildpacks-image  inputs: source-provider",
        "template: ClusterTemplate/knative-deploy  inputs: image-builder",
    ]
    saved = cli("tree", "--state", str(state), "-o", "json")
    assert saved.code == 0, saved.stderr
    owners = saved.json()["owners"]
    assert [o["object"] for o in owners] == ["Workload/default/band-service"]
    assert len(owners[0]["children"]) == 3


def test_tree_needs_paths_or_state(cli: Callable[..., CliResult]) -> None:
    result = cli("tree")
    assert result.code == 2
    assert "--state" in result.stderr
