"""`fieldsets.find_item` decodes a `k:` step once and remembers it only when it is short: merge
keys come from objects anyone writes, so a long one must not stay in memory after its object."""

from __future__ import annotations

import json

from reconciler.model import fieldsets
from reconciler.model.fieldsets import find_item, item_step


def test_short_steps_are_remembered_long_ones_decoded_each_time() -> None:
    fieldsets._item_keys.clear()
    short = item_step("name", "app")
    long_name = "x" * (fieldsets._ITEM_KEY_CHARS_MAX + 1)
    long = item_step("name", long_name)
    items = [{"name": "other"}, {"name": "app"}, {"name": long_name}]
    for _ in range(2):
        assert find_item(items, short) == 1
        assert find_item(items, long) == 2
        assert find_item(items, item_step("name", "missing")) is None
    assert short in fieldsets._item_keys and long not in fieldsets._item_keys
    assert fieldsets._item_keys[short] == json.loads(short[2:])
    assert all(len(step) <= fieldsets._ITEM_KEY_CHARS_MAX for step in fieldsets._item_keys)
    assert find_item({"name": "app"}, short) is None  # not a list
