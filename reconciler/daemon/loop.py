"""One reconcile tick: catch the environment's clock up with real time, then run rounds until
the cluster stops changing, then refresh the cluster gauges.

The scheduler calls `tick` from its worker thread; the debug endpoint reads the cluster from the
HTTP thread. `lock` keeps the two apart, so a reader never sees half a round.

Each reconcile runs under the runner's per-reconcile deadline, so no object holds a tick. Once
`request_stop` is called (shutdown), no new reconcile starts: the one in progress finishes, the
tick returns, and no later tick runs rounds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import structlog

from reconciler.daemon.clock import ClockFollower
from reconciler.engine.runner import Environment, RoundDriver
from reconciler.observability.health import HealthState
from reconciler.observability.metrics import ReconcilerMetrics, record_cluster

log = structlog.get_logger(__name__)

T = TypeVar("T")


class ReconcileLoop:
    def __init__(
        self,
        env: Environment,
        driver: RoundDriver,
        follower: ClockFollower,
        metrics: ReconcilerMetrics,
        health: HealthState,
        kinds: Sequence[tuple[str, str]],
        max_rounds: int,
    ) -> None:
        self.env, self.driver, self.follower = env, driver, follower
        self.metrics, self.health, self.kinds = metrics, health, kinds
        self.max_rounds = max_rounds
        self.lock = threading.Lock()
        self.ticks = 0

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
        with self.lock:
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
        """Run `reader` between ticks."""
        with self.lock:
            return reader()

    def _tick(self) -> None:
        self.follower.catch_up()
        before = self.driver.reconciles
        report = self.driver.run_to_fixed_point(self.max_rounds)
        self.metrics.rounds_total.inc(report.rounds)
        if report.stopped:
            log.info("tick cut short: stopping", rounds=report.rounds)
        elif not report.fixed_point:
            log.warning("cluster still changing after the round limit; continuing next tick",
                        rounds=report.rounds)
        record_cluster(self.metrics, self.env.backend, self.kinds)
        self.ticks += 1
        reconciles = self.driver.reconciles - before
        if reconciles:
            log.debug("tick", tick=self.ticks, rounds=report.rounds, reconciles=reconciles)
