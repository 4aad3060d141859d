"""`fieldsets.item_step` writes a string merge key's `k:` step itself (not through the JSON
encoder's Python layer): the step must stay the encoder's text exactly, for every string (it is
stored in managedFields and matched against the steps other writers stored)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reconciler.model.fieldsets import find_item, item_step

VALUES: list[Any] = ["app", "", "with \"quotes\" and \\ backslash", "tab\tnew\nline\x00\x1f",
                     "ünïcødé ✓ 𝄞", "\ud800", "</script>", 8080, 1.5, True, None, "80"]


@pytest.mark.parametrize("value", VALUES)
def test_the_step_is_the_json_encoders_text(value: Any) -> None:
    expected = "k:" + json.dumps({"name": value}, separators=(",", ":"))
    assert item_step("name", value) == expected
    assert json.loads(item_step("name", value)[2:]) == {"name": value}


def test_items_are_found_by_their_step() -> None:
    items = [{"name": v} for v in VALUES if isinstance(v, str) and v != "\ud800"]
    for index, item in enumerate(items):
        assert find_item(items, item_step("name", item["name"])) == index
