"""The portal's HTTP side without a browser: the JSON API on the daemon, its filters and bounds,
the event stream and its cap, the actions' guards, and the portal on `reconciler serve`."""

from __future__ import annotations

import http.client
import json
import os
import re
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import pytest

from reconciler.engine.wiring import load_environment
from reconciler.loader import load_text
from reconciler.model.errors import InputError
from reconciler.portal import views
from reconciler.portal.app import Portal as PortalApp
from reconciler.portal.app import allowed_host, read_token
from reconciler.portal.feed import MAX_STREAMS, ChangeFeed
from reconciler.settings import DaemonSettings, ListenAddress, SimulateSettings
from reconciler.simulation import _reconcile, apply_inputs
from simulator.clock import VirtualClock
from tests.apiserver.conftest import serving
from tests.conftest import ROOT
from tests.portal.conftest import Portal, wait_until
from tests.unit.kuttl_helpers import GREETER_CHAIN, GREETER_WORKLOAD

STATIC = ROOT / "reconciler" / "portal" / "static"


def get(portal: Portal, path: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(portal.url + path, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def post(url: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(url + path, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def names(document: dict[str, Any], key: str) -> list[str]:
    return [f"{o['namespace']}/{o['name']}" for o in document[key]]


# --- the JSON API ------------------------------------------------------------------------

def test_overview_filters_by_namespace_and_label_selector(portal: Portal) -> None:
    wait_until("both workloads listed",
               lambda: len(get(portal, "/ui/api/overview")[1]["workloads"]) == 2)
    code, everything = get(portal, "/ui/api/overview")
    assert code == 200
    assert names(everything, "workloads") == ["team-a/web", "team-b/tested"]
    assert names(everything, "sources") == ["team-a/web", "team-b/tested"]
    assert {"team-a", "team-b"} <= set(everything["namespaces"])
    assert everything["workloads"][0]["blueprint"] == "web"

    assert names(get(portal, "/ui/api/overview?namespace=team-b")[1], "workloads") == [
        "team-b/tested"]
    for selector, expected in [("tier=frontend", ["team-a/web"]),
                               ("tier!=frontend", ["team-b/tested"]),
                               ("tier in (frontend,backend)", ["team-a/web", "team-b/tested"]),
                               ("!tier", []), ("tier,tier notin (backend)", ["team-a/web"])]:
        query = urlencode({"selector": selector})
        assert names(get(portal, f"/ui/api/overview?{query}")[1], "workloads") == expected, \
            selector

    code, refused = get(portal, "/ui/api/overview?selector=" + quote("tier in (a"))
    assert code == 400
    assert "cannot read 'tier in (a'" in refused["error"]


def test_the_path_names_every_stage_in_the_chain_order(portal: Portal) -> None:
    path = wait_until("the tests stage failed", lambda: _failed(portal))
    assert [s["name"] for s in path["stages"]] == ["source-provider", "tests"]
    tests = path["stages"][1]
    assert tests["template"] == {"kind": "ClusterTemplate", "name": "unit-tests"}
    assert tests["stamped"]["kind"] == "TaskRun" and tests["logs"] is True
    assert tests["inputs"] == ["source-provider"]
    assert path["ready"]["status"] == "False"

    code, logs = get(portal, "/ui/api/logs/Workload/team-b/tested/tests")
    assert code == 200
    [run] = logs["runs"]
    assert run["name"] == "tested-tests" and run["succeeded"]["status"] == "False"
    assert run["steps"][0]["step"] == "unit" and "FAIL: 2 != 3" in run["steps"][0]["log"]
    assert get(portal, "/ui/api/logs/Workload/team-b/tested/source-provider")[1]["runs"] == []
    assert get(portal, "/ui/api/logs/Workload/team-b/tested/nope")[0] == 404
    assert get(portal, "/ui/api/owners/Workload/team-b/nope")[0] == 404
    assert get(portal, "/ui/api/owners/Secret/team-b/tested")[0] == 404

    events = get(portal, "/ui/api/events/Workload/team-b/tested")[1]["events"]
    assert any(e["reason"] == "StampedObjectApplied" for e in events)


def _failed(portal: Portal) -> dict[str, Any] | None:
    code, path = get(portal, "/ui/api/owners/Workload/team-b/tested")
    stages = path.get("stages") or [] if code == 200 else []
    if len(stages) == 2 and (stages[1].get("ready") or {}).get("status") == "False":
        return dict(path)
    return None


def test_every_listing_is_capped_and_says_how_many_there_were(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = load_environment("simulator")
    workloads = "---".join(GREETER_WORKLOAD.replace("name: hello", f"name: hello-{i}")
                           for i in range(5))
    apply_inputs(env.backend, load_text(GREETER_CHAIN + "---" + workloads, "fleet.yaml"))
    monkeypatch.setattr(views, "MAX_ITEMS", 3)
    document = views.overview(env.backend, views.Filter())
    assert names(document, "workloads") == [f"default/hello-{i}" for i in range(3)]
    assert document["truncated"] == {"workloads": 5}
    long = views.text("x" * 10_000)
    assert len(long) == views.MAX_TEXT + 1 and long.endswith("…")


@pytest.mark.parametrize("selector, problem", [
    ("a in (b", "cannot read"), ("=x", "cannot read"), ("a,,b", "an empty term"),
    ("a" * 2000, "longer than"), ("a=b c", "cannot read"),
])
def test_a_malformed_selector_is_refused_naming_the_term(selector: str, problem: str) -> None:
    with pytest.raises(views.QueryError, match=problem):
        views.parse_selector(selector)


def test_selectors_read_as_kubectl_reads_them() -> None:
    selector = views.parse_selector("app=web, tier != db,env in (dev, qa),!legacy,team")
    labels = {"app": "web", "tier": "api", "env": "qa", "team": "x"}
    assert all(r.holds(labels) for r in selector)
    assert not all(r.holds({**labels, "legacy": "1"}) for r in selector)
    assert not all(r.holds({**labels, "env": "prod"}) for r in selector)
    assert views.parse_selector("") == ()


# --- the stream ----------------------------------------------------------------------------

def read_event(response: http.client.HTTPResponse, name: str) -> dict[str, Any]:
    """The data of the next event called `name` (keepalive comments and others skipped)."""
    current = ""
    while True:
        line = response.readline().decode()
        assert line, "the stream ended"
        if line.startswith("event: "):
            current = line[7:].strip()
        elif line.startswith("data: ") and current == name:
            return dict(json.loads(line[6:]))


def test_the_stream_says_what_changed_after_a_write(portal: Portal) -> None:
    address = urlsplit(portal.url)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=15)
    try:
        connection.request("GET", "/ui/api/stream")
        response = connection.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Type") == "text/event-stream"
        hello = read_event(response, "hello")
        assert hello["live"] is True

        post(portal.url, "/ui/api/actions/reconcile",
             json.dumps({"kind": "GitRepository", "namespace": "team-a", "name": "web"}).encode(),
             {"Content-Type": "application/json", "Origin": portal.url})
        change = read_event(response, "change")
        assert change["revision"] > hello["revision"]
        assert {"kind": "GitRepository", "namespace": "team-a", "name": "web"} in \
            change["objects"]
    finally:
        connection.close()


def test_streams_are_capped_and_a_closed_one_frees_its_slot() -> None:
    feed = ChangeFeed(max_streams=2, keepalive=0.05)
    first, second = feed.open(), feed.open()
    assert first is not None and second is not None
    assert feed.open() is None  # the third waits for a slot
    assert next(iter(first)).startswith(b"retry: 2000\nevent: hello\n")
    first.close()
    third = feed.open()
    assert third is not None
    second.close()  # never read: its slot is freed all the same
    third.close()
    assert feed.open() is not None


def test_the_daemon_answers_503_beyond_the_stream_cap(portal: Portal) -> None:
    address = urlsplit(portal.url)
    feed = portal.daemon.portal.feed if portal.daemon.portal is not None else None
    assert feed is not None
    wait_until("no stream of another test open", lambda: feed.open_streams == 0)
    held = []
    try:
        for _ in range(MAX_STREAMS + 1):
            connection = http.client.HTTPConnection(address.hostname or "", address.port,
                                                    timeout=15)
            held.append(connection)
            connection.request("GET", "/ui/api/stream")
            response = connection.getresponse()
            if response.status != 200:
                break
            read_event(response, "hello")
        assert response.status == 503
        assert "too many live pages" in json.loads(response.read())["error"]
        assert len(held) == MAX_STREAMS + 1
    finally:
        for connection in held:
            connection.close()
    wait_until("a slot free again", lambda: _stream_opens(portal))


def _stream_opens(portal: Portal) -> bool:
    address = urlsplit(portal.url)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=15)
    try:
        connection.request("GET", "/ui/api/stream")
        return connection.getresponse().status == 200
    finally:
        connection.close()


# --- actions -------------------------------------------------------------------------------

BODY = json.dumps({"kind": "Workload", "namespace": "team-a", "name": "web"}).encode()


@pytest.mark.parametrize("headers, code, problem", [
    ({"Content-Type": "application/json", "Origin": "http://evil.example"}, 403,
     "must come from the portal's own page"),
    ({"Content-Type": "application/json"}, 403, "needs the Origin"),
    ({"Content-Type": "text/plain", "Origin": "SAME"}, 403, "must be application/json"),
    ({"Content-Type": "application/x-www-form-urlencoded", "Origin": "SAME"}, 403,
     "must be application/json"),
])
def test_an_action_from_another_origin_or_a_form_is_refused(
    portal: Portal, headers: dict[str, str], code: int, problem: str
) -> None:
    headers = {k: (portal.url if v == "SAME" else v) for k, v in headers.items()}
    answer = post(portal.url, "/ui/api/actions/reconcile", BODY, headers)
    assert answer[0] == code and problem in answer[1]["error"]


def test_an_action_needs_a_known_kind_an_existing_object_and_a_small_body(
    portal: Portal,
) -> None:
    same = {"Content-Type": "application/json", "Origin": portal.url}
    secret = json.dumps({"kind": "Secret", "namespace": "team-a", "name": "x"}).encode()
    assert post(portal.url, "/ui/api/actions/reconcile", secret, same)[0] == 400
    gone = json.dumps({"kind": "Workload", "namespace": "team-a", "name": "gone"}).encode()
    assert post(portal.url, "/ui/api/actions/reconcile", gone, same)[0] == 404
    assert post(portal.url, "/ui/api/actions/delete", BODY, same)[0] == 404
    assert post(portal.url, "/ui/api/actions/reconcile", b"[]", same)[0] == 400
    assert post(portal.url, "/ui/api/actions/reconcile", b" " * 5000, same)[0] == 413
    assert get(portal, "/ui/api/actions/reconcile")[0] == 405
    code, answer = post(portal.url, "/ui/api/actions/reconcile", BODY, same)
    assert code == 200 and answer["name"] == "web"


def test_suspend_and_resume_set_a_flux_source_spec_suspend(portal: Portal) -> None:
    same = {"Content-Type": "application/json", "Origin": portal.url}
    source = json.dumps({"kind": "GitRepository", "namespace": "team-b",
                         "name": "tested"}).encode()

    def suspended() -> bool:
        overview = get(portal, "/ui/api/overview?namespace=team-b")[1]
        return bool(overview["sources"][0]["suspended"])

    code, answer = post(portal.url, "/ui/api/actions/suspend", source, same)
    assert code == 200 and answer["suspended"] is True
    assert wait_until("the source suspended", suspended)
    code, answer = post(portal.url, "/ui/api/actions/resume", source, same)
    assert code == 200 and answer["suspended"] is False
    assert not suspended()


def test_a_suspended_workload_is_not_reconciled_until_resumed(portal: Portal) -> None:
    same = {"Content-Type": "application/json", "Origin": portal.url}
    workload = json.dumps({"kind": "Workload", "namespace": "team-b", "name": "tested"}).encode()
    loop, env = portal.daemon.loop, portal.daemon.env
    assert loop is not None and env is not None

    def handled() -> str:
        live = loop.read(lambda: env.backend.get("carto.run/v1alpha1", "Workload", "team-b",
                                                 "tested"))
        return str(((live or {}).get("status") or {}).get("lastHandledReconcileAt") or "")

    code, answer = post(portal.url, "/ui/api/actions/suspend", workload, same)
    assert code == 200 and answer["suspended"] is True
    assert get(portal, "/ui/api/owners/Workload/team-b/tested")[1]["suspended"] is True
    before = handled()
    code, _ = post(portal.url, "/ui/api/actions/reconcile", workload, same)
    assert code == 200
    assert loop.driver.wait_idle(10)
    assert handled() == before  # suspended: the request is not handled
    code, answer = post(portal.url, "/ui/api/actions/resume", workload, same)
    assert code == 200 and answer["suspended"] is False
    assert wait_until("the resumed workload reconciled", lambda: handled() != before)


def test_actions_are_refused_unless_turned_on() -> None:
    env = load_environment("simulator")
    apply_inputs(env.backend, load_text(GREETER_CHAIN + "---" + GREETER_WORKLOAD, "g.yaml"))
    portal = PortalApp(env.backend)  # the default: read-only
    body = json.dumps({"kind": "Workload", "namespace": "default", "name": "hello"}).encode()
    answer = portal.handle("POST", "/ui/api/actions/reconcile",
                           {"content-type": "application/json", "origin": "http://h",
                            "host": "h"}, body)
    assert answer.status == 403
    assert b"daemon.portal_actions" in answer.body
    live = env.backend.get("carto.run/v1alpha1", "Workload", "default", "hello")
    assert "reconcile.fluxcd.io/requestedAt" not in (live or {})["metadata"].get(
        "annotations", {})
    assert json.loads(portal.handle("GET", "/ui/api/config", {}).body) == {
        "actions": False, "live": False, "suspend_kinds": []}


def _raw(url: str, method: str, path: str, headers: dict[str, str],
         body: bytes | None = None) -> tuple[int, Any]:
    """A request with exactly these headers (Host included), as a non-browser client sends."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        is_json = response.getheader("Content-Type", "").startswith("application/json")
        return response.status, json.loads(data) if is_json else data
    finally:
        connection.close()


def test_a_request_naming_another_host_is_refused_as_dns_rebinding_would_send_it(
    portal: Portal,
) -> None:
    port = urlsplit(portal.url).port
    # A page at http://evil.example:PORT whose name was re-pointed at 127.0.0.1: the browser
    # sends its own name as Host and as Origin, which the Origin check alone let through.
    evil = f"evil.example:{port}"
    code, answer = _raw(portal.url, "GET", "/ui/api/overview", {"Host": evil})
    assert code == 421 and "daemon.portal_hosts" in answer["error"] and evil in answer["error"]
    code, answer = _raw(portal.url, "POST", "/ui/api/actions/reconcile",
                        {"Host": evil, "Origin": f"http://{evil}",
                         "Content-Type": "application/json"}, BODY)
    assert code == 421
    assert _raw(portal.url, "GET", "/ui/", {"Host": f"127.0.0.1:{port}"})[0] == 200
    assert _raw(portal.url, "GET", "/ui/api/config", {"Host": f"localhost:{port}"})[0] == 200
    assert _raw(portal.url, "GET", "/ui/api/config", {"Host": "localhost:1"})[0] == 421


@pytest.mark.parametrize("header, bound, extra, allowed", [
    ("127.0.0.1:8080", ("127.0.0.1", 8080), (), True),
    ("LOCALHOST:8080", ("127.0.0.1", 8080), (), True),
    ("[::1]:8080", ("0.0.0.0", 8080), (), True),
    ("localhost:8080", ("0.0.0.0", 8080), (), True),
    ("10.0.0.5:8080", ("0.0.0.0", 8080), (), False),  # the pod IP is not a name of its own
    ("localhost:9000", ("0.0.0.0", 8080), (), False),
    ("localhost:9000", ("0.0.0.0", 8080), ("localhost:9000",), True),
    ("portal.example.com", ("0.0.0.0", 8080), ("portal.example.com",), True),
    ("portal.example.com:443", ("0.0.0.0", 8080), ("portal.example.com",), True),
    ("portal.example.com:443", ("0.0.0.0", 8080), ("portal.example.com:80",), False),
    ("evil.example:8080", ("0.0.0.0", 8080), ("portal.example.com",), False),
    ("192.168.1.5:8080", ("192.168.1.5", 8080), (), True),
    ("localhost:8080", ("192.168.1.5", 8080), (), False),  # not bound to loopback
    ("[::1]:8080", ("::1", 8080), (), True),
    ("127.0.0.1", ("127.0.0.1", 80), (), True),
    ("127.0.0.1", ("127.0.0.1", 8080), (), False),
    ("", ("127.0.0.1", 8080), (), False),
])
def test_the_host_allow_list(header: str, bound: tuple[str, int], extra: tuple[str, ...],
                             allowed: bool) -> None:
    assert allowed_host(header, bound, extra) is allowed


def _action_portal(token: str | None) -> tuple[PortalApp, Any]:
    env = load_environment("simulator")
    apply_inputs(env.backend, load_text(GREETER_CHAIN + "---" + GREETER_WORKLOAD, "g.yaml"))
    return PortalApp(env.backend, actions=True, token=token), env


HELLO = json.dumps({"kind": "Workload", "namespace": "default", "name": "hello"}).encode()
ALL = ("0.0.0.0", 8080)


def _requested(env: Any) -> bool:
    live = env.backend.get("carto.run/v1alpha1", "Workload", "default", "hello")
    return "reconcile.fluxcd.io/requestedAt" in (live or {})["metadata"].get("annotations", {})


def test_actions_need_the_bearer_token_when_one_is_set() -> None:
    portal, env = _action_portal("s3cret-token")
    same = {"content-type": "application/json", "origin": "http://localhost:8080",
            "host": "localhost:8080"}
    for authorization in (None, "Bearer wrong", "Basic s3cret-token", "Bearer s3cret-toke"):
        headers = same if authorization is None else {**same, "authorization": authorization}
        answer = portal.handle("POST", "/ui/api/actions/reconcile", headers, HELLO, ALL)
        assert answer.status == 401, authorization
        assert b"daemon.portal_token_file" in answer.body
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert not _requested(env)
    # The token does not replace the browser guards: another origin is still refused.
    answer = portal.handle("POST", "/ui/api/actions/reconcile",
                           {**same, "origin": "http://evil.example",
                            "authorization": "Bearer s3cret-token"}, HELLO, ALL)
    assert answer.status == 403
    answer = portal.handle("POST", "/ui/api/actions/reconcile",
                           {**same, "authorization": "Bearer s3cret-token"}, HELLO, ALL)
    assert answer.status == 200 and _requested(env)


def test_actions_without_a_token_are_refused_off_loopback() -> None:
    portal, env = _action_portal(None)
    same = {"content-type": "application/json", "origin": "http://localhost:8080",
            "host": "localhost:8080"}
    answer = portal.handle("POST", "/ui/api/actions/reconcile", same, HELLO, ALL)
    assert answer.status == 403 and b"daemon.portal_token_file" in answer.body
    assert not _requested(env)
    answer = portal.handle("POST", "/ui/api/actions/reconcile", same, HELLO,
                           ("127.0.0.1", 8080))
    assert answer.status == 200 and _requested(env)


def test_the_daemon_refuses_actions_off_loopback_without_a_token(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"daemon\.portal_token_file"):
        DaemonSettings(listen=ListenAddress("0.0.0.0", 8080), portal_actions=True)
    with pytest.raises(InputError, match=r"daemon\.portal_token_file"):
        DaemonSettings(listen=ListenAddress("10.1.2.3", 8080), portal_actions=True)
    DaemonSettings(listen=ListenAddress("127.0.0.1", 8080), portal_actions=True)
    DaemonSettings(listen=ListenAddress("0.0.0.0", 8080))  # read-only needs no token
    DaemonSettings(listen=ListenAddress("0.0.0.0", 8080), portal_actions=True,
                   portal_token_file=tmp_path / "token")
    # On the command line: exit 2, naming the setting, no traceback.
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "reconciler"), "run", "--listen", "0.0.0.0:0",
         str(ROOT / "examples" / "greeter" / "00-supply-chain.yaml")],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env={**os.environ, "RECONCILER_DAEMON_PORTAL_ACTIONS": "true"})
    assert done.returncode == 2, done.stderr
    assert "daemon.portal_token_file" in done.stderr and "Traceback" not in done.stderr


def test_the_token_file_is_read_and_checked(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("  abc123\n")
    assert read_token(token) == "abc123"
    assert read_token(None) is None
    for text in ("", "  \n", "two words", "x" * 5000):
        token.write_text(text)
        with pytest.raises(InputError, match=r"daemon\.portal_token_file"):
            read_token(token)
    with pytest.raises(InputError, match=r"daemon\.portal_token_file"):
        read_token(tmp_path / "missing")


# --- the page itself -----------------------------------------------------------------------

def test_the_page_is_served_with_a_strict_content_security_policy(portal: Portal) -> None:
    with urllib.request.urlopen(portal.url + "/ui/", timeout=10) as response:
        page = response.read().decode()
        policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe" not in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert '<script type="module" src="/ui/portal.js">' in page
    for name in ("portal.js", "portal.css"):
        with urllib.request.urlopen(f"{portal.url}/ui/{name}", timeout=10) as response:
            assert response.status == 200
    assert get(portal, "/ui/../debug/objects")[0] == 404


def test_the_script_never_turns_data_into_markup() -> None:
    script = (STATIC / "portal.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function"):
        assert sink not in script, sink
    # Every <img>, <script> or handler the page could show comes from data, never the script.
    assert not re.search(r"createElement\((?!tag\))", script)


# --- reconciler serve -----------------------------------------------------------------------

def test_serve_mounts_the_read_only_portal_beside_the_api(tmp_path: Path) -> None:
    workload = tmp_path / "workload.yaml"
    workload.write_text(GREETER_WORKLOAD)
    with serving(tmp_path, str(ROOT / "examples" / "greeter" / "00-supply-chain.yaml"),
                 str(workload)) as served:
        context = ssl.create_default_context(cafile=None)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE

        def fetch(path: str) -> tuple[int, Any]:
            try:
                with urllib.request.urlopen(served.server + path, timeout=10,
                                            context=context) as response:
                    return response.status, json.loads(response.read())
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read()

        assert fetch("/api/v1/namespaces")[0] == 401  # the API still needs a token
        listed = wait_until("hello Ready on the portal", lambda: _ready(fetch))
        assert names(listed, "workloads") == ["default/hello"]
        code, answer = fetch("/ui/api/config")
        assert code == 200 and answer == {"actions": False, "live": True, "suspend_kinds": []}
        host = urlsplit(served.server).netloc
        request = urllib.request.Request(
            served.server + "/ui/api/actions/reconcile", method="POST",
            data=json.dumps({"kind": "Workload", "namespace": "default",
                             "name": "hello"}).encode(),
            headers={"Content-Type": "application/json", "Origin": f"https://{host}"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10, context=context)
        refused.value.close()
        assert refused.value.code == 403


def _ready(fetch: Any) -> dict[str, Any] | None:
    code, document = fetch("/ui/api/overview")
    if code == 200 and document["workloads"] and \
            document["workloads"][0]["ready"]["status"] == "True":
        return dict(document)
    return None


def test_serve_under_rbac_does_not_serve_the_portal(tmp_path: Path) -> None:
    with serving(tmp_path, "--rbac") as served:
        request = urllib.request.Request(served.server + "/ui/api/overview")
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10, context=context)
        refused.value.close()
        assert refused.value.code == 401  # as any path without a token


# --- where a stage's logs come from --------------------------------------------------------

def test_a_stage_logs_come_from_its_taskrun_the_latest_run_of_its_runnable_or_its_pipeline(
) -> None:
    env = load_environment("simulator")
    backend, clock = env.backend, env.clock
    assert isinstance(clock, VirtualClock)
    apply_inputs(backend, load_text(GREETER_CHAIN + "---" + GREETER_WORKLOAD, "g.yaml"))

    def run(kind: str, name: str, labels: dict[str, str], logs: dict[str, str]) -> None:
        spec = {"taskRef": {"name": "t"}} if kind == "TaskRun" else {"pipelineRef": {"name": "p"}}
        backend.apply({"apiVersion": "tekton.dev/v1", "kind": kind, "metadata": {
            "name": name, "namespace": "default", "labels": labels,
            "annotations": {views.LOGS_ANNOTATION: json.dumps(logs)}}, "spec": spec},
            field_manager="test")
        clock.advance(5)  # so the next run is created later

    run("TaskRun", "hello-tests-1", {views.RUNNABLE_LABEL: "hello-tests"}, {"unit": "old run"})
    run("TaskRun", "hello-tests-2", {views.RUNNABLE_LABEL: "hello-tests"}, {"unit": "new run"})
    run("PipelineRun", "hello-pr", {}, {})
    run("TaskRun", "hello-pr-build", {views.PIPELINE_RUN_LABEL: "hello-pr"}, {"build": "built"})
    run("TaskRun", "hello-pr-test", {views.PIPELINE_RUN_LABEL: "hello-pr"},
        {"test": "x" * (views.MAX_LOG_BYTES + 10) + "THE END"})
    owner = backend.get("carto.run/v1alpha1", "Workload", "default", "hello")
    assert owner is not None
    owner["status"] = {"supplyChainRef": {"kind": "ClusterSupplyChain", "name": "nope"},
                       "resources": [
        {"name": "tests", "stampedRef": {"apiVersion": "carto.run/v1alpha1", "kind": "Runnable",
                                         "namespace": "default", "name": "hello-tests"}},
        {"name": "pipeline", "stampedRef": {"apiVersion": "tekton.dev/v1",
                                            "kind": "PipelineRun", "name": "hello-pr"}},
        {"name": "single", "stampedRef": {"apiVersion": "tekton.dev/v1", "kind": "TaskRun",
                                          "namespace": "default", "name": "hello-tests-1"}},
    ]}
    backend.update_status(owner)

    def logs(stage: str) -> list[tuple[str, list[str]]]:
        found = views.stage_logs(backend, "Workload", "default", "hello", stage)
        assert found is not None
        return [(r["name"], [s["log"][-9:] for s in r["steps"]]) for r in found["runs"]]

    assert logs("tests") == [("hello-tests-2", ["new run"])]  # the Runnable's latest run
    assert logs("single") == [("hello-tests-1", ["old run"])]
    assert logs("pipeline") == [("hello-pr-build", ["built"]), ("hello-pr-test", ["xxTHE END"])]
    cut = views.stage_logs(backend, "Workload", "default", "hello", "pipeline")
    assert cut is not None and cut["truncated"] is True
    assert sum(len(s["log"].encode()) for r in cut["runs"] for s in r["steps"]) <= \
        views.MAX_LOG_BYTES + 8


DELIVERY = """
apiVersion: carto.run/v1alpha1
kind: ClusterTemplate
metadata: {name: app-config}
spec:
  template:
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: $(deliverable.metadata.name)$-deployed}
    data: {app: $(deliverable.metadata.name)$}
---
apiVersion: carto.run/v1alpha1
kind: ClusterDelivery
metadata: {name: deliver}
spec:
  selector: {app.example.com/deliver: "yes"}
  resources:
    - name: deployer
      templateRef: {kind: ClusterTemplate, name: app-config}
---
apiVersion: carto.run/v1alpha1
kind: Deliverable
metadata:
  name: shop
  namespace: default
  labels: {app.example.com/deliver: "yes"}
spec: {}
"""


def test_a_deliverable_is_listed_and_drawn_along_its_delivery() -> None:
    env = load_environment("simulator")
    _reconcile(env, load_text(DELIVERY, "delivery.yaml"), SimulateSettings(), None)
    portal = PortalApp(env.backend)
    listed = json.loads(portal.handle("GET", "/ui/api/overview", {}).body)
    assert names(listed, "deliverables") == ["default/shop"]
    assert listed["deliverables"][0]["blueprint"] == "deliver"
    assert listed["deliverables"][0]["ready"]["status"] == "True"
    path = json.loads(portal.handle("GET", "/ui/api/owners/Deliverable/default/shop", {}).body)
    [stage] = path["stages"]
    assert stage["name"] == "deployer" and stage["ready"]["status"] == "True"
    assert stage["stamped"]["name"] == "shop-deployed"


def _luminance(colour: str) -> float:
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(foreground: str, background: str) -> float:
    light, dark = sorted((_luminance(foreground), _luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_text_colours_pass_wcag_aa_contrast_on_their_backgrounds() -> None:
    css = (STATIC / "portal.css").read_text()
    colour = dict(re.findall(r"(--[a-z-]+):\s*(#[0-9a-fA-F]{6});", css))
    pairs = [("--fg", "--bg"), ("--muted", "--bg"), ("--muted", "--panel"), ("--link", "--bg"),
             ("--ok-fg", "--ok-bg"), ("--bad-fg", "--bad-bg"), ("--unk-fg", "--unk-bg"),
             ("--bad-fg", "--panel"), ("--fg", "--panel")]
    for fg, bg in pairs:
        assert contrast(colour[fg], colour[bg]) >= 4.5, (fg, bg)
    assert contrast("#e8eaed", "#1b1f24") >= 4.5  # logs
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
