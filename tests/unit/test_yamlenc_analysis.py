"""The emitter's scalar analysis: the string-method reading of one line of printable ASCII
(`_Analysis._one_ascii_line`, the common output) decides exactly what the character-at-a-time
port of libyaml's `yaml_emitter_analyze_scalar` (`_Analysis._scan`) decides."""

from __future__ import annotations

import itertools
import random

import pytest

from reconciler.chains import yamlenc
from reconciler.chains.yamlenc import _Analysis, encode

FIELDS = ("multiline", "block_plain_allowed", "single_quoted_allowed", "block_allowed")
# Every character either reading treats specially, and two ordinary ones.
TRICKY = " #:-?.,[]{}&*!|>'\"%@`a1"


def _both(text: str) -> tuple[tuple[bool, ...], tuple[bool, ...]]:
    fast = object.__new__(_Analysis)
    fast._one_ascii_line(text)
    scanned = object.__new__(_Analysis)
    scanned._scan(text)
    return (tuple(getattr(fast, f) for f in FIELDS), tuple(getattr(scanned, f) for f in FIELDS))


def test_every_short_text_of_the_tricky_characters_is_read_alike() -> None:
    for length in (1, 2, 3):
        for chars in itertools.product(TRICKY, repeat=length):
            text = "".join(chars)
            fast, scanned = _both(text)
            assert fast == scanned, text


def test_longer_texts_are_read_alike() -> None:
    rng = random.Random(14)
    alphabet = TRICKY + "abcxyz0123456789/=_"
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(4, 24)))
        fast, scanned = _both(text)
        assert fast == scanned, text


@pytest.mark.parametrize(("value", "expected"), [
    ("registry.example.com/app@sha256:abc", "registry.example.com/app@sha256:abc\n"),
    ("main@sha1:0123abcd", "main@sha1:0123abcd\n"),
    ("a: b", "'a: b'\n"),
    ("key:", "'key:'\n"),
    (" leading", "' leading'\n"),
    ("trailing ", "'trailing '\n"),
    ("x #y", "'x #y'\n"),
    ("- item", "'- item'\n"),
    ("-item", "-item\n"),
    ("---", "'---'\n"),
    ("tab\there", "\"tab\\there\"\n"),
])
def test_one_line_strings_encode_as_yaml_v3_does(value: str, expected: str) -> None:
    assert encode(value) == expected


def test_summarize_remembers_short_strings_only() -> None:
    """An output string is remembered (4,096 at most) only up to 2,048 characters, so what the
    cache can hold is bounded whatever outputs templates produce; the result is the same."""
    short, long = "image@sha256:" + "a" * 64, "x" * 100_000
    yamlenc._summarize_text.cache_clear()
    assert yamlenc.summarize(short) == yamlenc.summarize(short)
    assert yamlenc._summarize_text.cache_info().currsize == 1
    shown, digest = yamlenc.summarize(long)
    assert yamlenc._summarize_text.cache_info().currsize == 1
    assert len(shown.encode()) == yamlenc.PREVIEW_CHARACTER_LIMIT
    assert digest == yamlenc.digest(long) and digest.startswith("sha256:")
