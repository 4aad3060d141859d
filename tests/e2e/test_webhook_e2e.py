"""A signed GitHub push to `reconciler run --webhook-listen` deploys a commit at once.

Three real processes and a real Git server: `reconciler serve --controllers ecosystem`,
`reconciler run --environment kubernetes --webhook-listen 127.0.0.1:0` and `git daemon` with
the paved path's application. The GitRepository polls every POLL seconds; a commit announced by
a webhook reaches the Workload's outputs long before that poll could have fired, a commit left
to polling only after it. Both latencies are printed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.backends.kubernetes import connect
from reconciler.settings import KubernetesSettings
from tests.apiserver.conftest import Served, serving
from tests.conftest import EXAMPLES, GitRepo
from tests.e2e.daemon_harness import paved_path_copy, running_daemon, sample, wait_for

TOKEN = "webhook-e2e-token"
POLL = 20.0  # the GitRepository's interval, seconds

RECEIVER = """\
apiVersion: v1
kind: Secret
metadata:
  name: webhook-token
  namespace: default
stringData:
  token: TOKEN
---
apiVersion: notification.toolkit.fluxcd.io/v1
kind: Receiver
metadata:
  name: band-service-push
  namespace: default
spec:
  type: github
  events: ["push"]
  secretRef:
    name: webhook-token
  resources:
    - apiVersion: source.toolkit.fluxcd.io/v1
      kind: GitRepository
      name: band-service
""".replace("TOKEN", TOKEN)


@pytest.fixture
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("webhook"),
                 "--controllers", "ecosystem", "--time-scale", "30") as server:
        yield server


@pytest.fixture
def app(make_repo: Callable[..., GitRepo]) -> GitRepo:
    source = EXAMPLES / "paved-path" / "developer" / "app"
    return make_repo("band-service", {p.name: p.read_text() for p in source.iterdir()})


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _push(sha: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"ref": "refs/heads/main", "after": sha,
                       "repository": {"full_name": "example/band-service"}}).encode()
    signature = hmac.new(TOKEN.encode(), body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "X-GitHub-Event": "push",
                  "X-Hub-Signature-256": f"sha256={signature}"}


def test_a_signed_push_deploys_the_commit_before_the_poll(
        served: Served, app: GitRepo, serve_repo: Callable[[GitRepo], str],
        tmp_path: Path) -> None:
    url = serve_repo(app)
    inputs = paved_path_copy(tmp_path / "paved-path", poll_interval=f"{POLL:g}s")
    (inputs / "receiver.yaml").write_text(RECEIVER)
    reader = connect(served.kubeconfig, settings=KubernetesSettings(informers=False))

    def revision() -> str:
        workload = reader.get("carto.run/v1alpha1", "Workload", "default", "band-service")
        for resource in ((workload or {}).get("status") or {}).get("resources") or []:
            if resource.get("name") == "source-provider":
                for output in resource.get("outputs") or []:
                    if output.get("name") == "revision":
                        return str(output.get("preview") or "").strip()
        return ""

    def deployed(sha: str) -> Callable[[], bool | None]:
        return lambda: True if revision() == f"main@sha1:{sha}" else None

    def receiver() -> dict[str, Any]:
        found = reader.get("notification.toolkit.fluxcd.io/v1", "Receiver", "default",
                           "band-service-push")
        assert found is not None
        return found

    args = [str(inputs), "--environment", "kubernetes", "--listen", "127.0.0.1:0",
            "--artifacts-listen", "127.0.0.1:0", "--tick", "0.2",
            "--webhook-listen", "127.0.0.1:0"]
    try:
        with running_daemon(args, tmp_path / "run.log",
                            env={"RECONCILER_KUBECONFIG": str(served.kubeconfig),
                                 "APP_REPO_URL": url}) as daemon:
            started = next(e for e in daemon.log_events()
                           if (e.get("msg") or e.get("event")) == "daemon started")
            hooks = str(started["webhooks"])
            wait_for("the first revision deployed", deployed(app.git("rev-parse", "HEAD")),
                     timeout=60)
            path = wait_for("the Receiver's webhookPath", lambda: (
                receiver().get("status") or {}).get("webhookPath"), timeout=30)
            assert str(path).startswith("/hook/")

            # Refusals first: a wrong signature (401), an unknown path (404), too big (413).
            body, headers = _push("0" * 40)
            assert _post(hooks + path, body, {**headers, "X-Hub-Signature-256":
                                              "sha256=" + "0" * 64}) == 401
            assert _post(hooks + "/hook/" + "0" * 64, body, headers) == 404
            assert _post(hooks + path, b"x" * (2 << 20), headers) == 413

            # Webhook: commit, announce it, time until the Workload's source revision moves.
            committed = time.monotonic()
            sha_hook = app.commit({"VERSION": "1.1.0\n"}, "release 1.1.0")
            body, headers = _push(sha_hook)
            sent = time.monotonic()
            assert _post(hooks + path, body, headers) == 200
            answered = time.monotonic() - sent
            wait_for("the webhook's commit deployed", deployed(sha_hook), timeout=POLL * 2)
            webhook_latency = time.monotonic() - committed

            # Polling: commit without a webhook, time until the next poll deploys it.
            committed = time.monotonic()
            sha_poll = app.commit({"VERSION": "1.2.0\n"}, "release 1.2.0")
            wait_for("the polled commit deployed", deployed(sha_poll), timeout=POLL * 3)
            poll_latency = time.monotonic() - committed
            print(f"\ncommit-to-applied latency: webhook {webhook_latency:.2f}s "
                  f"(answered in {answered * 1000:.0f} ms), polling {poll_latency:.2f}s "
                  f"(interval {POLL:g}s)")

            # The webhook, not a poll, moved the revision: faster than any poll could have.
            assert webhook_latency < POLL / 2, webhook_latency
            assert answered < 2.0, "the receiver answers without waiting on a reconcile"
            metrics = daemon.metrics()
            assert sample(metrics, "reconciler_receiver_requests_total",
                          outcome="accepted") == 1
            assert sample(metrics, "reconciler_receiver_requests_total",
                          outcome="unauthorized") == 1
            assert sample(metrics, "reconciler_receiver_requests_total",
                          outcome="not_found") == 1
            assert sample(metrics, "reconciler_receiver_requests_total",
                          outcome="too_large") == 1
            repo = reader.get("source.toolkit.fluxcd.io/v1", "GitRepository", "default",
                              "band-service")
            assert repo is not None
            assert (repo["metadata"].get("annotations") or {}).get(
                "reconcile.fluxcd.io/requestedAt")
            assert daemon.stop() == 0, daemon.stderr_tail()
    finally:
        reader.close()
