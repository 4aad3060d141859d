"""`KindCache`'s sorted name index: kept in order as objects come and go (watch events, our
own writes, deletions, re-lists) instead of sorted on every `names`/`items`, and sliced by
namespace, including namespaces that are prefixes of others."""

from __future__ import annotations

import random
from typing import Any

from reconciler.backends.informer import ChangeLog, KindCache


def _cm(ns: str, name: str, rv: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"namespace": ns, "name": name, "resourceVersion": str(rv)}}


NAMESPACES = ["a", "a-b", "a.b", "a0", "ab", "b", ""]


def test_the_index_stays_sorted_through_upserts_removals_and_relists() -> None:
    rng = random.Random(14)
    cache = KindCache("", "ConfigMap", ChangeLog())
    model: dict[tuple[str, str], int] = {}
    rv = 0
    for step in range(2000):
        rv += 1
        key = (rng.choice(NAMESPACES), f"n{rng.randrange(40)}")
        if rng.random() < 0.3:
            cache.remove(key, str(rv))
            model.pop(key, None)
        else:
            cache.upsert(_cm(*key, rv))
            model[key] = rv
        if step % 500 == 499:  # a re-list keeping about half
            kept = {k: v for k, v in model.items() if rng.random() < 0.5}
            rv += 1
            extra = {(rng.choice(NAMESPACES), f"new{rv}"): rv}
            model = {**kept, **extra}
            cache.replace([_cm(*k, v) for k, v in model.items()])
        assert cache.names() == sorted(model)
    assert cache.versions() == [(ns, name, str(v)) for (ns, name), v in sorted(model.items())]
    for ns in NAMESPACES:
        assert [(o["metadata"]["namespace"], o["metadata"]["name"])
                for o in cache.items(namespace=ns)] == sorted(k for k in model if k[0] == ns)
    assert len(list(cache.items())) == len(model) == len(cache)


def test_names_is_a_copy_and_an_update_keeps_the_order() -> None:
    cache = KindCache("", "ConfigMap", ChangeLog())
    for name, rv in (("z", 1), ("m", 2), ("a", 3)):
        cache.upsert(_cm("ns", name, rv))
    names = cache.names()
    names.clear()
    assert cache.names() == [("ns", "a"), ("ns", "m"), ("ns", "z")]
    assert cache.upsert(_cm("ns", "m", 9))  # an update: same name, no new entry
    assert cache.names() == [("ns", "a"), ("ns", "m"), ("ns", "z")]
    assert cache.versions()[1] == ("ns", "m", "9")
    assert cache.remove(("ns", "a"), "10")
    assert not cache.upsert(_cm("ns", "a", 4)), "a late event of the deleted object"
    assert cache.names() == [("ns", "m"), ("ns", "z")]


def test_changes_carry_the_labels_their_objects_had_before_or_after() -> None:
    log = ChangeLog()
    seen: list[tuple[str, frozenset[tuple[str, str]] | None]] = []
    log.labelled_listeners.append(
        lambda g, k, ns, name, pairs: seen.append((name, None if pairs is None
                                                   else frozenset(pairs))))
    cache = KindCache("", "ConfigMap", log)

    def cm(name: str, rv: int, **labels: str) -> dict[str, Any]:
        obj = _cm("a", name, rv)
        obj["metadata"]["labels"] = labels
        return obj

    cache.upsert(cm("x", 1, app="one"))
    cache.upsert(cm("x", 2, app="two"))  # relabelled: both the old and the new value
    cache.remove(("a", "x"), "3")  # deleted: the labels it had
    cache.upsert(cm("y", 4, app="y"))
    cache.replace([cm("y", 5, tier="web")])  # a re-list that relabels
    cache.replace([])  # and one that drops it
    assert seen == [(name, frozenset(pairs)) for name, pairs in [
        ("x", {("app", "one")}),
        ("x", {("app", "one"), ("app", "two")}),
        ("x", {("app", "two")}),
        ("y", {("app", "y")}),
        ("y", {("app", "y"), ("tier", "web")}),
        ("y", {("tier", "web")})]]
