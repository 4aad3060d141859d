"""The pure parts of KubernetesBackend's client machinery, on fake clocks: the token bucket,
jittered backoff, Retry-After, the retry decision, the informer cache's update rules and the
informer loop (list, watch, bookmarks, 410 → re-list, failures → backoff), the request retry
loop, and the impersonation headers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import urllib3

from reconciler.backends.informer import ChangeLog, Informer, KindCache, WatchExpired, newer
from reconciler.backends.kubernetes import KubernetesBackend, Operation, impersonation_headers
from reconciler.backends.throttle import (
    Backoff,
    TokenBucket,
    retry_after_seconds,
    should_retry,
)
from reconciler.model.errors import Transient
from reconciler.settings import KubernetesSettings


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


# --- token bucket ------------------------------------------------------------------------


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(qps=10, burst=3, now=clock.now, sleep=clock.sleep)
    assert [bucket.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.acquire() == pytest.approx(0.1)
    assert bucket.acquire() == pytest.approx(0.1)
    clock.t += 10  # a quiet period refills only up to the burst
    assert [bucket.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.acquire() == pytest.approx(0.1)
    start = clock.t
    for _ in range(20):
        bucket.acquire()
    assert clock.t - start == pytest.approx(2.0)  # 20 requests at 10 qps


def test_token_bucket_reservations_queue_up() -> None:
    clock = FakeClock()
    bucket = TokenBucket(qps=2, burst=1, now=clock.now, sleep=clock.sleep)
    assert bucket.reserve() == 0.0
    # Three callers arriving together (say, threads) wait 0.5, 1.0 and 1.5 s.
    assert [bucket.reserve() for _ in range(3)] == pytest.approx([0.5, 1.0, 1.5])
    with pytest.raises(ValueError):
        TokenBucket(qps=0, burst=1)


# --- backoff, Retry-After, the retry decision --------------------------------------------


def test_backoff_doubles_to_a_cap_with_full_jitter() -> None:
    backoff = Backoff(base=0.5, cap=4.0, random=lambda: 1.0)
    assert [backoff.delay(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert Backoff(base=0.5, cap=4.0, random=lambda: 0.25).delay(2) == 0.5
    assert Backoff(random=lambda: 0.0).delay(5) == 0.0
    assert Backoff(base=1, cap=10).ceiling(10_000) == 10  # no overflow


def test_retry_after_header() -> None:
    assert retry_after_seconds({"Retry-After": "3"}) == 3.0
    assert retry_after_seconds({"retry-after": "600"}, cap=60) == 60.0
    assert retry_after_seconds({"Retry-After": "Wed, 21 Oct 2015 07:28:10 GMT"},
                               now=1445412480.0) == 10.0
    assert retry_after_seconds({"Retry-After": "soon"}) is None
    assert retry_after_seconds({}) is None and retry_after_seconds(None) is None


@pytest.mark.parametrize(("verb", "code", "retried"), [
    ("get", 429, True), ("create", 429, True), ("delete", 429, True),
    ("get", 503, True), ("list", 500, True), ("apply", 502, True), ("watch", 0, True),
    ("create", 503, False), ("delete", 0, False), ("patch", 500, False),
    ("get", 501, False), ("get", 404, False), ("apply", 409, False), ("get", 403, False),
])
def test_should_retry(verb: str, code: int, retried: bool) -> None:
    assert should_retry(verb, code) is retried


# --- the request retry loop ----------------------------------------------------------------


class FakeApiException(Exception):
    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.status, self.headers, self.body = status, headers, '{"message": "busy"}'
        self.reason = "x"


def _backend(clock: FakeClock, **settings: Any) -> KubernetesBackend:
    return KubernetesBackend(dynamic=None, sleep=clock.sleep, now=clock.now,
                             random=lambda: 1.0,
                             settings=KubernetesSettings(**{"retry_base_seconds": 0.1,
                                                            **settings}))


def test_requests_retry_429_honouring_retry_after_then_succeed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import reconciler.backends.kubernetes as kube
    monkeypatch.setattr(kube, "ApiException", FakeApiException)
    clock = FakeClock()
    backend = _backend(clock, qps=1000, burst=1000)
    answers: list[Any] = [FakeApiException(429, {"Retry-After": "2"}), FakeApiException(503),
                          "ok"]

    def call() -> Any:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert backend._call_raw(Operation("get", "configmaps"), call) == "ok"
    assert clock.slept == [2.0, 0.2]  # Retry-After over the 0.1 backoff; then 0.1 * 2
    assert backend.retries == 2 and backend.requests.reads == 3


def test_non_idempotent_requests_are_not_retried_on_5xx(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import reconciler.backends.kubernetes as kube
    monkeypatch.setattr(kube, "ApiException", FakeApiException)
    clock = FakeClock()
    backend = _backend(clock)
    calls = []

    def call() -> Any:
        calls.append(1)
        raise FakeApiException(503)

    with pytest.raises(Transient):
        backend._call_raw(Operation("create", "events"), call)
    assert len(calls) == 1
    with pytest.raises(Transient):
        backend._call_raw(Operation("get", "configmaps"), call)
    assert len(calls) == 1 + 1 + 5  # retries=5
    assert clock.slept == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6])


def test_connection_errors_retry_idempotent_requests_only() -> None:
    clock = FakeClock()
    backend = _backend(clock, retries=2)
    calls = []

    def call() -> Any:
        calls.append(1)
        raise urllib3.exceptions.ProtocolError("connection reset")

    with pytest.raises(Transient):
        backend._call_raw(Operation("patch", "configmaps", "ns", "a"), call, retry_as="apply")
    assert len(calls) == 3
    with pytest.raises(Transient):
        backend._call_raw(Operation("delete", "configmaps", "ns", "a"), call)
    assert len(calls) == 4


def test_requests_wait_for_the_token_bucket() -> None:
    clock = FakeClock()
    backend = _backend(clock, qps=5, burst=2)
    for _ in range(4):
        backend._call_raw(Operation("get", "configmaps"), lambda: None)
    assert clock.slept == pytest.approx([0.2, 0.2])


def test_impersonation_headers_repeat_the_group_header() -> None:
    headers = impersonation_headers({"Accept": "application/json",
                                     "Impersonate-User": "spoofed"},
                                    "system:serviceaccount:ns:sa", ("g1", "g2"))
    assert headers.getlist("Impersonate-User") == ["system:serviceaccount:ns:sa"]
    assert headers.getlist("Impersonate-Group") == ["g1", "g2"]
    assert headers["Accept"] == "application/json"
    with pytest.raises(Exception, match="needs a user"):
        KubernetesSettings(impersonate_groups=("g",))


def test_settings_from_environment() -> None:
    settings = KubernetesSettings.from_environ({
        "RECONCILER_KUBE_QPS": "50", "RECONCILER_KUBE_BURST": "100",
        "RECONCILER_KUBE_INFORMERS": "0", "RECONCILER_KUBE_AS": "alice",
        "RECONCILER_KUBE_AS_GROUPS": "dev, ops"})
    assert (settings.qps, settings.burst, settings.informers) == (50.0, 100, False)
    assert (settings.impersonate_user, settings.impersonate_groups) == ("alice", ("dev", "ops"))
    assert KubernetesSettings.from_environ({}) == KubernetesSettings()
    with pytest.raises(Exception, match="not a number"):
        KubernetesSettings.from_environ({"RECONCILER_KUBE_QPS": "fast"})


# --- the cache's update rules ----------------------------------------------------------------


def _cm(name: str, rv: str, ns: str = "a", **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns, "resourceVersion": rv,
                         "labels": {"app": name}}, "data": data}


def test_resource_versions_compare_as_numbers() -> None:
    assert newer("10", "9") and not newer("9", "10") and not newer("5", "5")
    assert newer("opaque", "5") and newer("5", "")


def test_cache_keeps_the_newest_and_bumps_the_change_log() -> None:
    log = ChangeLog()
    cache = KindCache("", "ConfigMap", log)
    assert cache.upsert(_cm("x", "5", v="new"))
    assert log.last_change("", "ConfigMap", "a", "x") == 1
    assert not cache.upsert(_cm("x", "4", v="old")), "an older event does not roll back"
    assert not cache.upsert(_cm("x", "5", v="new")), "the same version is no change"
    assert cache.get(("a", "x"))["data"] == {"v": "new"}  # type: ignore[index]
    assert log.revision == 1
    assert cache.upsert(_cm("y", "7", ns="b"))
    assert log.last_kind_change("", "ConfigMap", "b") == 2
    assert log.last_kind_change("", "ConfigMap", "a") == 1
    assert log.last_kind_change("", "ConfigMap", None) == 2
    assert [o["metadata"]["name"] for o in cache.items(labels={"app": "y"})] == ["y"]
    assert [o["metadata"]["name"] for o in cache.items(namespace="a")] == ["x"]


def test_cache_tombstones_stop_late_events_but_not_recreation() -> None:
    cache = KindCache("", "ConfigMap", ChangeLog())
    cache.upsert(_cm("x", "5"))
    assert cache.remove(("a", "x"), "8")
    assert not cache.upsert(_cm("x", "6")), "a late MODIFIED from before the delete"
    assert cache.get(("a", "x")) is None
    assert cache.upsert(_cm("x", "9")), "re-created after the delete"
    assert not cache.remove(("a", "x"), "8"), "a stale DELETED leaves the newer object"
    assert cache.get(("a", "x")) is not None
    assert not cache.remove(("a", "nothing"))


def test_relist_replaces_everything() -> None:
    log = ChangeLog()
    cache = KindCache("", "ConfigMap", log)
    cache.upsert(_cm("gone", "1"))
    cache.upsert(_cm("same", "2"))
    cache.upsert(_cm("moved", "3"))
    before = log.revision
    assert cache.replace([_cm("same", "2"), _cm("moved", "10"), _cm("new", "11")]) == 3
    assert cache.names() == [("a", "moved"), ("a", "new"), ("a", "same")]
    assert log.last_change("", "ConfigMap", "a", "same") <= before
    assert log.last_change("", "ConfigMap", "a", "gone") > before


# --- the informer loop -----------------------------------------------------------------------


class FakeStream:
    def __init__(self, events: list[Any]) -> None:
        self.events = events
        self.closed = False

    def __iter__(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for event in self.events:
            if isinstance(event, Exception):
                raise event
            yield event

    def close(self) -> None:
        self.closed = True


class FakeServer:
    """Scripted list answers and watch streams, recording what was asked."""

    def __init__(self) -> None:
        self.lists: list[tuple[list[dict[str, Any]], str]] = []
        self.streams: list[Any] = []
        self.watched_from: list[str] = []

    def list(self) -> tuple[list[dict[str, Any]], str]:
        return self.lists.pop(0)

    def watch(self, rv: str) -> FakeStream:
        self.watched_from.append(rv)
        stream = self.streams.pop(0)
        if isinstance(stream, Exception):
            raise stream
        return FakeStream(stream) if isinstance(stream, list) else stream


def _informer(server: FakeServer, cache: KindCache, waits: list[float]) -> Informer:
    def apply(type_: str, obj: Any, items: Any) -> None:
        if type_ == "RELIST":
            cache.replace(items)
        elif type_ == "DELETED":
            cache.remove(("a", obj["metadata"]["name"]), obj["metadata"]["resourceVersion"])
        else:
            cache.upsert(obj)

    def wait(seconds: float) -> bool:
        waits.append(seconds)
        return False

    return Informer("configmaps", server.list, server.watch, apply,
                    Backoff(base=1, cap=8, random=lambda: 1.0), wait=wait)


def test_informer_lists_watches_follows_bookmarks_and_relists_on_410() -> None:
    server = FakeServer()
    cache = KindCache("", "ConfigMap", ChangeLog())
    waits: list[float] = []
    informer = _informer(server, cache, waits)
    server.lists.append(([_cm("x", "5")], "6"))
    informer.relist()
    assert cache.names() == [("a", "x")] and informer.resource_version == "6"
    bookmark = {"kind": "ConfigMap", "metadata": {"resourceVersion": "20"}}
    server.streams.append([("ADDED", _cm("y", "7")), ("MODIFIED", _cm("x", "8", v="2")),
                           ("DELETED", _cm("y", "9")), ("BOOKMARK", bookmark)])
    informer.step()  # the watch ends (its timeout): resume from the bookmark
    assert server.watched_from == ["6"]
    assert cache.names() == [("a", "x")] and cache.get(("a", "x"))["data"] == {"v": "2"}  # type: ignore[index]
    assert informer.resource_version == "20" and informer.stats.bookmarks == 1
    server.streams.append([WatchExpired("too old")])
    informer.step()
    assert informer.resource_version == "" and informer.stats.expired == 1
    server.lists.append(([_cm("z", "30")], "31"))
    server.streams.append([])
    informer.step()  # re-lists, then watches from the list's version
    assert cache.names() == [("a", "z")]
    assert server.watched_from == ["6", "20", "31"]
    assert waits == [], "no backoff for a watch that ended or expired"


def test_informer_backs_off_on_failures_and_resumes_from_its_version() -> None:
    server = FakeServer()
    cache = KindCache("", "ConfigMap", ChangeLog())
    waits: list[float] = []
    informer = _informer(server, cache, waits)
    server.lists.append(([], "6"))
    informer.relist()
    server.streams += [Transient("Unreachable", "connection refused"),
                       Transient("Unreachable", "connection refused"),
                       [("ADDED", _cm("x", "7")), ConnectionResetError("reset")],
                       Transient("Unreachable", "connection refused"),
                       [("ADDED", _cm("y", "8"))]]
    for _ in range(5):
        informer.step()
    assert waits == [2.0, 4.0, 2.0, 4.0]  # attempts 1, 2; reset after the good session; 1, 2
    assert server.watched_from == ["6", "6", "6", "7", "7"]
    assert cache.names() == [("a", "x"), ("a", "y")]
    assert informer.stats.failures == 4 and informer.stats.events == 2
