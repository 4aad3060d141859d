"""Params precedence: template default < blueprint < resource < owner.

A blueprint or resource `value` (as opposed to a `default`) is protected: the owner cannot
override it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def resolve_params(
    template_defaults: Mapping[str, Any],
    blueprint_params: Iterable[Mapping[str, Any]],
    resource_params: Iterable[Mapping[str, Any]],
    owner_params: Iterable[Mapping[str, Any]],
) -> dict[str, Any]:
    params = dict(template_defaults)
    protected: dict[str, bool] = {}
    for layer in (blueprint_params, resource_params):
        for param in layer:
            name = str(param.get("name"))
            if "value" in param:
                params[name] = param["value"]
                protected[name] = True
            else:
                params[name] = param.get("default")
                protected[name] = False
    for param in owner_params:
        name = str(param.get("name"))
        if not protected.get(name, False):
            params[name] = param.get("value")
    return params
