"""The webhook receiver over HTTP on 127.0.0.1 with a simulated cluster and a real git daemon: a
signed GitHub push makes the GitRepository fetch the new commit at once, not after its
interval; a bad signature or an oversized body changes nothing."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from reconciler.engine.sources import GitRepositoryReconciler
from reconciler.model.objects import Obj
from reconciler.notification.controller import ReceiverController
from reconciler.notification.metrics import ReceiverMetrics
from reconciler.notification.receiver import webhook_path
from reconciler.notification.server import ReceiverServer
from reconciler.notification.verify import sign
from reconciler.sources.artifacts import ArtifactStore
from reconciler.sources.git import GitRepositoryController
from simulator.clock import VirtualClock
from simulator.cluster import InMemoryCluster
from tests.gitservers import BareRepo, GitDaemon
from tests.unit.receiver_helpers import TOKEN, new_cluster, receiver, token_secret

GIT = "source.toolkit.fluxcd.io/v1"
PATH = webhook_path(TOKEN, "hook", "default")
PUSH = json.dumps({"ref": "refs/heads/main", "after": "..."}).encode()


class Setup:
    def __init__(self, tmp_path: Path, daemon: GitDaemon, repo: BareRepo) -> None:
        self.cluster: InMemoryCluster
        self.clock: VirtualClock
        self.cluster, self.clock = new_cluster()
        self.registry = CollectorRegistry()
        self.git = GitRepositoryController(ArtifactStore(tmp_path / "store", "http://a.test"),
                                           self.clock, tmp_path / "work")
        self.sources = GitRepositoryReconciler(self.cluster, self.git)
        self.receivers = ReceiverController(self.cluster, self.clock)
        self.cluster.apply(token_secret())
        self.cluster.apply({"apiVersion": GIT, "kind": "GitRepository",
                            "metadata": {"name": "app", "namespace": "default"},
                            "spec": {"url": daemon.url(repo), "interval": "10m0s",
                                     "ref": {"branch": "main"}}})
        self.receivers.reconcile(self.cluster.apply(receiver(events=["ping", "push"])))
        self.server = ReceiverServer(self.cluster, self.clock,
                                     metrics=ReceiverMetrics(self.registry))

    def gitrepo(self) -> Obj:
        obj = self.cluster.get(GIT, "GitRepository", "default", "app")
        assert obj is not None
        return obj

    def reconcile_source(self) -> float | None:
        return self.sources.reconcile(self.gitrepo())

    def revision(self) -> str:
        return str(self.gitrepo()["status"]["artifact"]["revision"])

    def post(self, body: bytes, headers: dict[str, str], path: str = PATH,
             method: str = "POST") -> tuple[int, bytes]:
        host, port = self.server.url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def counted(self, outcome: str) -> float:
        value = self.registry.get_sample_value("reconciler_receiver_requests_total",
                                               {"outcome": outcome})
        return value or 0.0


@pytest.fixture
def setup(tmp_path: Path, daemon: GitDaemon, repo: BareRepo) -> Iterator[Setup]:
    s = Setup(tmp_path, daemon, repo)
    with s.server:
        yield s


def github(body: bytes, token: str = TOKEN, event: str = "push") -> dict[str, str]:
    return {"Content-Type": "application/json", "X-GitHub-Event": event,
            "X-Hub-Signature-256": sign(token, body)}


def test_signed_push_fetches_the_new_commit_without_waiting_for_the_interval(
        setup: Setup, repo: BareRepo) -> None:
    assert setup.reconcile_source() == 600.0
    first = setup.revision()
    new = repo.commit({"deploy/app.yaml": "replicas: 2\n"}, "scale")
    setup.clock.advance(1)
    setup.reconcile_source()
    assert setup.revision() == first  # polling would wait ten minutes

    started = time.perf_counter()
    status, _ = setup.post(PUSH, github(PUSH))
    answered = time.perf_counter() - started
    assert status == 200
    annotations = setup.gitrepo()["metadata"]["annotations"]
    assert set(annotations) == {"reconcile.fluxcd.io/requestedAt"}
    assert setup.counted("accepted") == 1

    setup.reconcile_source()
    assert setup.revision() == f"main@sha1:{new}"
    assert setup.gitrepo()["status"]["lastHandledReconcileAt"] == \
        annotations["reconcile.fluxcd.io/requestedAt"]
    # The answer came before any reconcile ran: it never waits on one.
    assert answered < 2.0


def test_bad_signature_is_401_and_nothing_is_annotated(setup: Setup) -> None:
    before = setup.gitrepo()["metadata"]["resourceVersion"]
    for headers in (github(PUSH, token="wrong"), {"Content-Type": "application/json"},
                    {**github(b"other body"), "X-GitHub-Event": "push"}):
        status, body = setup.post(PUSH, headers)
        assert status == 401
        assert TOKEN.encode() not in body
    assert setup.gitrepo()["metadata"]["resourceVersion"] == before
    assert "annotations" not in setup.gitrepo()["metadata"]
    assert setup.counted("unauthorized") == 3


def test_oversized_body_is_413_before_it_is_read(setup: Setup) -> None:
    host, port = setup.server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        # Headers only: a 64 MiB body is announced and never sent; the answer comes anyway.
        sock.sendall(f"POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {64 << 20}\r\n\r\n".encode())
        answer = sock.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 413 ")
    assert "annotations" not in setup.gitrepo()["metadata"]
    assert setup.counted("too_large") == 1


def test_statuses_for_unknown_path_method_ping_and_filtered_event(setup: Setup) -> None:
    assert setup.post(PUSH, github(PUSH), path="/hook/" + "0" * 64)[0] == 404
    assert setup.post(PUSH, github(PUSH), path="/metrics")[0] == 404
    assert setup.post(b"", {}, method="GET")[0] == 405
    ping = b'{"zen":"Keep it logically awesome."}'
    assert setup.post(ping, github(ping, event="ping"))[0] == 200
    issues = b'{"action":"opened"}'
    assert setup.post(issues, github(issues, event="issues"))[0] == 400
    assert setup.post(PUSH, {**github(PUSH), "Content-Type": "text/plain"})[0] == 400
    assert (setup.counted("not_found"), setup.counted("method_not_allowed")) == (2, 1)


def test_suspended_or_unready_receiver_is_503_and_rotated_token_retires_the_path(
        setup: Setup) -> None:
    setup.cluster.apply(receiver(events=["push"], suspend=True))
    assert setup.post(PUSH, github(PUSH))[0] == 503
    setup.cluster.apply(receiver(events=["push"]))
    # The Secret's token changes before the controller republishes: the old path is retired
    # at once, and the new one is served once the controller has run.
    setup.cluster.apply(token_secret(token="rotated"))
    assert setup.post(PUSH, github(PUSH))[0] == 404
    live = setup.cluster.get("notification.toolkit.fluxcd.io/v1", "Receiver", "default", "hook")
    assert live is not None
    setup.receivers.reconcile(live)
    rotated = webhook_path("rotated", "hook", "default")
    assert setup.post(PUSH, github(PUSH, token="rotated"), path=rotated)[0] == 200
