"""The cheap size test on every write (`apivalidation._surely_within`) never lets through an
object whose JSON is over the limit: six times its marshal format-0 size bounds its JSON size,
for any JSON-like object, escapes, booleans, nulls and numbers included."""

from __future__ import annotations

import marshal
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from reconciler.model.apivalidation import _surely_within, serialized_size, size_problems
from reconciler.model.limits import Limits

scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
           | st.text(alphabet=st.characters(codec="utf-8")))
json_like = st.recursive(scalars, lambda inner: st.lists(inner, max_size=6)
                         | st.dictionaries(st.text(max_size=8), inner, max_size=6), max_leaves=40)


@given(st.dictionaries(st.text(max_size=8), json_like, max_size=6))
@example({"": None})
@example({"a": [True, False, None] * 20})
@example({"\x00": "\x01\x1f\"\\" * 30})
@example({"n": [-(2**63), 2**200, 1e-300, -1.5e308]})
def test_six_times_marshal_size_bounds_the_json_size(obj: dict[str, Any]) -> None:
    size = serialized_size(obj)
    assert 6 * len(marshal.dumps(obj, 0)) >= size
    assert not _surely_within(obj, size - 1)  # never "within" a limit the JSON exceeds
    limits = Limits(object_bytes=max(size - 1, 0))
    assert size_problems(obj, limits)  # the long way still refuses it
