"""Ticks: what still runs on a timer now that work queues drive the daemon's reconciles.

`QueueLoop` is the tick of `reconciler run` (from APScheduler's thread) and of `reconciler
serve --controllers all` (from a plain thread, `inprocess.py`). Every `--tick` real seconds:
1. the environment's clock catches up with real time (scaled; a no-op on a real cluster);
2. the delayed keys now due (requeue-after, retries) go to their queues (`QueueDriver.pump`);
3. the tick waits for the queues to go idle (the first tick up to the per-reconcile deadline,
   so readiness means every object was reconciled once; later ones up to a tick), then runs
   the simulated controllers' rounds to a fixed point, if the cluster changed since their
   last round or one of them asked to be woken; their writes feed the queues, so 3 repeats
   until a round changes nothing;
4. the cluster gauges are refreshed, if anything changed since they last were, from counts kept
   as each object changes (`ResourceInfo`, fed by the same change notifications): no listing.
At rest (nothing changed, nothing due) a tick reads no object; a tick after a change reads only
what changed.

`request_stop` (shutdown) makes the queues hand out no more keys and the tick return at once.
`read` runs a reader (the debug endpoint) under the lock that serializes access to a
non-thread-safe cluster, so it never sees half a write.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import structlog

from reconciler.daemon.clock import ClockFollower
from reconciler.daemon.locked import LockedBackend
from reconciler.daemon.manager import QueueDriver
from reconciler.engine.runner import Environment
from reconciler.observability.health import HealthState
from reconciler.observability.metrics import ReconcilerMetrics, counted_kinds, record_counts
from reconciler.observability.resource_info import ResourceInfo

log = structlog.get_logger(__name__)

T = TypeVar("T")


class QueueLoop:
    def __init__(
        self,
        env: Environment,
        driver: QueueDriver,
        follower: ClockFollower,
        metrics: ReconcilerMetrics,
        health: HealthState,
        kinds: Sequence[tuple[str, str]],
        max_rounds: int,
        backend: LockedBackend,
        idle_wait: float = 30.0,
        tick_seconds: float = 1.0,
    ) -> None:
        self.env, self.driver, self.follower = env, driver, follower
        self.metrics, self.health, self.kinds = metrics, health, kinds
        self.max_rounds, self.backend = max_rounds, backend
        self.idle_wait, self.tick_seconds = idle_wait, tick_seconds
        self.ticks = 0
        self.skipped = 0
        """Per tick, the objects known to the controllers that it did not reconcile."""
        self._sim_revision = -1
        self._gauged_at = -1
        self._reconciled_at = 0
        # The gauges' counts: every counted object listed once, then kept from its changes.
        self.counts = ResourceInfo((), counted_kinds(kinds))
        self.counts.track(env.backend, backend)

    def request_stop(self) -> None:
        """Start no new reconcile; callable from any thread, without waiting for the tick."""
        self.driver.request_stop()

    @property
    def stopping(self) -> bool:
        return self.driver.stopping

    def tick(self) -> None:
        """Never raises: a failed tick is logged, counted and retried at the next one."""
        if self.driver.stopping:
            return
        self.health.tick_started()
        started = time.perf_counter()
        error: str | None = None
        try:
            self._tick()
        except Exception as exc:
            # The scheduler would log and carry on too; doing it here keeps the count and
            # the readiness reason right.
            log.exception("reconcile tick failed")
            error = f"{type(exc).__name__}: {exc}"
        finally:
            self.metrics.tick_duration.observe(time.perf_counter() - started)
            self.metrics.ticks_total.labels(result="ok" if error is None else "failed").inc()
            self.health.tick_finished(error)

    def read(self, reader: Callable[[], T]) -> T:
        """Run `reader` between two writes to the cluster."""
        with self.backend.lock:
            return reader()

    def _tick(self) -> None:
        driver = self.driver
        # The first tick waits for the first pass over every object (readiness), up to the
        # per-reconcile deadline; later ones no longer than a tick, so a busy queue does not
        # hold the virtual clock back.
        deadline = time.monotonic() + (self.idle_wait if self.ticks == 0 else self.tick_seconds)
        with self.backend.lock:
            self.follower.catch_up()
        rounds = 0
        for _ in range(self.max_rounds):
            driver.pump()
            # A standby's queues have no workers: nothing to wait for.
            if driver.started and not driver.wait_idle(max(deadline - time.monotonic(), 0.0)):
                log.debug("queues still busy at the end of the tick's wait")
                break
            if driver.rounds is None or driver.stopping:
                break
            with self.backend.lock:
                before = self.env.revision()
                due = driver.rounds.next_wakeup()
                if before == self._sim_revision and (due is None or due > 0):
                    break
                report = driver.run_rounds(self.max_rounds)
                self._sim_revision = self.env.revision()
            if report is None or report.stopped:
                break
            rounds += report.rounds
            if self._sim_revision == before or time.monotonic() > deadline:
                break
        if rounds:
            self.metrics.rounds_total.inc(rounds)
        if driver.stopping:
            log.info("tick cut short: stopping")
            return
        if driver.changes != self._gauged_at:
            self._gauged_at = driver.changes
            record_counts(self.metrics, self.counts, self.kinds)
        self.ticks += 1
        reconciled = driver.product_reconciles - self._reconciled_at
        self._reconciled_at += reconciled
        self.skipped += max(len(driver.index) - reconciled, 0)
        if reconciled:
            log.debug("tick", tick=self.ticks, rounds=rounds, reconciles=reconciled)
