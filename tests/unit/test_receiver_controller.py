"""The Receiver kind and controller: loading, webhookPath as Flux computes it, Ready, the token's
Secret missing, lastHandledReconcileAt, and the token never leaving the Secret."""

from __future__ import annotations

import hashlib
import subprocess

import pytest
import structlog

from reconciler.loader import load_text
from reconciler.model.conditions import find_condition
from reconciler.model.errors import Stalled, ValidationError
from reconciler.model.objects import Obj
from reconciler.notification.controller import ReceiverController
from reconciler.notification.receiver import Receiver, go_duration, webhook_path
from reconciler.notification.token import TokenNotFound
from reconciler.runtime.controller import ReconcileFailure, Resync
from tests.unit.receiver_helpers import TOKEN, new_cluster, receiver, token_secret

API = "notification.toolkit.fluxcd.io/v1"


def live(cluster: object, name: str = "hook") -> Obj:
    obj = cluster.get(API, "Receiver", "default", name)  # type: ignore[attr-defined]
    assert obj is not None
    return obj  # type: ignore[no-any-return]


def test_webhook_path_is_sha256_of_token_name_namespace() -> None:
    # The same digest `printf %s token+name+namespace | sha256sum` gives (Flux's test computes
    # its expected address this way too: sha256sum(token+name+namespace)).
    shell = subprocess.run(["sh", "-c", "printf %s 'test-tokenreceiver-abcrcvr-x' | sha256sum"],
                           check=True, capture_output=True, text=True).stdout.split()[0]
    assert webhook_path("test-token", "receiver-abc", "rcvr-x") == f"/hook/{shell}"
    assert webhook_path("t", "a", "b") == "/hook/" + hashlib.sha256(b"tab").hexdigest()
    # Only the concatenation counts, as in Flux: ("ab", "c") and ("a", "bc") collide.
    assert webhook_path("t", "ab", "c") == webhook_path("t", "a", "bc")


def test_receivers_load_and_a_bad_one_names_file_and_line() -> None:
    text = """\
apiVersion: notification.toolkit.fluxcd.io/v1
kind: Receiver
metadata: {name: hook, namespace: default}
spec:
  type: github
  events: [ping, push]
  secretRef: {name: webhook-token}
  resources:
    - kind: GitRepository
      name: "*"
      matchLabels: {team: a}
"""
    loaded = load_text(text, "receivers.yaml")
    assert Receiver.parse(loaded[0].obj).events == ("ping", "push")
    with pytest.raises(ValidationError) as bad:
        load_text(text.replace("type: github", "type: harbor"), "receivers.yaml")
    assert str(bad.value).startswith("receivers.yaml:5: ")
    assert "'harbor'" in str(bad.value) and "'generic-hmac'" in str(bad.value)
    with pytest.raises(ValidationError) as unknown:
        load_text(text.replace("      name: \"*\"", "      name: \"*\"\n      labels: {}"),
                  "receivers.yaml")
    assert str(unknown.value).startswith("receivers.yaml:11: ")
    assert "spec.resources[0].labels" in str(unknown.value)


def test_ready_with_webhook_path_and_resync_at_interval() -> None:
    cluster, clock = new_cluster()
    cluster.apply(token_secret())
    obj = cluster.apply(receiver(interval="5m"))
    after = ReceiverController(cluster, clock).reconcile(obj)
    assert isinstance(after, Resync)
    assert float(after) == 300
    status = live(cluster)["status"]
    path = webhook_path(TOKEN, "hook", "default")
    assert status["webhookPath"] == path
    assert status["observedGeneration"] == 1
    ready = find_condition(status["conditions"], "Ready")
    assert ready is not None
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "True", "Succeeded", f"Receiver initialized for path: {path}")
    assert find_condition(status["conditions"], "Reconciling") is None
    assert [(e["reason"], e["message"]) for e in cluster.events()] == [
        ("Succeeded", "Reconciliation finished, next run in 5m0s")]
    # Nothing changes on the next run: no write, no new event; default interval 10m.
    obj = live(cluster)
    del obj["spec"]["interval"]
    assert ReceiverController(cluster, clock).reconcile(obj) == 600


@pytest.mark.parametrize(("secret", "message"), [
    (None, "unable to read token from secret 'default/webhook-token' error: "
           "Secret \"webhook-token\" not found"),
    (token_secret(token=None), "invalid 'default/webhook-token' secret data: "
                               "required fields 'token'"),
    (token_secret(token=""), "invalid 'default/webhook-token' secret data: 'token' is empty"),
])
def test_missing_secret_or_token_is_not_ready_and_clears_the_path(
        secret: Obj | None, message: str) -> None:
    cluster, clock = new_cluster()
    cluster.apply(token_secret())
    obj = cluster.apply(receiver())
    controller = ReceiverController(cluster, clock)
    controller.reconcile(obj)
    cluster.delete("v1", "Secret", "default", "webhook-token")
    if secret is not None:
        cluster.apply(secret)
    with pytest.raises(TokenNotFound) as raised:
        controller.reconcile(live(cluster))
    assert ReconcileFailure.of(raised.value).reason == "TokenNotFound"
    status = live(cluster)["status"]
    assert "webhookPath" not in status
    ready = find_condition(status["conditions"], "Ready")
    reconciling = find_condition(status["conditions"], "Reconciling")
    assert ready is not None and reconciling is not None
    assert (ready["status"], ready["reason"], ready["message"]) == ("False", "TokenNotFound",
                                                                    message)
    assert (reconciling["status"], reconciling["reason"]) == ("True", "ProgressingWithRetry")
    assert cluster.events()[-1]["reason"] == "Failed"
    assert cluster.events()[-1]["type"] == "Warning"


def test_never_ready_receiver_observed_generation_is_minus_one() -> None:
    cluster, clock = new_cluster()
    obj = cluster.apply(receiver())
    with pytest.raises(TokenNotFound):
        ReceiverController(cluster, clock).reconcile(obj)
    assert live(cluster)["status"]["observedGeneration"] == -1


def test_requested_at_is_handled_and_suspend_writes_nothing() -> None:
    cluster, clock = new_cluster()
    cluster.apply(token_secret())
    obj = receiver()
    obj["metadata"]["annotations"] = {"reconcile.fluxcd.io/requestedAt": "now"}
    ReceiverController(cluster, clock).reconcile(cluster.apply(obj))
    assert live(cluster)["status"]["lastHandledReconcileAt"] == "now"
    suspended = cluster.apply(receiver(suspend=True))
    before = live(cluster)["status"]
    assert ReceiverController(cluster, clock).reconcile(suspended) is None
    assert live(cluster)["status"] == before


def test_invalid_interval_stalls() -> None:
    cluster, clock = new_cluster()
    cluster.apply(token_secret())
    obj = cluster.apply(receiver(interval="soon"))
    with pytest.raises(Stalled):
        ReceiverController(cluster, clock).reconcile(obj)
    stalled = find_condition(live(cluster)["status"]["conditions"], "Stalled")
    assert stalled is not None and stalled["reason"] == "ValidationFailed"


def test_the_token_is_never_logged_written_or_evented() -> None:
    cluster, clock = new_cluster()
    obj = cluster.apply(receiver())
    controller = ReceiverController(cluster, clock)
    with structlog.testing.capture_logs() as logs:
        with pytest.raises(TokenNotFound):
            controller.reconcile(obj)
        cluster.apply(token_secret())
        controller.reconcile(live(cluster))
    everything = repr(logs) + repr(live(cluster)) + repr(cluster.events())
    assert TOKEN not in everything


def test_go_duration() -> None:
    assert [go_duration(s) for s in (600, 300, 30, 3600, 5400)] == [
        "10m0s", "5m0s", "30s", "1h0m0s", "1h30m0s"]
