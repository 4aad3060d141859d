"""The portal in a real browser (Debian's chromium through playwright-core): the lists, an
owner's path with every stage's state, a commit flowing through live, a failed stage's condition
and logs (markup in them shown as text), the namespace and label filters, the keyboard, and the
portal on `reconciler serve`. Screenshots go to test-artifacts/portal/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.apiserver.conftest import serving
from tests.conftest import ROOT
from tests.portal.conftest import XSS_LOG, Browser, Portal, wait_until
from tests.unit.kuttl_helpers import GREETER_WORKLOAD

STAGE = '.stage[data-stage="{}"]'


def open_portal(browser: Browser, portal: Portal, suffix: str = "") -> None:
    browser("goto", url=f"{portal.url}/ui/{suffix}")
    browser("wait", selector="#live", attr="data-live", value="live")


def test_lists_the_workloads_and_draws_each_path_with_every_stage_state(
    portal: Portal, browser: Browser
) -> None:
    open_portal(browser, portal)
    browser("wait", selector='#workloads tr[data-name="web"]', attr="data-ready", value="True")
    assert browser("texts", selector="#workloads tbody tr td:first-child") == ["web", "tested"]
    browser("wait", selector='#sources tr[data-name="web"]', attr="data-ready", value="True")

    browser("click", selector='#workloads a:text-is("web")')
    browser("wait", selector="#detail-title", text="Workload team-a/web")
    browser("wait", selector=STAGE.format("config"), attr="data-state", value="True")
    assert browser("texts", selector=".path .stage h3") == [
        "source-provider Ready", "config Ready"]
    assert [browser("attr", selector=STAGE.format(s), attr="data-state")
            for s in ("source-provider", "config")] == ["True", "True"]
    source = browser("text", selector=STAGE.format("source-provider"))
    assert "ClusterSourceTemplate git-source" in source
    assert "GitRepository team-a/web" in source
    revision = portal.repo.git("rev-parse", "HEAD")
    assert revision in browser("text", selector=STAGE.format("source-provider")
                               + ' [data-output="revision"]')
    assert "http://" in browser("text", selector=STAGE.format("source-provider")
                                + ' [data-output="url"]')
    assert revision in browser("text", selector=STAGE.format("config") + ' [data-output="config"]')
    assert browser("text", selector="#detail .owner-state").startswith("Ready")
    browser.screenshot("path")


def test_a_commit_flows_through_the_path_without_a_reload(
    portal: Portal, browser: Browser
) -> None:
    open_portal(browser, portal, "#/Workload/team-a/web")
    browser("wait", selector=STAGE.format("config"), attr="data-state", value="True")
    browser("eval", expression="window.__sameDocument = true")
    navigations = browser("navigations")

    commit = portal.repo.commit({"VERSION": "1.1.0\n"}, "v1.1.0")
    # The GitRepository polls (every virtual minute, a real second at 60x); the page learns of
    # every write over its event stream and redraws.
    browser("wait", selector=STAGE.format("config") + ' [data-output="config"]', text=commit)
    browser("wait", selector=STAGE.format("source-provider") + ' [data-output="revision"]',
            text=commit)
    browser("wait", selector='#sources tr[data-name="web"] td[data-revision]',
            attr="data-revision", value=f"main@sha1:{commit}")
    assert browser("text", selector='#sources tr[data-name="web"] td[data-revision]') == \
        f"main@sha1:{commit[:12]}…"
    assert browser("eval", expression="window.__sameDocument === true")  # no reload
    assert browser("navigations") == navigations
    browser.screenshot("new-revision")


def test_a_failed_stage_shows_its_condition_and_its_logs_as_text(
    portal: Portal, browser: Browser
) -> None:
    open_portal(browser, portal, "#/Workload/team-b/tested")
    browser("wait", selector=STAGE.format("tests"), attr="data-state", value="False")
    assert browser("attr", selector=STAGE.format("source-provider"), attr="data-state") == "True"
    stage = browser("text", selector=STAGE.format("tests"))
    assert "TaskRun team-b/tested-tests" in stage
    assert "exited with code 1" in stage  # the TaskRun's Succeeded=False message
    browser("wait", selector='#workloads tr[data-name="tested"]', attr="data-ready",
            value="False")
    assert browser("text", selector="#detail .owner-state").startswith("Not ready")

    browser("click", selector=STAGE.format("tests") + " button[aria-controls]")
    browser("wait", selector='pre[data-step="unit"]', text="FAIL: 2 != 3")
    assert browser("text", selector='pre[data-step="unit"]') == XSS_LOG  # shown, not run
    assert browser("eval", expression="window.__xss === undefined")
    assert browser("count", selector="#detail img, #detail script") == 0
    assert browser("attr", selector=STAGE.format("tests") + " button[aria-controls]",
                   attr="aria-expanded") == "true"
    browser.screenshot("failed-stage")
    browser("eval", expression="window.scrollTo(0, 0)")
    browser.screenshot("portal", full_page=False)  # docs/portal.png is one of these


def test_filters_by_namespace_and_label_selector(portal: Portal, browser: Browser) -> None:
    open_portal(browser, portal)
    browser("wait", selector='#workloads tr[data-name="tested"]')
    browser("wait", selector='#namespace option[value="team-b"]')
    browser("select", selector="#namespace", value="team-b")
    browser("wait", selector='#workloads tr[data-name="web"]', gone=True)
    assert browser("texts", selector="#workloads tbody tr td:first-child") == ["tested"]
    assert browser("texts", selector="#sources tbody tr td:first-child") == ["tested"]
    assert browser("eval", expression="location.search") == "?namespace=team-b"
    browser.screenshot("filter-namespace")

    browser("select", selector="#namespace", value="")
    browser("fill", selector="#selector", value="tier in (frontend)")
    browser("press", selector="#selector", value="Enter")
    browser("wait", selector='#workloads tr[data-name="tested"]', gone=True)
    assert browser("texts", selector="#workloads tbody tr td:first-child") == ["web"]

    browser("fill", selector="#selector", value="tier in (frontend")
    browser("press", selector="#selector", value="Enter")
    browser("wait", selector="#filter-error", text="cannot read")
    browser("fill", selector="#selector", value="")
    browser("press", selector="#selector", value="Enter")
    browser("wait", selector='#workloads tr[data-name="tested"]')


def test_the_keyboard_reaches_a_path_and_its_logs(portal: Portal, browser: Browser) -> None:
    open_portal(browser, portal)
    browser("wait", selector='#workloads tr[data-name="tested"]')
    browser("press", selector='#workloads a:text-is("tested")', value="Enter")
    browser("wait", selector=STAGE.format("tests"), attr="data-state", value="False")
    # Focus moved to the path: Tab goes on from it to the first control inside.
    assert browser("eval", expression="document.activeElement.id") == "detail"
    button = STAGE.format("tests") + " button[aria-controls]"
    browser("press", selector=button, value="Enter")
    browser("wait", selector='pre[data-step="unit"]', text="FAIL")
    # Every control has a name a screen reader can say.
    unnamed = browser("eval", expression="""[...document.querySelectorAll(
        'input, select, button, a[href]')].filter((e) => !(e.labels && e.labels.length)
        && !e.getAttribute('aria-label') && !e.textContent.trim()).length""")
    assert unnamed == 0


@pytest.mark.parametrize("action", ["reconcile"])
def test_an_action_button_posts_and_the_daemon_sees_it(
    portal: Portal, browser: Browser, action: str
) -> None:
    open_portal(browser, portal, "#/Workload/team-a/web")
    browser("wait", selector=f'#detail button[data-action="{action}"]')
    browser("click", selector=f'#detail button[data-action="{action}"]')
    browser("wait", selector="#action-status", text="Reconcile now Workload team-a/web: requested")

    def requested() -> str:
        loop, env = portal.daemon.loop, portal.daemon.env
        assert loop is not None and env is not None
        live = loop.read(lambda: env.backend.get("carto.run/v1alpha1", "Workload", "team-a",
                                                 "web"))
        return str(((live or {}).get("metadata") or {}).get("annotations", {}).get(
            "reconcile.fluxcd.io/requestedAt", ""))

    assert wait_until("the requestedAt annotation", requested)


def test_serve_shows_a_workload_applied_through_the_api_without_a_reload(
    tmp_path: Path, browser: Browser
) -> None:
    with serving(tmp_path, str(ROOT / "examples" / "greeter" / "00-supply-chain.yaml")) as served:
        browser("goto", url=f"{served.server}/ui/")  # its own self-signed certificate
        browser("wait", selector="#live", attr="data-live", value="live")
        browser("wait", selector="#workloads td.empty")
        browser("eval", expression="window.__sameDocument = true")
        code, _ = served.request(
            "POST", "/apis/carto.run/v1alpha1/namespaces/default/workloads",
            json.dumps(yaml.safe_load(GREETER_WORKLOAD)).encode(),
            {"Content-Type": "application/json"})
        assert code == 201
        browser("wait", selector='#workloads tr[data-name="hello"]', attr="data-ready",
                value="True")
        assert browser("eval", expression="window.__sameDocument === true")
        browser.screenshot("serve")


def test_a_source_is_suspended_and_resumed_from_its_row(portal: Portal, browser: Browser) -> None:
    open_portal(browser, portal, "?namespace=team-b")
    row = '#sources tr[data-name="tested"]'
    browser("wait", selector=f'{row} button[data-action="suspend"]')
    browser("click", selector=f'{row} button[data-action="suspend"]')
    # The write comes back over the event stream: the row now offers Resume.
    browser("wait", selector=f'{row} button[data-action="resume"]')
    browser("wait", selector="#action-status", text="Suspend GitRepository team-b/tested")
    browser("click", selector=f'{row} button[data-action="resume"]')
    browser("wait", selector=f'{row} button[data-action="suspend"]')


def test_a_phone_sized_window_scrolls_down_not_sideways(portal: Portal, browser: Browser) -> None:
    browser("viewport", width=390, height=844)
    try:
        open_portal(browser, portal, "#/Workload/team-b/tested")
        browser("wait", selector=STAGE.format("tests"), attr="data-state", value="False")
        wide = browser("eval", expression="""[...document.querySelectorAll('body *')]
            .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1
                    && !e.closest('.scroll, .lists section'))
            .slice(0, 5).map((e) => `${e.tagName}.${e.className}`)""")
        assert browser("eval", expression=(
            "document.documentElement.scrollWidth <= window.innerWidth")), \
            f"the page is wider than the window: {wide}"
        # One column: the path comes below the lists.
        assert browser("eval", expression=(
            "document.getElementById('detail').getBoundingClientRect().top > "
            "document.querySelector('.lists').getBoundingClientRect().bottom - 1"))
        browser.screenshot("phone")
    finally:
        browser("viewport", width=1400, height=900)
