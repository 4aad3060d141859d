"""`simulator/apiserver/faults.py`: the SPEC grammar, what each fault answers (bodies as
kube-apiserver writes them), watch cuts and their 410 resumption, outages; in-process through
the `Faults` handle, then through `reconciler serve --faults`."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator.apiserver.faults import Faults, FaultSpecError, load, parse
from simulator.apiserver.handlers import Request, Response
from tests.apiserver.conftest import RECONCILER, Served, serving

OK = Response(200, {"kind": "NamespaceList"})


def request(method: str = "GET", target: str = "/api/v1/namespaces", **headers: str) -> Request:
    return Request(method, target, {k.replace("_", "-"): v for k, v in headers.items()})


def test_the_grammar_reads_every_item() -> None:
    policy = parse("409=0.1, 429=0.2,500=0.05\n503=0.05 # comment\nslow=0.1,timeout=0.01,"
                   "watch-cut=30s,outage=60s/5s,delay=250ms,hang=2m,retry-after=3,seed=7")
    assert policy.shares == {"409": 0.1, "429": 0.2, "500": 0.05, "503": 0.05, "slow": 0.1,
                             "timeout": 0.01}
    assert (policy.watch_cut, policy.outage_every, policy.outage_for) == (30.0, 60.0, 5.0)
    assert (policy.delay, policy.hang, policy.retry_after, policy.seed) == (0.25, 60.0, 3, 7)
    assert policy.active
    assert not parse("off").active and not parse("").active and not parse("# nothing").active


@pytest.mark.parametrize(("spec", "said"), [
    ("429", "expected KEY=VALUE"),
    ("429=", "expected KEY=VALUE"),
    ("429=1.5", "a share is a number from 0 to 1"),
    ("500=-0.1", "a share is a number from 0 to 1"),
    ("500=nan", "a share is a number from 0 to 1"),
    ("429=0.6,500=0.6", "add up to 1.2, more than 1"),
    ("watch-cut=soon", "expected a duration"),
    ("outage=60s", "expected EVERY/FOR"),
    ("seed=-1", "expected a whole number"),
    ("teapot=0.1", "teapot: unknown"),
    ("x" * 5000, "at most 4096 bytes"),
])
def test_a_bad_spec_says_which_item_and_why(spec: str, said: str) -> None:
    with pytest.raises(FaultSpecError, match=said):
        parse(spec)


def test_a_spec_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "faults").write_text("# the CI's\n429=0.5\nseed=3\n")
    assert load(f"@{tmp_path / 'faults'}").shares == {"429": 0.5}
    with pytest.raises(FaultSpecError, match="cannot read"):
        load(f"@{tmp_path / 'missing'}")


def test_each_status_is_answered_as_kube_apiserver_writes_it() -> None:
    faults = Faults(parse("429=1,retry-after=4"))
    answer = faults.around(request(), lambda: OK)
    assert answer is not None and answer.code == 429
    assert answer.body == b"Too many requests, please try again later.\n"
    assert answer.headers["Retry-After"] == "4"
    assert answer.content_type.startswith("text/plain")

    faults.set("500=1")
    answer = faults.around(request(), lambda: OK)
    assert answer is not None and answer.body == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "Internal error occurred: etcdserver: request timed out",
        "reason": "InternalError",
        "details": {"causes": [{"message": "etcdserver: request timed out"}]}, "code": 500}

    faults.set("503=1")
    answer = faults.around(request(), lambda: OK)
    assert answer is not None and answer.code == 503 and answer.body["reason"] == \
        "ServiceUnavailable"

    faults.set("409=1")
    put = request("PUT", "/api/v1/namespaces/default/configmaps/x")
    answer = faults.around(put, lambda: OK)
    assert answer is not None and answer.code == 409 and answer.body["message"] == (
        'Operation cannot be fulfilled on configmaps "x": the object has been modified; '
        "please apply your changes to the latest version and try again")
    # Not a create, a read, or a server-side apply (kube-apiserver retries those itself).
    assert faults.around(request("POST", "/api/v1/namespaces/default/configmaps"),
                         lambda: OK) is OK
    assert faults.around(request(), lambda: OK) is OK
    apply = request("PATCH", "/api/v1/namespaces/default/configmaps/x",
                    content_type="application/apply-patch+yaml")
    assert faults.around(apply, lambda: OK) is OK
    assert faults.counts()["injected"] == {"409": 1, "429": 1, "500": 1, "503": 1}


def test_only_the_api_is_faulted_and_an_observer_is_spared() -> None:
    faults = Faults(parse("500=1"))
    assert faults.around(request(target="/healthz"), lambda: OK) is OK
    assert faults.around(request(target="/version"), lambda: OK) is OK
    assert faults.around(request(x_reconciler_faults="exempt"), lambda: OK) is OK
    assert faults.around(request(), lambda: OK) is not OK


def test_the_same_seed_faults_the_same_requests() -> None:
    def pattern(seed: int) -> list[int]:
        faults = Faults(parse(f"429=0.3,500=0.2,seed={seed}"))
        return [getattr(faults.around(request(), lambda: OK), "code", 0) for _ in range(200)]

    first = pattern(7)
    assert first == pattern(7)
    assert first != pattern(8)
    # The shares hold roughly (seeded, so this is a fixed count, not a flaky one).
    assert 40 <= first.count(429) <= 80 and 20 <= first.count(500) <= 60


def test_slow_and_timeout_sleep_as_told_and_timeout_answers_nothing() -> None:
    slept: list[float] = []
    faults = Faults(parse("slow=1,delay=2s"), sleep=slept.append)
    assert faults.around(request(), lambda: OK) is OK
    faults.set("timeout=1,hang=3s")
    assert faults.around(request(), lambda: OK) is None
    assert slept == [2.0, 3.0]
    # Watches are never held.
    assert faults.around(request(target="/api/v1/configmaps?watch=true"), lambda: OK) is OK


def _idle_stream(chunks: int) -> Iterator[bytes]:
    for _ in range(chunks):
        time.sleep(0.01)
        yield b""


def test_a_cut_watch_resumes_with_410_expired() -> None:
    faults = Faults(parse("watch-cut=50ms"))
    watch = request(target="/api/v1/configmaps?watch=true&resourceVersion=0")
    answer = faults.around(watch, lambda: Response(200, stream=_idle_stream(1000)))
    assert answer is not None and answer.stream is not None
    with pytest.raises(ConnectionAbortedError, match="watch cut"):
        list(answer.stream)
    resumed = request(target="/api/v1/configmaps?watch=1&resourceVersion=41")
    answer = faults.around(resumed, lambda: OK)
    assert answer is not None and answer.stream is not None
    event = json.loads(b"".join(answer.stream))
    assert event == {"type": "ERROR", "object": {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "too old resource version: 41 (42)", "reason": "Expired", "code": 410}}
    # Once per cut: the next resumption is served.
    assert faults.around(resumed, lambda: OK) is OK
    assert faults.counts()["injected"] == {"410": 1, "watch-cut": 1}


class _Listener:
    """Records the outage's calls, and what a request got while the server was away."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.calls: list[str] = []
        self.seen: list[Response | None] = []

    def stop_listening(self) -> None:
        self.calls.append("stop")
        self.seen.append(self.faults.around(request(), lambda: OK))

    def listen_again(self) -> None:
        self.calls.append("listen")


def test_an_outage_drops_requests_and_open_watches_until_it_ends() -> None:
    faults = Faults()
    listener = _Listener(faults)
    faults.attach(listener)
    watch = faults.around(request(target="/api/v1/configmaps?watch=true"),
                          lambda: Response(200, stream=_idle_stream(1000)))
    assert watch is not None and watch.stream is not None
    next(watch.stream)
    faults.outage(0.01)
    assert listener.calls == ["stop", "listen"]
    assert listener.seen == [None]
    with pytest.raises(ConnectionAbortedError, match="went away"):
        next(watch.stream)
    assert faults.around(request(), lambda: OK) is OK
    assert faults.counts()["injected"] == {"outage": 1}


# --- through `reconciler serve --faults` --------------------------------------------------


def test_serve_refuses_a_bad_spec_with_exit_2(tmp_path: Path) -> None:
    done = subprocess.run([str(RECONCILER), "serve", "--kubeconfig", str(tmp_path / "kc"),
                           "--listen", "127.0.0.1:0", "--faults", "429=2"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "--faults 429=2: a share is a number from 0 to 1" in done.stderr
    assert "Traceback" not in done.stderr


def _refused(served: Served) -> bool:
    host, port = served.server.split("://", 1)[1].rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError:
        return True
    return False


def test_serve_injects_switches_and_goes_away_on_the_same_port(tmp_path: Path) -> None:
    (tmp_path / "faults").write_text("500=1\nseed=1\n")
    with serving(tmp_path, "--faults", f"@{tmp_path / 'faults'}") as served:
        code, body = served.request("GET", "/api/v1/namespaces")
        assert code == 500 and isinstance(body, dict) and body["reason"] == "InternalError"
        assert served.request("GET", "/version")[0] == 200
        code, body = served.request("PUT", "/debug/faults", b"teapot=1")
        assert code == 400 and "teapot: unknown" in str(body)
        code, body = served.request("PUT", "/debug/faults", b"off")
        assert code == 200 and isinstance(body, dict) and body["injected"] == {"500": 1}
        assert served.request("GET", "/api/v1/namespaces")[0] == 200
        # The debug endpoint is the API's: it wants the token.
        assert served.request("GET", "/debug/faults", token="wrong")[0] == 401

        code, _ = served.request("POST", "/debug/faults/outage?seconds=2")
        assert code == 202
        deadline = time.monotonic() + 5
        while not _refused(served) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _refused(served), "the server kept listening through its outage"
        with pytest.raises(urllib.error.URLError):
            served.request("GET", "/api/v1/namespaces")
        deadline = time.monotonic() + 15
        while _refused(served) and time.monotonic() < deadline:
            time.sleep(0.1)
        code, body = served.request("GET", "/debug/faults")
        assert code == 200 and isinstance(body, dict) and body["injected"]["outage"] == 1
