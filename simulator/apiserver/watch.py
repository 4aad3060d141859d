"""Watches: newline-delimited `{"type": ..., "object": ...}` events over a chunked response.

`resourceVersion` semantics as kube-apiserver's: unset or "0" starts with ADDED events for
what exists (the "initial events"), a number starts after that version, and one older than the
log keeps is answered 410 Gone (reason Expired) in the stream, as the real server does once the
watch has started. `sendInitialEvents=true` sends the existing objects first and then a BOOKMARK
annotated `k8s.io/initial-events-end`; `allowWatchBookmarks=true` adds periodic BOOKMARKs
carrying the current resourceVersion. `timeoutSeconds` ends the watch (bounded here too).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.model.objects import Obj
from simulator.apiserver.changes import Event
from simulator.apiserver.errors import status_body
from simulator.apiserver.selectors import Matcher
from simulator.apiserver.store import Store, Target

MAX_WATCH_SECONDS = 1800.0
BOOKMARK_SECONDS = 10.0


@dataclass(frozen=True)
class WatchRequest:
    target: Target
    namespace: str | None  # None: every namespace
    matches: Matcher
    resource_version: str
    bookmarks: bool
    initial_events: bool | None
    timeout: float
    render: Callable[[Obj], Any]  # the object as the client asked for it (JSON or a Table)


def stream(store: Store, request: WatchRequest, stopping: Callable[[], bool]) -> Iterator[bytes]:
    source = (request.target.stored.type.group, request.target.stored.type.kind)
    deadline = time.monotonic() + min(max(request.timeout, 1.0), MAX_WATCH_SECONDS)
    rv_text = request.resource_version
    with store.lock:
        store.changes.scan()
        start = store.changes.revision
        initial: list[Obj] = []
        expired = False
        send_initial = request.initial_events if request.initial_events is not None else (
            rv_text in ("", "0"))
        if send_initial:
            objects, start = store.current(request.target, request.namespace)
            initial = [store.served(request.target, o) for o in objects
                       if _wanted(request, o)]
        elif rv_text not in ("", "0"):
            try:
                start = int(rv_text)
            except ValueError:
                start = -1
            expired = start < store.changes.oldest
    if expired:
        yield _line("ERROR", status_body(410, f"too old resource version: {rv_text} "
                                              f"({store.changes.oldest})", "Expired"))
        return
    initial.sort(key=lambda o: int((o.get("metadata") or {}).get("resourceVersion") or 0))
    for obj in initial:
        yield _line("ADDED", request.render(_at_version(obj, request.target.api_version)))
    if request.initial_events:
        yield _bookmark(request, start, initial_end=True)
    last_bookmark = time.monotonic()
    seen = start
    while not stopping():
        now = time.monotonic()
        if now >= deadline:
            return
        with store.lock:
            events = list(store.changes.since(seen))
            if not events:
                store.changes.changed(*source).wait(timeout=min(1.0, deadline - now))
                events = list(store.changes.since(seen))
            current = store.changes.revision
        for event in events:
            seen = max(seen, event.revision)
            if (event.group, event.kind) != source:
                continue
            line = _translate(request, event)
            if line is not None:
                yield line
        seen = max(seen, current)
        if request.bookmarks and time.monotonic() - last_bookmark >= BOOKMARK_SECONDS:
            yield _bookmark(request, seen)
            last_bookmark = time.monotonic()
        elif not events:
            yield b""  # a chance for the writer to notice a client that went away


def _translate(request: WatchRequest, event: Event) -> bytes | None:
    """The event as this watch sees it, as kube's watch cache filters: an object that left the
    selection is DELETED (its previous state at the event's resourceVersion), one that entered
    it is ADDED."""
    view = request.target.view
    obj = view(event.obj)
    if event.type == "DELETED":
        return _line("DELETED", request.render(_at_version(obj, request.target.api_version))) \
            if _wanted(request, obj) else None
    now = _wanted(request, obj)
    before = (_wanted(request, view(event.before)) if event.before is not None
              else now if event.alike else False)
    if now:
        kind = "MODIFIED" if before else "ADDED"
    elif before:
        assert event.before is not None
        obj = view(event.before)
        obj = {**obj, "metadata": {**(obj.get("metadata") or {}),
                                   "resourceVersion": str(event.revision)}}
        kind = "DELETED"
    else:
        return None
    return _line(kind, request.render(_at_version(obj, request.target.api_version)))


def _wanted(request: WatchRequest, obj: Mapping[str, Any]) -> bool:
    namespace = (obj.get("metadata") or {}).get("namespace") or ""
    if request.namespace is not None and request.target.type.namespaced and \
            namespace != request.namespace:
        return False
    return request.matches(obj)


def _at_version(obj: Obj, api_version: str) -> Obj:
    return {**obj, "apiVersion": api_version}


def _bookmark(request: WatchRequest, revision: int, initial_end: bool = False) -> bytes:
    meta: dict[str, Any] = {"resourceVersion": str(revision)}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    return _line("BOOKMARK", {"kind": request.target.type.kind,
                              "apiVersion": request.target.api_version, "metadata": meta})


def _line(kind: str, obj: Any) -> bytes:
    return json.dumps({"type": kind, "object": obj}, separators=(",", ":")).encode() + b"\n"
