"""The Receiver controller: resolve the token, publish `status.webhookPath`, say Ready.

As Flux's notification-controller writes it:
- success: `webhookPath` = `/hook/` + sha256(token + name + namespace), `observedGeneration`,
  Ready=True `Succeeded` "Receiver initialized for path: /hook/...", no Reconciling; again after
  `spec.interval` (default 10m) so a rotated token is picked up;
- a missing Secret or token: Ready=False `TokenNotFound` with Flux's message, Reconciling=True
  `ProgressingWithRetry`, `webhookPath` removed (the server then answers 404), a Warning event
  `Failed`; the reconcile raises, so the runner retries with backoff;
- `lastHandledReconcileAt` follows `reconcile.fluxcd.io/requestedAt`;
- suspended: nothing is written (the server answers 503).
The token is never logged, written to status or put in an event; only its hash is published.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import structlog

from reconciler.backends.base import Backend, write_status
from reconciler.model.conditions import FALSE, TRUE, Condition, merge_conditions
from reconciler.model.errors import Stalled
from reconciler.model.objects import Obj, deep_copy, status_of
from reconciler.notification.receiver import (
    API_VERSION,
    KIND,
    Receiver,
    ReceiverSpecError,
    go_duration,
    webhook_path,
)
from reconciler.notification.requests import Clock
from reconciler.notification.token import TokenNotFound, read_token
from reconciler.runtime.controller import Resync

log = structlog.get_logger(__name__)

READY, RECONCILING, STALLED = "Ready", "Reconciling", "Stalled"
SUCCEEDED, PROGRESSING_WITH_RETRY = "Succeeded", "ProgressingWithRetry"
VALIDATION_FAILED = "ValidationFailed"
_OWNED = (READY, RECONCILING, STALLED)
CONTROLLER_NAME = "notification-controller"


class ReceiverController:
    name = CONTROLLER_NAME

    def __init__(self, backend: Backend, clock: Clock) -> None:
        self.backend = backend
        self.clock = clock

    def watches(self) -> Sequence[tuple[str, str]]:
        return [(API_VERSION, KIND)]

    def reconcile(self, obj: Obj) -> float | None:
        receiver = Receiver.parse(obj)
        bound = log.bind(kind=KIND, namespace=receiver.namespace, name=receiver.name)
        if receiver.suspend:
            bound.info("reconciliation is suspended for this object")
            return None
        previous = deep_copy(status_of(obj))
        try:
            interval = receiver.interval
        except ReceiverSpecError as exc:
            message = str(exc)
            self._write(obj, previous, receiver, [
                Condition(STALLED, TRUE, VALIDATION_FAILED, message),
                Condition(READY, FALSE, VALIDATION_FAILED, message),
            ], path=None, observed=True)
            self.backend.emit_event(obj, "Warning", "Failed", message, source=CONTROLLER_NAME)
            raise Stalled(VALIDATION_FAILED, message) from None
        try:
            token = read_token(self.backend.get, receiver.namespace, receiver.secret_name)
        except TokenNotFound as exc:
            message = str(exc)
            self._write(obj, previous, receiver, [
                Condition(RECONCILING, TRUE, PROGRESSING_WITH_RETRY, "Reconciliation in progress"),
                Condition(READY, FALSE, TokenNotFound.reason, message),
            ], path=None, observed=False)
            bound.warning("receiver not ready", reason=TokenNotFound.reason, error=message)
            self.backend.emit_event(obj, "Warning", "Failed", message, source=CONTROLLER_NAME)
            raise
        path = webhook_path(token, receiver.name, receiver.namespace)
        message = f"Receiver initialized for path: {path}"
        changed = self._write(obj, previous, receiver,
                              [Condition(READY, TRUE, SUCCEEDED, message)],
                              path=path, observed=True)
        if changed:
            bound.info(message)
            self.backend.emit_event(
                obj, "Normal", SUCCEEDED,
                f"Reconciliation finished, next run in {go_duration(interval)}",
                source=CONTROLLER_NAME)
        return Resync(interval)

    def _write(self, obj: Obj, previous: dict[str, Any], receiver: Receiver,
               current: list[Condition], *, path: str | None, observed: bool) -> bool:
        status = dict(previous)
        if path:
            status["webhookPath"] = path
        else:
            status.pop("webhookPath", None)
        if observed:
            status["observedGeneration"] = receiver.generation
        else:
            status.setdefault("observedGeneration", -1)
        if receiver.requested_at:
            status["lastHandledReconcileAt"] = receiver.requested_at
        old = previous.get("conditions")
        old_list = old if isinstance(old, list) else []
        foreign = [c for c in old_list if isinstance(c, dict) and c.get("type") not in _OWNED]
        status["conditions"] = merge_conditions(
            old_list, current, _rfc3339(self.clock.now()), receiver.generation) + foreign
        if status == previous:
            return False
        write_status(self.backend, {**obj, "status": status})
        return True


def _rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(int(seconds), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
