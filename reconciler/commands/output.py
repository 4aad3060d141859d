"""The one printer of the cluster commands: `-o table|wide|json|yaml|name`, the same for `get`,
`events`, `reconcile`, `suspend` and `resume`.

A table has kubectl's shape (upper-case headers, columns padded by two spaces, NAMESPACE first
with `-A`); `wide` adds columns; `json`/`yaml` print one object as itself and several as a `v1`
`List`, as kubectl does; `name` prints `kind.group/name` per line. Every cell is one line, cut at
`CELL_WIDTH` characters (a condition message can be long and hold newlines), its control
characters replaced (`model.terminal.printable`: a name or message must not drive the terminal);
`json`/`yaml` print the values exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from reconciler.model.annotations import SUSPEND_ANNOTATION
from reconciler.model.conditions import find_condition
from reconciler.model.objects import Obj, meta, spec_of, status_of
from reconciler.model.terminal import printable

FORMATS = ("table", "wide", "json", "yaml", "name")
CELL_WIDTH = 120


@dataclass(frozen=True)
class Column:
    header: str
    value: Callable[[Obj], str]
    wide: bool = False


def one_line(value: Any, width: int = CELL_WIDTH) -> str:
    """`value` as one table cell: whitespace runs (newlines too) as one space, control
    characters replaced, cut at `width`."""
    text = printable(" ".join(str(value if value is not None else "").split()))
    return text if len(text) <= width else text[: width - 1] + "…"


def age(timestamp: Any, now: datetime | None = None) -> str:
    """kubectl's short duration since an RFC 3339 time: 42s, 5m, 3h, 2d ('<unknown>' when
    absent or unreadable)."""
    if not isinstance(timestamp, str) or not timestamp:
        return "<unknown>"
    try:
        then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return "<unknown>"
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    seconds = max(0, int(((now or datetime.now(UTC)) - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit != "m" else 1):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def ready(obj: Obj) -> tuple[str, str, str]:
    """(status, reason, message) of the Ready condition; ('Unknown', '', '') without one."""
    cond = find_condition(status_of(obj).get("conditions"), "Ready")
    if cond is None:
        return "Unknown", "", ""
    return (str(cond.get("status") or "Unknown"), str(cond.get("reason") or ""),
            str(cond.get("message") or ""))


def suspended(obj: Obj) -> bool:
    if spec_of(obj).get("suspend") is True:
        return True
    annotations = meta(obj).get("annotations")
    return isinstance(annotations, Mapping) and str(
        annotations.get(SUSPEND_ANNOTATION, "")).lower() == "true"


def _revision(obj: Obj) -> str:
    status = status_of(obj)
    artifact = status.get("artifact")
    if isinstance(artifact, Mapping) and artifact.get("revision"):
        return str(artifact["revision"])
    return str(status.get("lastAppliedRevision") or "")


def _blueprint(field: str) -> Callable[[Obj], str]:
    def value(obj: Obj) -> str:
        ref = status_of(obj).get(field)
        return str(ref.get("name") or "") if isinstance(ref, Mapping) else ""
    return value


def _source(obj: Obj) -> str:
    source = spec_of(obj).get("source")
    if not isinstance(source, Mapping):
        return ""
    git = source.get("git")
    if isinstance(git, Mapping):
        ref = git.get("ref") if isinstance(git.get("ref"), Mapping) else {}
        branch = (ref or {}).get("branch") or (ref or {}).get("tag") or ""
        return f"{git.get('url', '')}{'@' + str(branch) if branch else ''}"
    return str(source.get("image") or "")


_NAME = Column("NAME", lambda o: str(meta(o).get("name", "")))
_READY = Column("READY", lambda o: ready(o)[0])
_REASON = Column("REASON", lambda o: ready(o)[1])
_MESSAGE = Column("MESSAGE", lambda o: ready(o)[2])
_SUSPENDED = Column("SUSPENDED", lambda o: "True" if suspended(o) else "False")
_AGE = Column("AGE", lambda o: age(meta(o).get("creationTimestamp")))
_REVISION = Column("REVISION", _revision)

COLUMNS: dict[str, tuple[Column, ...]] = {
    "Workload": (_NAME, Column("SOURCE", _source, wide=True),
                 Column("SUPPLY CHAIN", _blueprint("supplyChainRef"), wide=True), _READY,
                 _REASON, _SUSPENDED, _AGE, Column("MESSAGE", _MESSAGE.value, wide=True)),
    "Deliverable": (_NAME, Column("SOURCE", _source, wide=True),
                    Column("DELIVERY", _blueprint("deliveryRef"), wide=True), _READY, _REASON,
                    _SUSPENDED, _AGE, Column("MESSAGE", _MESSAGE.value, wide=True)),
    "GitRepository": (_NAME, Column("URL", lambda o: str(spec_of(o).get("url", "")),
                                    wide=True), _REVISION, _SUSPENDED, _READY, _MESSAGE,
                      Column("AGE", _AGE.value, wide=True)),
    "Kustomization": (_NAME, Column("SOURCE", lambda o: "{kind}/{name}".format_map(
        {"kind": "", "name": "", **(spec_of(o).get("sourceRef") or {})}), wide=True),
                      _REVISION, _SUSPENDED, _READY, _MESSAGE,
                      Column("AGE", _AGE.value, wide=True)),
    "Event": (Column("LAST SEEN", lambda o: age(event_time(o))),
              Column("TYPE", lambda o: str(o.get("type") or "")),
              Column("REASON", lambda o: str(o.get("reason") or "")),
              Column("OBJECT", lambda o: involved(o)),
              Column("SOURCE", lambda o: str((o.get("source") or {}).get("component") or
                                             o.get("reportingComponent") or ""), wide=True),
              Column("COUNT", lambda o: str(o.get("count") or 1), wide=True),
              Column("MESSAGE", lambda o: str(o.get("message") or ""))),
}


def event_time(event: Obj) -> str:
    return str(event.get("lastTimestamp") or event.get("eventTime")
               or event.get("firstTimestamp") or meta(event).get("creationTimestamp") or "")


def involved(event: Obj) -> str:
    ref = event.get("involvedObject") or event.get("regarding") or {}
    return f"{str(ref.get('kind', '')).lower()}/{ref.get('name', '')}"


def name_of_kind(obj: Obj) -> str:
    """kubectl's `-o name`: `workload.carto.run/greeter`, `event/x` for the core group."""
    api_version = str(obj.get("apiVersion", ""))
    group = api_version.split("/")[0] if "/" in api_version else ""
    kind = str(obj.get("kind", "")).lower()
    return f"{kind}.{group}/{meta(obj).get('name', '')}" if group else (
        f"{kind}/{meta(obj).get('name', '')}")


def table(objects: Sequence[Obj], kind: str, wide: bool = False,
          namespaces: bool = False, headers: bool = True) -> str:
    """Rows of `objects` (all of `kind`) under kubectl-style headers, without a trailing
    newline; '' for no objects."""
    columns = [c for c in COLUMNS[kind] if wide or not c.wide]
    if namespaces:
        columns.insert(0, Column("NAMESPACE", lambda o: str(meta(o).get("namespace") or "")))
    rows = [[one_line(c.value(o)) for c in columns] for o in objects]
    if not rows:
        return ""
    shown = ([[c.header for c in columns]] if headers else []) + rows
    widths = [max(len(r[i]) for r in shown) for i in range(len(columns))]
    return "\n".join("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
                     for row in shown)


def document(objects: Sequence[Obj], single: bool) -> Obj:
    if single and len(objects) == 1:
        return objects[0]
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""},
            "items": list(objects)}


def render(objects: Sequence[Obj], kind: str, output: str, *, single: bool = False,
           namespaces: bool = False, headers: bool = True) -> str:
    """`objects` of `kind` in the `output` format (one of FORMATS); `single`: one object was
    asked for by name (json/yaml print it bare)."""
    if output in ("table", "wide"):
        return table(objects, kind, wide=output == "wide", namespaces=namespaces,
                     headers=headers)
    if output == "name":
        return "\n".join(printable(name_of_kind(o)).replace("\n", " ") for o in objects)
    from reconciler.report import render_json, render_yaml

    doc = document(objects, single)
    return render_json(doc) if output == "json" else render_yaml(doc).rstrip("\n")
