"""Live updates for the portal: the backend's change notifications as server-sent events.

The feed registers one listener on the environment's backend (the simulated cluster's
`add_listener(type, obj, before)` or `KubernetesBackend`'s `add_change_listener(group, kind,
namespace, name)`, the notifications the daemon's work queues are fed by) and keeps a revision
and the latest `RECENT` changed keys. A listener runs on the writer's thread, under the cluster's
lock, so it only records and wakes; each stream waits on the feed's own condition, never on the
cluster's lock.

A stream sends at most one `change` event per `COALESCE_SECONDS` (a reconcile writes an object
several times; a page refetches once), a comment every `KEEPALIVE_SECONDS` (for proxies), an
empty chunk every `IDLE_SECONDS` (the server then looks whether the page went away), and ends
after `MAX_STREAM_SECONDS` (EventSource reconnects on its own), so no stream holds a thread for
ever. At most `max_streams` are open at once.
"""

from __future__ import annotations

import collections
import functools
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

RECENT = 512
COALESCE_SECONDS = 0.25
KEEPALIVE_SECONDS = 15.0
IDLE_SECONDS = 1.0
"""How often an idle stream yields an empty chunk, on which the server checks whether the page
closed the connection (so a closed page frees its slot within a second)."""
MAX_STREAM_SECONDS = 600.0
MAX_STREAMS = 16
MAX_KEYS_PER_EVENT = 100

Key = tuple[str, str, str]  # kind, namespace, name
Sleep = Callable[[float], None]


class ChangeFeed:
    def __init__(self, max_streams: int = MAX_STREAMS, keepalive: float = KEEPALIVE_SECONDS,
                 lifetime: float = MAX_STREAM_SECONDS, coalesce: float = COALESCE_SECONDS
                 ) -> None:
        self._changed = threading.Condition()
        self._revision = 0
        self._recent: collections.deque[tuple[int, Key]] = collections.deque(maxlen=RECENT)
        self._slots = threading.BoundedSemaphore(max_streams)
        self._open = 0
        self._closed = False
        self.attached = False
        self.keepalive, self.lifetime, self.coalesce = keepalive, lifetime, coalesce

    # --- feeding -----------------------------------------------------------------------------

    def attach(self, source: object) -> bool:
        """Listen to `source`'s changes; False when it gives none (the page then offers a
        reload button instead of live updates)."""
        by_key = getattr(source, "add_change_listener", None)
        by_object = getattr(source, "add_listener", None)
        if callable(by_key):
            by_key(self.key_changed)
        elif callable(by_object):
            by_object(self.object_changed)
        else:
            return False
        self.attached = True
        return True

    def object_changed(self, type_: str, obj: dict[str, Any], before: dict[str, Any] | None
                       ) -> None:
        meta = obj.get("metadata") or {}
        self.key_changed("", str(obj.get("kind")), str(meta.get("namespace") or ""),
                         str(meta.get("name")))

    def key_changed(self, group: str, kind: str, namespace: str, name: str) -> None:
        with self._changed:
            self._revision += 1
            self._recent.append((self._revision, (kind, namespace, name)))
            self._changed.notify_all()

    def close(self) -> None:
        """End every stream (at shutdown)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    @property
    def revision(self) -> int:
        with self._changed:
            return self._revision

    # --- streaming ---------------------------------------------------------------------------

    def open(self) -> Stream | None:
        """A stream of server-sent events, or None when `max_streams` are open already."""
        if not self._slots.acquire(blocking=False):
            return None
        with self._changed:
            self._open += 1
        return Stream(self._stream(), self._release)

    def _release(self) -> None:
        with self._changed:
            self._open -= 1
        self._slots.release()

    @property
    def open_streams(self) -> int:
        with self._changed:
            return self._open

    def _stream(self) -> Iterator[bytes]:
        with self._changed:
            seen = self._revision
        yield _event("hello", {"revision": seen, "live": self.attached},
                     retry_ms=2000)
        deadline = last_sent = time.monotonic()
        deadline += self.lifetime
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            with self._changed:
                self._changed.wait_for(functools.partial(self._woken, seen),
                                       timeout=min(IDLE_SECONDS, remaining))
                if self._closed:
                    return
                fresh = self._revision > seen
            if not fresh:
                now = time.monotonic()
                if now - last_sent >= self.keepalive:
                    last_sent = now
                    yield b": keepalive\n\n"
                else:
                    yield b""  # nothing to send: the server checks the page is still there
                continue
            last_sent = time.monotonic()
            time.sleep(self.coalesce)  # let the rest of a reconcile's writes land
            with self._changed:
                keys, complete = self._since(seen)
                seen = self._revision
                closed = self._closed
            if closed:
                return
            yield _event("change", {
                "revision": seen, "complete": complete,
                "objects": [{"kind": k, "namespace": ns, "name": n}
                            for k, ns, n in keys[:MAX_KEYS_PER_EVENT]]})

    def _woken(self, seen: int) -> bool:
        return self._closed or self._revision > seen

    def _since(self, revision: int) -> tuple[list[Key], bool]:
        """The distinct keys changed after `revision`, and whether the record reaches back that
        far (if not, the page refetches everything)."""
        keys: dict[Key, None] = {}
        oldest = self._recent[0][0] if self._recent else self._revision + 1
        for rev, key in self._recent:
            if rev > revision:
                keys[key] = None
        complete = oldest <= revision + 1 and len(keys) <= MAX_KEYS_PER_EVENT
        return list(keys), complete


class Stream:
    """The events of one stream; `close()` (called by the server when the response ends, also
    when it never started) gives its slot back, once."""

    def __init__(self, events: Iterator[bytes], release: Callable[[], None]) -> None:
        self._events = events
        self._release: Callable[[], None] | None = release

    def __iter__(self) -> Iterator[bytes]:
        return self._events

    def close(self) -> None:
        close = getattr(self._events, "close", None)
        if callable(close):
            close()
        release = self._release
        self._release = None
        if release is not None:
            release()


def _event(name: str, data: dict[str, Any], retry_ms: int | None = None) -> bytes:
    head = f"retry: {retry_ms}\n" if retry_ms is not None else ""
    # json.dumps escapes newlines, so one data line carries the whole document.
    return f"{head}event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()
