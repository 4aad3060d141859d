"""What `simulate` hands back: every object of the ended world and its Workloads, printable as
a user reads them (`-o yaml`): each Workload in full under `workloads` and under `objects`,
never as a YAML alias of the other."""

from __future__ import annotations

from pathlib import Path

import yaml

from reconciler.loader import load_paths
from reconciler.report import render_yaml
from reconciler.simulation import simulate

GREETER = Path(__file__).resolve().parents[2] / "examples" / "greeter"


def test_each_workload_prints_in_full_in_workloads_and_in_objects() -> None:
    result = simulate(load_paths([GREETER / "00-supply-chain.yaml",
                                  GREETER / "00-workload.yaml"]))
    assert result.ready
    names = [w["metadata"]["name"] for w in result.workloads]
    assert names == ["hello"]
    assert [o for o in result.objects if o["kind"] == "Workload"] == result.workloads
    # An alias composes to the very node it names: no Workload node is shared.
    root = yaml.compose(render_yaml(result.document()), Loader=yaml.SafeLoader)
    assert isinstance(root, yaml.MappingNode)
    sections = {key.value: value for key, value in root.value}
    shared = {id(n) for n in sections["workloads"].value} & {
        id(n) for n in sections["objects"].value}
    assert not shared
