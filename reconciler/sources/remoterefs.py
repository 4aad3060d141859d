"""The shared view of remote refs: one `git ls-remote` per (URL, credentials) per poll interval.

It owns the cache that lets many GitRepository objects watching the same repository share one
remote round trip: an entry lists every ref of the remote and stays fresh for the polling
interval of whoever asks, measured on the injected clock. Concurrent askers for the same key wait
for the one call in flight instead of making their own. Only successful listings are cached, so a
failure is retried by the next poll.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from reconciler.runtime.clock import Clock

RemoteKey = tuple[str, str]  # (url, credentials fingerprint)


@dataclass(frozen=True)
class RemoteRefs:
    """ref name -> object id, including peeled tags (`refs/tags/v1^{}`), as ls-remote prints."""

    refs: dict[str, str]
    listed_at: float


class RemoteRefCache:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.calls = 0
        self._entries: dict[RemoteKey, RemoteRefs] = {}
        self._locks: dict[RemoteKey, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(
        self,
        key: RemoteKey,
        max_age: float,
        list_refs: Callable[[], dict[str, str]],
        *,
        refresh: bool = False,
    ) -> RemoteRefs:
        """The refs under `key`, listed now by `list_refs` unless a listing younger than
        `max_age` seconds exists (and `refresh` is not asked for)."""
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            entry = self._entries.get(key)
            now = self.clock.now()
            if entry is not None and not refresh and now - entry.listed_at < max_age:
                return entry
            refs = list_refs()
            entry = RemoteRefs(refs, now)
            with self._guard:
                self.calls += 1
                self._entries[key] = entry
            return entry

    def invalidate(self, key: RemoteKey) -> None:
        with self._guard:
            self._entries.pop(key, None)


def parse_ls_remote(output: str) -> dict[str, str]:
    refs: dict[str, str] = {}
    for line in output.splitlines():
        sha, _, ref_name = line.partition("\t")
        if ref_name:
            refs[ref_name.strip()] = sha.strip()
    return refs
