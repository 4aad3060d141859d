"""Selectors: Kubernetes label selectors (`matchLabels`, `matchExpressions`) and Cartographer's
field terms (`selectorMatchFields`, on an object's fields by JSONPath).

Every term of a selector must hold. Below both the product's blueprint selection
(`chains/selection.best_matches`: the most specific full match wins) and the simulated API
server's ClusterRole aggregation, so the two match labels by one implementation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.model.errors import ReconcilerError
from reconciler.model.jsonpath import JSONPathError, PathNotFoundError, evaluate
from reconciler.model.objects import labels_of


class SelectorError(ReconcilerError):
    """A selector could not be evaluated (for example an invalid field path)."""

    def __init__(self, index: int, message: str) -> None:
        self.index = index
        super().__init__(message)


@dataclass(frozen=True)
class Selector:
    labels: Mapping[str, str] = field(default_factory=dict)
    expressions: Sequence[Mapping[str, Any]] = ()
    fields: Sequence[Mapping[str, Any]] = ()

    @property
    def size(self) -> int:
        return len(self.labels) + len(self.expressions) + len(self.fields)

    @classmethod
    def of_blueprint(cls, spec: Mapping[str, Any]) -> Selector:
        return cls(
            labels={str(k): str(v) for k, v in (spec.get("selector") or {}).items()},
            expressions=tuple(spec.get("selectorMatchExpressions") or ()),
            fields=tuple(spec.get("selectorMatchFields") or ()),
        )

    @classmethod
    def of_option(cls, selector: Mapping[str, Any]) -> Selector:
        return cls(
            labels={str(k): str(v) for k, v in (selector.get("matchLabels") or {}).items()},
            expressions=tuple(selector.get("matchExpressions") or ()),
            fields=tuple(selector.get("matchFields") or ()),
        )


def requirement_holds(value_present: bool, value: Any, req: Mapping[str, Any]) -> bool:
    """One In / NotIn / Exists / DoesNotExist requirement, on a label or a field's value."""
    operator = req.get("operator")
    values = [str(v) for v in req.get("values") or []]
    if operator == "Exists":
        return value_present
    if operator == "DoesNotExist":
        return not value_present
    if operator == "In":
        return value_present and display(value) in values
    if operator == "NotIn":
        return not value_present or display(value) not in values
    return False


def display(value: Any) -> str:
    """A value as Cartographer prints it in matches and messages (Go's %v for scalars)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def matches(selector: Selector, owner: Mapping[str, Any], index: int = 0) -> bool:
    labels = labels_of(owner)
    if any(labels.get(k) != v for k, v in selector.labels.items()):
        return False
    for req in selector.expressions:
        key = str(req.get("key"))
        if not requirement_holds(key in labels, labels.get(key), req):
            return False
    for req in selector.fields:
        key = str(req.get("key"))
        try:
            value = evaluate(key, owner)
            present = value is not None
        except PathNotFoundError:
            value, present = None, False
        except JSONPathError as exc:
            raise SelectorError(index, f"failed to evaluate selector matchFields: unable to "
                                       f"match field requirement with key [{key}] operator "
                                       f"[{req.get('operator')}] values {req.get('values')}: "
                                       f"{exc}") from exc
        if not requirement_holds(present, value, req):
            return False
    return True
