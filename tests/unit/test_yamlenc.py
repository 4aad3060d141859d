"""yamlenc: byte-identical yaml.v3 output, and Cartographer's output digest and preview."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from reconciler.chains.yamlenc import (
    PREVIEW_CHARACTER_LIMIT,
    YAMLEncodeError,
    digest,
    encode,
    go_float_g,
    preview,
)
from tests.conftest import SHARED

KUTTL = SHARED / "conformance" / "cartographer-kuttl" / "supplychain" / "workload-status"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("three", "three\n", id="plain-string"),
        pytest.param("5", '"5"\n', id="int-looking-string"),
        pytest.param("1.0", '"1.0"\n', id="float-looking-string"),
        pytest.param("true", '"true"\n', id="bool-looking-string"),
        pytest.param("yes", '"yes"\n', id="yaml11-bool-string"),
        pytest.param("null", '"null"\n', id="null-looking-string"),
        pytest.param("", '""\n', id="empty-string"),
        pytest.param("0x1F", '"0x1F"\n', id="hex-looking-string"),
        pytest.param("08", '"08"\n', id="bad-octal-reads-as-float"),
        pytest.param("1:30", '"1:30"\n', id="base60-looking-string"),
        pytest.param("2006-1-2", '"2006-1-2"\n', id="timestamp-looking-string"),
        pytest.param("2006-13-02", "2006-13-02\n", id="impossible-date-stays-plain"),
        pytest.param("1e400", "1e400\n", id="float-overflow-stays-plain"),
        pytest.param("-inf", "-inf\n", id="go-inf-is-not-yaml-inf"),
        pytest.param("a: b", "'a: b'\n", id="colon-space-single-quoted"),
        pytest.param("- a", "'- a'\n", id="dash-space-single-quoted"),
        pytest.param("'q", "'''q'\n", id="leading-quote-doubled"),
        pytest.param("it's", "it's\n", id="inner-quote-plain"),
        pytest.param(" x", "' x'\n", id="leading-space"),
        pytest.param("a\tb", '"a\\tb"\n', id="tab-double-quoted"),
        pytest.param("é", "é\n", id="non-ascii-plain"),
        pytest.param("\U0001f600", '"\\U0001F600"\n', id="astral-escaped"),
        pytest.param("a\nb", "|-\n    a\n    b\n", id="literal-strip"),
        pytest.param("a\n", "|\n    a\n", id="literal-clip"),
        pytest.param("x\n\n", "|+\n    x\n\n", id="literal-keep"),
        pytest.param(" lead\nx", "|4-\n     lead\n    x\n", id="literal-indent-hint"),
        pytest.param(None, "null\n", id="null"),
        pytest.param(True, "true\n", id="bool"),
        pytest.param(5, "5\n", id="int"),
        pytest.param(1.5, "1.5\n", id="float"),
        pytest.param(3.0, "3\n", id="integral-float"),
        pytest.param({}, "{}\n", id="empty-map"),
        pytest.param([], "[]\n", id="empty-list"),
        pytest.param({"a": {}, "b": []}, "a: {}\nb: []\n", id="empty-values"),
        pytest.param({"k": "a\nb\n"}, "k: |\n    a\n    b\n", id="literal-in-map"),
        pytest.param({"a": [1, 2]}, "a:\n    - 1\n    - 2\n", id="list-in-map"),
        pytest.param([{"name": "a", "v": "b"}], "- name: a\n  v: b\n", id="map-in-list"),
        pytest.param({"n": 1}, '"n": 1\n', id="yaml11-bool-key-quoted"),
        pytest.param(
            {"items": [{"name": "a", "spec": {"x": 1}}]},
            "items:\n    - name: a\n      spec:\n        x: 1\n",
            id="map-in-list-in-map",
        ),
        pytest.param([[1, 2], {"a": []}], "- - 1\n  - 2\n- a: []\n", id="list-in-list"),
        pytest.param(
            {"b": 1, "a10": 1, "a2": 1, "a-b": 1, "a_b": 1, "aB": 1},
            "a-b: 1\na_b: 1\na2: 1\na10: 1\naB: 1\nb: 1\n",
            id="natural-key-order",
        ),
        pytest.param({"k" * 129: 1}, "? " + "k" * 129 + "\n: 1\n", id="long-key-complex"),
        pytest.param({"": 1, "5": 2}, '"": 1\n"5": 2\n', id="quoted-keys"),
    ],
)
def test_encode(value: Any, expected: str) -> None:
    assert encode(value) == expected


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        (0.0, "0"),
        (-0.0, "-0"),
        (100.0, "100"),
        (123456.0, "123456"),
        (1e6, "1e+06"),
        (1234567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (1e21, "1e+21"),
        (float("inf"), ".inf"),
        (float("-inf"), "-.inf"),
        (float("nan"), ".nan"),
    ],
)
def test_go_float_g(number: float, expected: str) -> None:
    assert go_float_g(number) == expected


@pytest.mark.parametrize(
    ("value", "json_numbers", "expected"),
    [
        (1000000, False, "1000000\n"),
        (1000000, True, "1e+06\n"),
        ({"replicas": 3}, True, "replicas: 3\n"),
    ],
)
def test_encode_json_numbers(value: Any, json_numbers: bool, expected: str) -> None:
    assert encode(value, json_numbers=json_numbers) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("three", "sha256:f6936912184481f5edd4c304ce27c5a1a827804fc7f329f43d273b8621870776"),
        ("5", "sha256:11fd182657d58787e0e5b61c5da79195f8715fef7f957b9cdba2d8a581b2ca33"),
        ("knitting", "sha256:ccea367d03c124f9594e3ba0aa97e533c35a47694f62757e4dce79039ca361d7"),
    ],
)
def test_digest_vectors(value: Any, expected: str) -> None:
    assert digest(value) == expected


def _load_all(name: str) -> list[Any]:
    with (KUTTL / name).open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


def _kuttl_revision_case() -> tuple[Any, dict[str, Any]]:
    """The `revision` output of `source-provider-first` in Cartographer's workload-status e2e."""
    templates = _load_all("00-templates.yaml")
    template = next(
        t for t in templates if t["metadata"]["name"] == "example-first---workload-status"
    )
    workload = next(d for d in _load_all("02-assert.yaml") if d["kind"] == "Workload")
    resource = next(
        r for r in workload["status"]["resources"] if r["name"] == "source-provider-first"
    )
    output = next(o for o in resource["outputs"] if o["name"] == "revision")
    return template["spec"]["template"]["spec"]["value"], output


@pytest.mark.skipif(not KUTTL.exists(), reason="Cartographer conformance fixtures not present")
@pytest.mark.parametrize("field", ["preview", "digest"])
def test_cartographer_e2e_revision_output(field: str) -> None:
    value, output = _kuttl_revision_case()
    produced = {"preview": preview, "digest": digest}[field](value)
    assert produced == output[field]
    assert (
        output["digest"]
        == "sha256:868a6f6b23762ce221f64bee95aacb0d431b6f0900bb2d23cce6f1f02224a56a"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("three", "three\n"),
        ("x" * 2000, "x" * PREVIEW_CHARACTER_LIMIT),
        # A two-byte character split by the byte limit becomes one U+FFFD per stray byte.
        ("x" * 1023 + "é", "x" * 1023 + "\ufffd"),
    ],
)
def test_preview_truncates_bytes(value: str, expected: str) -> None:
    assert preview(value) == expected


@pytest.mark.parametrize(
    "value",
    [object(), {"k": {1, 2}}, [b"bytes"]],
    ids=["object", "set-in-map", "bytes-in-list"],
)
def test_encode_rejects_non_json_data(value: Any) -> None:
    with pytest.raises(YAMLEncodeError):
        encode(value)
