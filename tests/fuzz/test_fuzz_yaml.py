"""The bounded YAML reader (reconciler/model/yamlsafe.py) and the loader over it: any text or
bytes give documents or a LoadError naming the source, never another exception; what
yaml.safe_dump writes reads back equal; the limits hold for inputs built to break them."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from reconciler.loader import load_paths
from reconciler.model.errors import InputError, LoadError
from reconciler.model.limits import DEFAULT_LIMITS
from reconciler.model.yamlsafe import load_json_bounded, load_yaml, load_yaml_documents

YAMLISH = st.text(st.sampled_from(list("ab:-{}[]&*!|>'\"#%@`,? \n\t.0123456789~\\")),
                  max_size=200)

SCALARS = st.none() | st.booleans() | st.integers(-(2**62), 2**62) | st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=30)
DATA = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1,
            max_size=10), inner, max_size=4), max_leaves=20)


@given(YAMLISH)
@example("&a [*a]")
@example("a: &a [*a, *a]\nb: *a")
@example("!!python/object:os.system x")
@example("? [a]\n: b")
@example("a: 1\na: 2")
@example("[" * 200)
@example("%YAML 1.1\n---\na")
@example("--- !<tag:yaml.org,2002:binary> Zm9v")
@example("a: !!binary |\n  Zm9v")
@example("a: 0x_1")
def test_any_text_reads_or_fails_with_a_load_error(text: str) -> None:
    try:
        documents = load_yaml_documents(text, "fuzz.yaml")
    except LoadError as exc:
        assert "fuzz.yaml" in str(exc)
        return
    for document in documents:
        assert document.line >= 1


@given(st.binary(max_size=200))
@example(b"\xff\xfe")
@example(b"a: \x00")
@example(b"\xef\xbb\xbfa: 1")
def test_any_bytes_read_or_fail_with_a_load_error(data: bytes) -> None:
    with contextlib.suppress(LoadError):
        load_yaml_documents(data, "fuzz.yaml")


@given(DATA)
def test_what_safe_dump_writes_reads_back_equal(data: Any) -> None:
    assert load_yaml(yaml.safe_dump(data), "round.yaml") == data


@given(st.integers(1, 40), st.integers(1, 12))
def test_alias_bombs_are_refused(width: int, depth: int) -> None:
    lines = ["a0: &a0 [x]"]
    for level in range(1, depth + 1):
        refs = ", ".join([f"*a{level - 1}"] * width)
        lines.append(f"a{level}: &a{level} [{refs}]")
    try:
        load_yaml("\n".join(lines), "bomb.yaml")
    except LoadError as exc:
        assert "alias" in str(exc).lower() or "large" in str(exc).lower(), exc
        return
    assert width ** depth <= DEFAULT_LIMITS.yaml_bytes


@given(st.text(st.sampled_from(list('{}[]",:0123456789eE.-+ truefalsn\\u')), max_size=200))
@example("[" * 10_000)
@example('{"a": 1, "a": 2}')
@example("1e999999")
def test_bounded_json_reads_or_fails_with_a_load_error(text: str) -> None:
    with contextlib.suppress(LoadError):
        load_json_bounded(text, "fuzz.json")


@given(YAMLISH)
@example("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${X}}\n")
@example("apiVersion: v1\nkind: ConfigMap\nmetadata: []\n")
@example("apiVersion: [v1]\nkind: ConfigMap\n")
@example("kind: Workload\napiVersion: carto.run/v1alpha1\nmetadata: {name: a}\nspec: 7\n")
def test_the_loader_takes_any_file_or_names_it(text: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "input.yaml"
        path.write_text(text)
        try:
            load_paths([str(path)])
        except InputError as exc:
            assert "input.yaml" in str(exc), exc
