"""Finding kuttl tests: suite files, test folders, folders of them, and setup folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.kuttl.suite import DEFAULT_TIMEOUT, SuiteError, discover, namespace_for
from tests.unit.kuttl_helpers import CONFIGMAP, write_tree

ASSERT = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n"
CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets}
  versions: [{name: v1, served: true, storage: true}]
"""


def _test(prefix: str) -> dict[str, str]:
    return {f"{prefix}/00-configmap.yaml": CONFIGMAP, f"{prefix}/00-assert.yaml": ASSERT}


@pytest.mark.parametrize(
    ("files", "path", "names"),
    [
        (_test("group/one"), "group/one", ["group/one"]),
        ({**_test("group/one"), **_test("group/two")}, "group", ["group/one", "group/two"]),
        ({**_test("root/a/one"), **_test("root/b/two")}, "root", ["root/a/one", "root/b/two"]),
        ({**_test("tests/kuttl/group/one"),
          "kuttl-test.yaml": "apiVersion: kuttl.dev/v1beta1\nkind: TestSuite\n"
                             "testDirs: [tests/kuttl/group]\n"}, ".", ["group/one"]),
        ({**_test("group/one"), **_test("other/two"),
          "kuttl-test.yaml": "apiVersion: kuttl.dev/v1beta1\nkind: TestSuite\n"
                             "testDirs: [./tests/kuttl/group]\n"}, ".", ["group/one"]),
    ],
    ids=["test-folder", "folder-of-tests", "recursive", "suite-testdirs",
         "suite-path-with-leading-folders-dropped"],
)
def test_discover_names_tests_by_group(
    tmp_path: Path, files: dict[str, str], path: str, names: list[str]
) -> None:
    write_tree(tmp_path, files)
    assert [c.name for c in discover([tmp_path / path])] == names


def test_suite_timeout_and_override(tmp_path: Path) -> None:
    write_tree(tmp_path, {**_test("g/one"), "kuttl-test.yaml":
                          "apiVersion: kuttl.dev/v1beta1\nkind: TestSuite\ntestDirs: [g]\n"
                          "timeout: 7\n"})
    assert discover([tmp_path])[0].timeout == 7
    assert discover([tmp_path], timeout=3)[0].timeout == 3
    write_tree(tmp_path / "bare", _test("g/one"))
    assert discover([tmp_path / "bare" / "g"])[0].timeout == DEFAULT_TIMEOUT


def test_suite_setup_folders_missing_are_skipped_and_crds_beside_stand_in(tmp_path: Path) -> None:
    write_tree(tmp_path, {**_test("g/one"), "test-crds/widgets.yaml": CRD,
                          "kuttl-test.yaml": "apiVersion: kuttl.dev/v1beta1\nkind: TestSuite\n"
                                             "testDirs: [g]\ncrdDir: config/crd/bases\n"
                                             "manifestDirs: [tests/resources/crds]\n"})
    case = discover([tmp_path])[0]
    assert [o.obj["kind"] for o in case.setup] == ["CustomResourceDefinition"]


def test_suite_manifest_dir_that_exists_is_loaded(tmp_path: Path) -> None:
    write_tree(tmp_path, {**_test("g/one"), "manifests/cm.yaml": CONFIGMAP,
                          "kuttl-test.yaml": "apiVersion: kuttl.dev/v1beta1\nkind: TestSuite\n"
                                             "testDirs: [g]\nmanifestDirs: [manifests]\n"})
    case = discover([tmp_path])[0]
    assert [o.obj["metadata"]["name"] for o in case.setup] == ["settings"]


@pytest.mark.parametrize(
    ("files", "path", "message"),
    [
        ({}, "missing", "no such file or folder"),
        ({"empty/readme.yaml": CONFIGMAP}, "empty", "no kuttl tests found"),
        ({"kuttl-test.yaml": "apiVersion: kuttl.dev/v1beta1\nkind: TestSuite\n"
                             "testDirs: [nowhere]\n"}, ".", "none of the testDirs"),
        ({"kuttl-test.yaml": "apiVersion: kuttl.dev/v1beta1\nkind: TestSuite\ntimeout: soon\n"},
         ".", "timeout"),
        ({"kuttl-test.yaml": "kind: [\n"}, ".", "invalid YAML"),
        ({"kuttl-test.yaml": "apiVersion: v1\nkind: ConfigMap\n"}, ".", "one object of kind "
                                                                        "TestSuite"),
    ],
    ids=["missing-path", "no-tests", "no-testdirs", "bad-timeout", "bad-yaml", "not-a-suite"],
)
def test_unusable_input_raises_suite_error(
    tmp_path: Path, files: dict[str, str], path: str, message: str
) -> None:
    write_tree(tmp_path, files)
    with pytest.raises(SuiteError, match=message):
        discover([tmp_path / path])


@pytest.mark.parametrize(
    "name", ["supplychain/workload-status", "a/" + "very-long-name-" * 8, "Odd_Name/x.y"])
def test_namespace_for_is_a_stable_dns_label(name: str) -> None:
    namespace = namespace_for(name)
    assert namespace == namespace_for(name)
    assert namespace.startswith("kuttl-test-")
    assert len(namespace) <= 63
    assert all(c.islower() or c.isdigit() or c == "-" for c in namespace)
    assert not namespace.endswith("-")
