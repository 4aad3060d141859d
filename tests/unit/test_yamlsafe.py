"""The bounded YAML and JSON loaders: what they refuse, with file and line."""

from __future__ import annotations

import pytest

from reconciler.model.errors import LoadError
from reconciler.model.limits import Limits
from reconciler.model.yamlsafe import load_json_bounded, load_yaml, load_yaml_documents


def test_plain_documents_anchors_and_merge_keys_load() -> None:
    docs = load_yaml_documents("a: &x {q: 1}\nb: *x\nc:\n  <<: *x\n  r: 2\n---\n---\nz: 1\n", "f")
    assert [d.data for d in docs] == [{"a": {"q": 1}, "b": {"q": 1}, "c": {"q": 1, "r": 2}},
                                      {"z": 1}]
    assert [d.line for d in docs] == [1, 8]


@pytest.mark.parametrize(
    ("text", "fragment", "line"),
    [
        ("a: 1\nb: 2\na: 3\n", "duplicate key 'a'", 3),
        ("a: x\0y\n", "NUL byte", 1),
        ("a: &a [*a]\n", "contains it", 1),
        ("a: *nope\n", "undefined alias", 1),
        ("a:\n" + "".join("  " * (i + 1) + "b:\n" for i in range(150)), "deeper than", 101),
    ],
)
def test_refused_with_line(text: str, fragment: str, line: int) -> None:
    with pytest.raises(LoadError) as err:
        load_yaml(text, "f.yaml")
    assert fragment in str(err.value) and err.value.line == line


def test_alias_references_are_counted() -> None:
    text = "a: &a x\nb: [" + ",".join(["*a"] * 11) + "]\n"
    with pytest.raises(LoadError, match="more than 10 alias references"):
        load_yaml(text, "f", Limits(yaml_aliases=10))
    assert len(load_yaml(text, "f")["b"]) == 11


def test_alias_depth_counts_once_expanded() -> None:
    inner = "[" * 60 + "]" * 60
    with pytest.raises(LoadError, match="once aliases are expanded"):
        load_yaml(f"a: &a {inner}\nb: {'[' * 50}*a{']' * 50}\n", "f")


def test_bytes_are_decoded_and_checked() -> None:
    assert load_yaml(b"\xef\xbb\xbfa: 1\n", "f") == {"a": 1}
    with pytest.raises(LoadError, match="invalid UTF-8") as err:
        load_yaml(b"a: 1\nb: \xc3\x28\n", "f")
    assert err.value.line == 2
    with pytest.raises(LoadError, match="too large"):
        load_yaml(b"a: " + b"x" * 100, "f", Limits(yaml_bytes=50))


def test_json_bounded() -> None:
    assert load_json_bounded('{"a": [1, {"b": "[[[{{"}]}', "s") == {"a": [1, {"b": "[[[{{"}]}
    bad: list[tuple[str | bytes, str]] = [
        ('{"a":1,"a":2}', "duplicate key"), ("[" * 5000 + "]" * 5000, "deeper"),
        ('{"a": NaN}', "NaN"), ('{"a":\n ]', "invalid JSON"), (b'{"a": "\xff"}', "UTF-8")]
    for text, fragment in bad:
        with pytest.raises(LoadError, match=fragment):
            load_json_bounded(text, "state.json")
    with pytest.raises(LoadError, match="too large"):
        load_json_bounded('"' + "x" * 100 + '"', "s", max_bytes=50)
