"""Rendering the outcome of a run for people (table) and machines (json, yaml)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from reconciler.model.conditions import find_condition
from reconciler.model.objects import Obj, name_of, namespace_of, status_of


def owner_ready(owner: Mapping[str, Any]) -> tuple[str, str, str]:
    cond = find_condition(status_of(owner).get("conditions"), "Ready")
    if cond is None:
        return "Unknown", "", "not reconciled yet"
    return str(cond.get("status")), str(cond.get("reason") or ""), str(cond.get("message") or "")


def render_json(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=False)


def render_yaml(document: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(document), sort_keys=False, width=120)


def render_table(workloads: Sequence[Obj], summary: str) -> str:
    lines: list[str] = []
    for wl in workloads:
        status, reason, message = owner_ready(wl)
        chain = (status_of(wl).get("supplyChainRef") or {}).get("name", "-")
        lines.append(f"Workload {namespace_of(wl)}/{name_of(wl)}  Ready={status}"
                     f"{' (' + reason + ')' if reason else ''}  supply chain: {chain}")
        if status != "True" and message:
            lines.append(f"  ! {message}")
        rows = []
        for res in status_of(wl).get("resources") or []:
            ref = res.get("stampedRef") or {}
            stamped = f"{ref.get('kind', '-')}/{ref.get('name', '-')}" if ref else "-"
            rc = find_condition(res.get("conditions"), "Ready") or {}
            outputs = "  ".join(
                f"{o.get('name')}={str(o.get('preview', '')).strip()}"
                for o in res.get("outputs") or [])
            rows.append((str(res.get("name")), stamped, str(rc.get("status", "Unknown")),
                         str(rc.get("reason", "")), outputs))
        if rows:
            widths = [max(len(r[i]) for r in rows) for i in range(4)]
            for row in rows:
                cells = [row[i].ljust(widths[i]) for i in range(4)]
                lines.append("  " + "  ".join(cells) + ("  " + row[4] if row[4] else ""))
        lines.append("")
    lines.append(summary)
    return "\n".join(lines)
