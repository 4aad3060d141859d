"""`reconciler run --leader-elect`: the elector's thread, its gauge, and what leading starts.

A replica starts as a standby: its informers are warm (the driver lists every watched kind)
but no worker runs and nothing is queued. `on_started_leading` queues every watched object and
starts the workers (`start_work`). Losing the Lease is fatal, as with client-go's default (see
`reconciler.ha`): the write gate is already closed (`LeaderElector.is_leader` says no), the
gauge drops to 0, the reason is logged and `on_lost` asks the daemon to stop, which then exits
non-zero. A graceful stop (SIGTERM) is not a loss: the daemon drains its workers first, then
`stop` ends the elector's thread, which releases the Lease so a standby takes over at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog
from prometheus_client import CollectorRegistry, Gauge

from reconciler.ha.election import ElectionConfig, LeaderCallbacks, LeaderElector, run_elector
from reconciler.ha.lease import LeaseStore
from reconciler.runtime.clock import Clock

log = structlog.get_logger(__name__)


class Leadership:
    def __init__(self, store: LeaseStore, config: ElectionConfig, clock: Clock,
                 registry: CollectorRegistry, on_lost: Callable[[str], None]) -> None:
        self._start_work: Callable[[], None] = lambda: None
        self._on_lost = on_lost
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost: str | None = None
        """Why leadership was lost (None while leading, standing by, or after a clean stop)."""
        self.gauge = Gauge("reconciler_leader_election_master_status",
                           "1 while this replica leads the leader election named, else 0 "
                           "(controller-runtime's leader_election_master_status).",
                           ["name"], registry=registry)
        self._status = self.gauge.labels(name=config.name)
        self._status.set(0)
        self.elector = LeaderElector(store, config, clock, LeaderCallbacks(
            on_started_leading=self._started, on_stopped_leading=self._stopped,
            on_new_leader=self._new_leader))

    @property
    def config(self) -> ElectionConfig:
        return self.elector.config

    def is_leader(self) -> bool:
        return self.elector.is_leader()

    def start(self, start_work: Callable[[], None]) -> None:
        """Stand by; `start_work` runs (on the elector's thread) when this replica leads."""
        self._start_work = start_work
        log.info("standing by for the leader election lease",
                 lease=f"{self.config.namespace}/{self.config.name}",
                 identity=self.config.identity)
        self._thread = threading.Thread(target=run_elector, args=(self.elector, self._stop),
                                        name="leader-election", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """End the elector's thread; it releases the Lease if this replica holds it."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("leader election thread did not stop", waited_seconds=timeout)

    def _started(self) -> None:
        self._status.set(1)
        log.info("leading: starting the workers",
                 lease=f"{self.config.namespace}/{self.config.name}")
        self._start_work()

    def _stopped(self) -> None:
        self._status.set(0)
        if self._stop.is_set():
            return  # a graceful stop released the Lease: not a loss
        outcome = self.elector.last_outcome
        self.lost = (f"the lease is held by {self.elector.leader or 'another replica'}"
                     if self.elector.leader and self.elector.leader != self.config.identity
                     else "could not renew the lease within the renew deadline"
                     + (f" (last attempt: {outcome.value})" if outcome is not None else ""))
        log.error("leadership lost: stopping, exiting non-zero", reason=self.lost,
                  lease=f"{self.config.namespace}/{self.config.name}")
        self._on_lost(self.lost)

    def _new_leader(self, identity: str) -> None:
        if identity != self.config.identity:
            log.info("new leader observed", leader=identity,
                     lease=f"{self.config.namespace}/{self.config.name}")
