"""Reading a kuttl test folder: steps by numeric prefix, file roles, TestStep and TestAssert."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.kuttl.steps import DeleteRef, load_steps
from reconciler.model.errors import InputError
from tests.unit.kuttl_helpers import CONFIGMAP, write_tree

ASSERT = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n"


def test_files_group_into_ordered_steps_by_prefix_and_role(tmp_path: Path) -> None:
    write_tree(tmp_path, {
        "00-configmap.yaml": CONFIGMAP,
        "00-assert.yaml": ASSERT,
        "1-second.yaml": CONFIGMAP.replace("settings", "second"),
        "01-assert-extra.yaml": ASSERT,
        "01-errors.yaml": ASSERT,
        "10-assert.yaml": ASSERT,
        "README.md": "not a step",
        "notes.yaml": CONFIGMAP,
        "02-dotted.name.yaml": CONFIGMAP,
    })
    steps = load_steps(tmp_path)
    assert [(s.index, s.label) for s in steps] == [(0, "00-configmap"), (1, "01-second"),
                                                   (10, "10-assert")]
    first, second, last = steps
    assert [o.obj["metadata"]["name"] for o in first.applies] == ["settings"]
    assert len(first.asserts) == 1 and not first.errors
    assert [o.obj["metadata"]["name"] for o in second.applies] == ["second"]
    assert len(second.asserts) == 1 and len(second.errors) == 1
    assert not last.applies and len(last.asserts) == 1


def test_assert_objects_are_partial_and_carry_their_line(tmp_path: Path) -> None:
    write_tree(tmp_path, {"00-assert.yaml": "# comment\n---\napiVersion: v1\nkind: ConfigMap\n"
                                            "data:\n  a: b\n"})
    (expectation,) = load_steps(tmp_path)[0].asserts
    assert expectation.obj == {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "b"}}
    assert expectation.source.endswith("00-assert.yaml:3")
    assert expectation.label == "any ConfigMap"


def test_test_step_and_test_assert_are_honoured(tmp_path: Path) -> None:
    write_tree(tmp_path, {
        "00-step.yaml": """
            apiVersion: kuttl.dev/v1beta1
            kind: TestStep
            delete:
              - apiVersion: v1
                kind: ConfigMap
                name: old
              - apiVersion: v1
                kind: ConfigMap
                labels: {stale: "yes"}
            ---
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: Bad_Name_on_line_20
        """.replace("Bad_Name_on_line_20", "fresh"),
        "00-assert.yaml": "apiVersion: kuttl.dev/v1beta1\nkind: TestAssert\ntimeout: 5\n",
    })
    (step,) = load_steps(tmp_path)
    assert step.deletes == [DeleteRef("v1", "ConfigMap", "old"),
                            DeleteRef("v1", "ConfigMap", labels={"stale": "yes"})]
    assert [o.obj["metadata"]["name"] for o in step.applies] == ["fresh"]
    # The TestStep document is blanked, not removed: line numbers of the rest stay true.
    assert step.applies[0].line == 11
    assert step.timeout == 5 and not step.asserts


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"00-bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n"},
         "00-bad.yaml:4.*metadata.name"),
        ({"00-bad.yaml": "apiVersion: carto.run/v1alpha1\nkind: Workload\nmetadata:\n  name: w\n"
                         "spec:\n  soruce: {}\n"}, "00-bad.yaml:6.*spec.soruce"),
        ({"00-assert.yaml": "kind: ConfigMap\n"}, "00-assert.yaml:1: field apiVersion"),
        ({"00-assert.yaml": "a: [\n"}, "invalid YAML"),
        ({"00-step.yaml": "apiVersion: kuttl.dev/v1beta1\nkind: TestStep\ncommands:\n"
                          "  - command: kubectl get pods\n"}, "commands cannot run"),
        ({"00-assert.yaml": "apiVersion: kuttl.dev/v1beta1\nkind: TestAssert\ntimeout: -1\n"},
         "timeout: must be a positive number"),
        ({"00-step.yaml": "apiVersion: kuttl.dev/v1beta1\nkind: TestStep\ndelete:\n"
                          "  - name: x\n"}, r"delete\[0\]: apiVersion and kind are required"),
    ],
    ids=["invalid-name", "unknown-field", "assert-without-apiversion", "bad-yaml",
         "step-commands", "bad-timeout", "delete-without-kind"],
)
def test_unusable_step_files_raise_input_errors_naming_file_and_field(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    write_tree(tmp_path, files)
    with pytest.raises(InputError, match=message):
        load_steps(tmp_path)
