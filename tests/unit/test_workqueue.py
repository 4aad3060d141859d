"""The work queue: dedup, one reconcile per key at a time, FIFO, delays on a fake clock, rate
limiting, fairness, shutdown; and its worker pool. No test sleeps on a clock: time is injected,
and the threaded tests only wait on events."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest

from reconciler.runtime.ratelimit import ExponentialBackoff, MaxOf, TokenBucket
from reconciler.runtime.workers import WorkerPool
from reconciler.runtime.workqueue import WorkQueue


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@dataclass
class Recorder:
    adds: int = 0
    depths: list[int] = field(default_factory=list)
    queued: list[float] = field(default_factory=list)
    worked: list[float] = field(default_factory=list)
    retries: int = 0

    def added(self) -> None:
        self.adds += 1

    def depth(self, value: int) -> None:
        self.depths.append(value)

    def queued_for(self, seconds: float) -> None:
        self.queued.append(seconds)

    def worked_for(self, seconds: float) -> None:
        self.worked.append(seconds)

    def retried(self) -> None:
        self.retries += 1


def make(clock: FakeClock | None = None, bucket: TokenBucket | None = None,
         metrics: Recorder | None = None) -> tuple[WorkQueue[str], FakeClock]:
    clock = clock or FakeClock()
    q: WorkQueue[str] = WorkQueue("test", clock, MaxOf(ExponentialBackoff(5.0, 300.0), bucket),
                                  metrics, monotonic=clock)
    return q, clock


def drain(q: WorkQueue[str]) -> list[str]:
    out = []
    while (key := q.get(timeout=0)) is not None:
        out.append(key)
        q.done(key)
    return out


def test_keys_are_deduplicated_and_served_first_in_first_out() -> None:
    q, _ = make()
    for key in ("a", "b", "a", "c", "b"):
        q.add(key)
    assert len(q) == 3
    assert drain(q) == ["a", "b", "c"]


def test_a_key_added_while_processed_is_queued_again_after_done_and_never_handed_out_twice(
) -> None:
    q, _ = make()
    q.add("a")
    assert q.get(timeout=0) == "a"
    q.add("a")
    q.add("a")  # still one
    assert q.get(timeout=0) is None  # not while "a" is in flight
    q.done("a")
    assert q.get(timeout=0) == "a"
    q.done("a")
    assert q.get(timeout=0) is None


@pytest.mark.parametrize(("failures", "delay"), [(1, 5.0), (2, 10.0), (3, 20.0), (4, 40.0),
                                                 (7, 300.0), (100, 300.0)])
def test_backoff_doubles_from_base_to_cap(failures: int, delay: float) -> None:
    assert ExponentialBackoff(5.0, 300.0).delay(failures) == delay


def test_rate_limited_adds_back_off_per_key_and_forget_starts_over() -> None:
    q, _ = make()
    assert [q.add_rate_limited("a") for _ in range(3)] == [5.0, 10.0, 20.0]
    assert q.num_requeues("a") == 3
    assert q.add_rate_limited("b") == 5.0  # per key
    q.forget("a")
    assert q.num_requeues("a") == 0
    assert q.add_rate_limited("a") == 5.0


def test_delayed_adds_wait_on_the_clock_and_the_earliest_wins() -> None:
    q, clock = make()
    q.add_after("a", 10)
    q.add_after("a", 30)  # later: ignored
    q.add_after("b", 5)
    q.add_after("c", 0)  # at once
    assert drain(q) == ["c"]
    assert q.next_due() == 5.0
    clock.advance(5)
    assert q.pump() == 1
    assert drain(q) == ["b"]
    clock.advance(5)
    q.pump()
    assert drain(q) == ["a"]
    clock.advance(100)
    assert q.pump() == 0 and q.next_due() is None


def test_a_key_handed_out_loses_its_pending_delayed_add() -> None:
    q, clock = make()
    q.add_after("a", 60)
    q.add("a")  # a change: reconciled now
    assert drain(q) == ["a"]
    clock.advance(60)
    assert q.pump() == 0


def test_a_key_that_keeps_failing_cannot_starve_the_others() -> None:
    q, clock = make()
    for name in ("bad", "x", "y"):
        q.add(name)
    served: list[str] = []
    for _ in range(12):
        clock.advance(1)
        q.pump()
        key = q.get(timeout=0)
        if key is None:
            continue
        served.append(key)
        if key == "bad":
            q.add_rate_limited(key)
        elif served.count(key) < 4:
            q.add(key)
        q.done(key)
    # "bad" waits its growing backoff while the others go round.
    assert served.count("bad") <= 2
    assert served.count("x") == 4 and served.count("y") == 4


def test_the_token_bucket_spreads_retries_once_its_burst_is_spent() -> None:
    clock = FakeClock()
    bucket = TokenBucket(qps=2.0, burst=2, now=clock)
    q, _ = make(clock, bucket)
    delays = [q.add_rate_limited(k) for k in ("a", "b", "c", "d")]
    # Per-key backoff is 5 s for each; the bucket only matters beyond it: 2 tokens, then 0.5 s
    # each, so the 4th waits max(5, 1.0).
    assert delays == [5.0, 5.0, 5.0, 5.0]
    fast = TokenBucket(qps=1.0, burst=1, now=clock)
    assert [fast.reserve() for _ in range(3)] == [0.0, 1.0, 2.0]
    clock.advance(10)
    assert fast.reserve() == 0.0


def test_metrics_see_adds_depth_latency_work_and_retries() -> None:
    rec = Recorder()
    q, clock = make(metrics=rec)
    q.add("a")
    q.add("a")
    q.add("b")
    clock.advance(2)
    key = q.get(timeout=0)
    assert key == "a"
    clock.advance(3)
    assert q.unfinished_work_seconds() == 3.0 and q.longest_running_seconds() == 3.0
    q.done("a")
    q.add_rate_limited("c")
    assert rec.adds == 2  # the duplicate is not an add
    assert rec.queued == [2.0] and rec.worked == [3.0] and rec.retries == 1
    assert rec.depths[-1] == 1
    assert q.unfinished_work_seconds() == 0.0


def test_shutdown_hands_out_nothing_more_and_ignores_adds() -> None:
    q, _ = make()
    q.add("a")
    q.add("b")
    assert q.get(timeout=0) == "a"
    q.shutdown()
    assert q.get(timeout=0) is None
    q.add("c")
    q.add_after("d", 1)
    assert q.delayed == 0
    assert not q.wait_in_flight(timeout=0)  # "a" is still in flight
    q.done("a")
    assert q.wait_in_flight(timeout=0) and q.wait_idle(timeout=0)


def test_the_worker_pool_bounds_concurrency_and_never_runs_a_key_twice_at_once() -> None:
    q, _ = make()
    lock = threading.Lock()
    running: set[str] = set()
    peak = [0]
    overlaps: list[str] = []
    release = threading.Event()
    started = threading.Semaphore(0)
    seen: list[str] = []

    def process(key: str) -> None:
        with lock:
            if key in running:
                overlaps.append(key)
            running.add(key)
            peak[0] = max(peak[0], len(running))
            seen.append(key)
        started.release()
        release.wait(5)
        with lock:
            running.discard(key)

    pool = WorkerPool(q, process, concurrency=2)
    pool.start()
    for key in ("a", "b", "c", "a"):
        q.add(key)
    assert started.acquire(timeout=5) and started.acquire(timeout=5)
    q.add("a")  # re-added while in flight: runs again after
    release.set()
    assert q.wait_idle(timeout=5)
    assert pool.shutdown(timeout=5)
    assert peak[0] == 2 and not overlaps
    assert sorted(seen) == ["a", "a", "b", "c"]


def test_shutdown_waits_for_the_reconcile_in_flight() -> None:
    q, _ = make()
    entered, release = threading.Event(), threading.Event()
    finished: list[str] = []

    def process(key: str) -> None:
        entered.set()
        release.wait(5)
        finished.append(key)

    pool = WorkerPool(q, process, concurrency=1)
    pool.start()
    q.add("a")
    q.add("b")
    assert entered.wait(5)
    assert not pool.shutdown(timeout=0)  # "a" still running
    release.set()
    assert q.wait_in_flight(timeout=5)
    assert finished == ["a"]  # "b" was never handed out


def test_a_process_that_raises_does_not_kill_its_worker() -> None:
    q, _ = make()
    done = threading.Event()
    calls: list[str] = []

    def process(key: str) -> None:
        calls.append(key)
        if key == "boom":
            raise RuntimeError("bug")
        done.set()

    pool = WorkerPool(q, process, concurrency=1)
    pool.start()
    q.add("boom")
    q.add("ok")
    assert done.wait(5)
    pool.shutdown(timeout=5)
    assert calls == ["boom", "ok"]
