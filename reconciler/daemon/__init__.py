"""`reconciler run`: the long-running daemon (reconcile ticks on the real clock, the artifact
server, metrics and health endpoints, graceful shutdown)."""

from reconciler.daemon.service import Daemon, DaemonStartError, run_daemon

__all__ = ["Daemon", "DaemonStartError", "run_daemon"]
