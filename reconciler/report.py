"""Rendering the outcome of a run for people (table) and machines (json, yaml).

An owner's path is shown stage by stage, in supply-chain order (`stages`): the template that ran,
the object it stamped and that object's health, the stage's inputs and outputs (revision, image,
URL, config), and, for a stage that is not healthy, the last logs of its failed Tekton TaskRun
(`failed_run_logs`). The logs are what the simulated Tekton keeps in the TaskRun's annotation
`simulator.reconciler.dev/logs` (a JSON object {step: text}); they are read from the objects the
Backend lists, so this module knows nothing of the simulator but that annotation's name.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from reconciler.model.conditions import find_condition
from reconciler.model.objects import Obj, meta, name_of, namespace_of, status_of
from reconciler.model.terminal import printable

LOGS_ANNOTATION: Final = "simulator.reconciler.dev/logs"
"""Where the simulated Tekton keeps a TaskRun's step logs: JSON {step name: tail of output}."""
OUTPUT_WIDTH: Final = 160
"""An output's preview is cut to this many characters in text output (JSON keeps it whole)."""
LOG_LINES: Final = 20
"""The last lines of each failed step's log that text output shows."""
_LOG_LINE_WIDTH: Final = 300


def owner_ready(owner: Mapping[str, Any]) -> tuple[str, str, str]:
    cond = find_condition(status_of(owner).get("conditions"), "Ready")
    if cond is None:
        return "Unknown", "", "not reconciled yet"
    return str(cond.get("status")), str(cond.get("reason") or ""), str(cond.get("message") or "")


@dataclass(frozen=True)
class StepLog:
    step: str
    text: str
    exit_code: int | None = None


@dataclass(frozen=True)
class RunLogs:
    """The logs of one failed TaskRun: its steps in the order they ran."""

    run: str
    """`TaskRun/<namespace>/<name>`."""
    steps: tuple[StepLog, ...]


@dataclass(frozen=True)
class Stage:
    """One resource of an owner's supply chain or delivery, from its `status.resources[]`."""

    name: str
    template: str
    """`ClusterSourceTemplate/source-template`, or '' before the first stamp."""
    stamped: Mapping[str, Any]
    """The entry's `stampedRef` (apiVersion, kind, name, namespace); empty before a stamp."""
    status: str
    reason: str
    message: str
    inputs: tuple[str, ...]
    outputs: dict[str, str] = field(default_factory=dict)
    logs: RunLogs | None = None

    @property
    def stamped_title(self) -> str:
        if not self.stamped:
            return "-"
        ns = self.stamped.get("namespace")
        return f"{self.stamped.get('kind')}/{ns + '/' if ns else ''}{self.stamped.get('name')}"

    @property
    def healthy(self) -> bool:
        return self.status == "True"

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"name": self.name, "template": self.template,
                               "stamped": self.stamped_title, "ready": self.status,
                               "reason": self.reason, "inputs": list(self.inputs),
                               "outputs": dict(self.outputs)}
        if self.message:
            doc["message"] = self.message
        if self.logs is not None:
            doc["logs"] = {"run": self.logs.run,
                           "steps": [{"step": s.step, "exitCode": s.exit_code, "text": s.text}
                                     for s in self.logs.steps]}
        return doc


def stages(owner: Mapping[str, Any], objects: Iterable[Obj] = ()) -> list[Stage]:
    """The stages of a Workload or Deliverable in supply-chain order, from its status; with the
    cluster's `objects`, each unhealthy stage carries the logs of its newest failed TaskRun."""
    pool = list(objects)
    found: list[Stage] = []
    for res in status_of(owner).get("resources") or []:
        if not isinstance(res, Mapping):
            continue
        ref = res.get("stampedRef") if isinstance(res.get("stampedRef"), Mapping) else {}
        template = res.get("templateRef") if isinstance(res.get("templateRef"), Mapping) else {}
        ready = find_condition(res.get("conditions"), "Ready") or {}
        status = str(ready.get("status") or "Unknown")
        inputs = tuple(str(i.get("name")) for i in res.get("inputs") or []
                       if isinstance(i, Mapping))
        outputs = {str(o.get("name")): str(o.get("preview", "")).strip()
                   for o in res.get("outputs") or [] if isinstance(o, Mapping)}
        stage = Stage(str(res.get("name")),
                      f"{template.get('kind')}/{template.get('name')}" if template else "",
                      dict(ref or {}), status, str(ready.get("reason") or ""),
                      str(ready.get("message") or ""), inputs, outputs)
        if status == "False" and pool and ref:
            logs = failed_run_logs(_stamped_object(ref, pool), pool)
            if logs is not None:
                stage = Stage(stage.name, stage.template, stage.stamped, stage.status,
                              stage.reason, stage.message, stage.inputs, stage.outputs, logs)
        found.append(stage)
    return found


def _stamped_object(ref: Mapping[str, Any], objects: Sequence[Obj]) -> Obj | None:
    for obj in objects:
        if (obj.get("kind") == ref.get("kind") and name_of(obj) == ref.get("name")
                and namespace_of(obj) == str(ref.get("namespace") or "")
                and obj.get("apiVersion") == ref.get("apiVersion")):
            return obj
    return None


def failed_run_logs(stamped: Obj | None, objects: Sequence[Obj]) -> RunLogs | None:
    """The logs of the newest failed TaskRun at or below `stamped` (itself, or what it owns:
    a Runnable's PipelineRuns and their TaskRuns); None when there is none or it kept no logs."""
    if stamped is None:
        return None
    owned: dict[str, list[Obj]] = {}
    for obj in objects:
        for ref in meta(obj).get("ownerReferences") or []:
            if isinstance(ref, Mapping) and ref.get("uid"):
                owned.setdefault(str(ref["uid"]), []).append(obj)
    below: list[Obj] = []
    pending, seen = [stamped], set()
    while pending:
        obj = pending.pop()
        uid = str(meta(obj).get("uid") or "")
        if uid in seen:
            continue
        seen.add(uid)
        below.append(obj)
        pending.extend(owned.get(uid, []) if uid else [])
    failed = [o for o in below if o.get("kind") == "TaskRun" and _succeeded(o) == "False"
              and LOGS_ANNOTATION in (meta(o).get("annotations") or {})]
    if not failed:
        return None
    run = max(failed, key=lambda o: (str(meta(o).get("creationTimestamp") or ""),
                                     int(meta(o).get("resourceVersion") or 0)
                                     if str(meta(o).get("resourceVersion") or "").isdigit()
                                     else 0, name_of(o)))
    try:
        raw = json.loads(str(meta(run)["annotations"][LOGS_ANNOTATION]))
    except ValueError:
        return None
    if not isinstance(raw, Mapping):
        return None
    codes: dict[str, int | None] = {}
    order: list[str] = []
    for step in status_of(run).get("steps") or []:
        if isinstance(step, Mapping) and step.get("name"):
            terminated = step.get("terminated")
            code = terminated.get("exitCode") if isinstance(terminated, Mapping) else None
            codes[str(step["name"])] = code if isinstance(code, int) else None
            order.append(str(step["name"]))
    order.extend(str(k) for k in raw if str(k) not in order)
    logs = tuple(StepLog(name, str(raw[name]), codes.get(name)) for name in order if name in raw)
    return RunLogs(f"TaskRun/{namespace_of(run)}/{name_of(run)}", logs)


def _succeeded(obj: Obj) -> str:
    cond = find_condition(status_of(obj).get("conditions"), "Succeeded")
    return str(cond.get("status")) if cond else ""


def one_line(text: str, width: int = OUTPUT_WIDTH) -> str:
    """`text` on one line (newlines shown as ⏎), cut to `width` characters."""
    parts = printable(text).strip().split("\n")
    flat = " ⏎ ".join(part for part in parts if part.strip())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def log_lines(logs: RunLogs, lines: int = LOG_LINES) -> list[str]:
    """Text lines for the failed steps of `logs` (every step when none says how it ended): a
    header per step, then the last `lines` lines of its output."""
    failed = [s for s in logs.steps if s.exit_code not in (0, None)]
    shown = failed or list(logs.steps)
    out: list[str] = []
    for step in shown:
        code = f", exit code {step.exit_code}" if step.exit_code is not None else ""
        out.append(printable(f"logs of {logs.run}, step {step.step}{code}:"))
        tail = printable(step.text).rstrip("\n").split("\n")[-lines:]
        out.extend("  " + _cut(line) for line in tail or ["(no output)"])
    return out


def _cut(line: str) -> str:
    return line if len(line) <= _LOG_LINE_WIDTH else line[: _LOG_LINE_WIDTH - 1] + "…"


def stage_detail_lines(stage: Stage) -> list[str]:
    """What a stage took and made, then why it is not healthy and its failed run's logs."""
    lines: list[str] = []
    if stage.template:
        lines.append(f"template: {stage.template}"
                     + (f"  inputs: {', '.join(stage.inputs)}" if stage.inputs else ""))
    for name, value in stage.outputs.items():
        lines.append(f"{name}: {one_line(value)}")
    if not stage.healthy and stage.message:
        lines.append(f"! {one_line(stage.message, 400)}")
    if stage.logs is not None:
        lines.extend(log_lines(stage.logs))
    return [printable(line) for line in lines]


def render_json(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=False)


def render_yaml(document: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(document), sort_keys=False, width=120)


def render_table(workloads: Sequence[Obj], summary: str, objects: Sequence[Obj] = ()) -> str:
    """Each Workload, then each Deliverable among the cluster's `objects`, with its stages in
    supply-chain order; with `objects`, a failed stage also shows its Tekton logs."""
    lines: list[str] = []
    deliverables = sorted((o for o in objects if o.get("kind") == "Deliverable"
                           and str(o.get("apiVersion", "")).startswith("carto.run/")),
                          key=lambda o: (namespace_of(o), name_of(o)))
    for wl in [*workloads, *deliverables]:
        status, reason, message = owner_ready(wl)
        kind = str(wl.get("kind") or "Workload")
        blueprint = "delivery" if kind == "Deliverable" else "supply chain"
        ref_field = "deliveryRef" if kind == "Deliverable" else "supplyChainRef"
        chain = (status_of(wl).get(ref_field) or {}).get("name", "-")
        lines.append(f"{kind} {namespace_of(wl)}/{name_of(wl)}  Ready={status}"
                     f"{' (' + reason + ')' if reason else ''}  {blueprint}: {chain}")
        if status != "True" and message:
            lines.append(f"  ! {message}")
        found = stages(wl, objects)
        if found:
            rows = [(s.name, s.stamped_title if not s.stamped else
                     f"{s.stamped.get('kind')}/{s.stamped.get('name')}", s.status, s.reason)
                    for s in found]
            widths = [max(len(r[i]) for r in rows) for i in range(4)]
            for stage, row in zip(found, rows, strict=True):
                lines.append("  " + "  ".join(row[i].ljust(widths[i]) for i in range(4)).rstrip())
                lines.extend("      " + detail for detail in stage_detail_lines(stage))
        lines.append("")
    lines.append(summary)
    return printable("\n".join(lines))
