"""The portal's time to first render with N workloads, against the JSON API alone.

The daemon runs in this process (`reconciler.daemon.Daemon`) over N greeter workloads (no Git);
once all are Ready it measures, R times each:
- the baseline: `GET /ui/api/overview` alone (server time and transfer, as a script would see it);
- the page: chromium (Debian's, through playwright-core; `bash scripts/playwright.sh` installs
  it) loads `/ui/` and the page's own `performance.mark("portal-first-render")` says when the
  first overview was fetched and drawn (from navigation start: HTML, script, config, overview,
  N table rows);
- one owner's path drawn after its link is clicked (the page's `portal-path` measure: from the
  hashchange to the path and its events drawn), with the owner and events API calls alone as
  its baseline.

    .venv/bin/python benchmarks/portal_render.py [N] [REPEATS]     (default: 1000 5)
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from greeter_fleet import objects

from reconciler.daemon import Daemon
from reconciler.observability.logging import configure_logging
from reconciler.settings import DaemonSettings, ListenAddress

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.portal.conftest import Browser, browser_missing  # noqa: E402

ANY = ListenAddress("127.0.0.1", 0)


def settle(daemon: Daemon, n: int, limit: float = 900.0) -> float:
    started = time.monotonic()
    get = daemon.metrics.registry.get_sample_value
    while (get("reconciler_workloads", {"ready": "True"}) or 0) < n:
        if time.monotonic() - started > limit:
            raise SystemExit(f"not settled after {limit:g}s")
        time.sleep(0.2)
    assert daemon.loop is not None
    while not daemon.loop.driver.wait_idle(1.0):
        pass
    return time.monotonic() - started


def ms(values: list[float]) -> str:
    return (f"median {statistics.median(values):7.1f} ms  min {min(values):7.1f}  "
            f"max {max(values):7.1f}")


def main(n: int, repeats: int) -> None:
    configure_logging("warning")
    missing = browser_missing()
    if missing:
        raise SystemExit(f"no browser: {missing}")
    with tempfile.TemporaryDirectory(prefix="portal-render-") as scratch:
        settings = DaemonSettings(listen=ANY, artifacts_listen=ANY, tick_seconds=0.1,
                                  data_dir=Path(scratch) / "data")
        with Daemon(objects(n), settings) as daemon:
            took = settle(daemon, n)
            assert daemon.operations is not None
            url = daemon.operations.url
            print(f"{n} workloads Ready in {took:.1f}s; portal at {url}/ui/")

            api, size = [], 0
            for _ in range(repeats):
                started = time.perf_counter()
                with urllib.request.urlopen(f"{url}/ui/api/overview", timeout=60) as response:
                    size = len(response.read())
                api.append((time.perf_counter() - started) * 1000)
            print(f"baseline GET /ui/api/overview ({size / 1024:.0f} KiB): {ms(api)}")
            for what in ("owners", "events"):
                times = []
                for _ in range(repeats):
                    started = time.perf_counter()
                    with urllib.request.urlopen(f"{url}/ui/api/{what}/Workload/default/hello-0",
                                                timeout=60) as response:
                        response.read()
                    times.append((time.perf_counter() - started) * 1000)
                print(f"baseline GET /ui/api/{what}/Workload/default/hello-0: {ms(times)}")

            browser = Browser()
            try:
                first, path = [], []
                for _ in range(repeats):
                    browser("goto", url=f"{url}/ui/")
                    browser("wait", selector=f'#workloads tr[data-name="hello-{n - 1}"]')
                    rows = browser("count", selector="#workloads tbody tr")
                    assert rows == n, f"{rows} rows drawn, not {n}"
                    first.append(float(browser("eval", expression=(
                        "performance.getEntriesByName('portal-first-render')[0].startTime"))))
                    browser("click", selector='#workloads a:text-is("hello-0")')
                    browser("wait", selector='.stage[data-stage="greeting"]')
                    path.append(float(browser("eval", expression=(
                        "performance.getEntriesByName('portal-path').at(-1).duration"))))
                print(f"page: first render with {n} rows (from navigation): {ms(first)}")
                print(f"page: a path drawn after its link is clicked (hashchange to drawn): "
                      f"{ms(path)}")
            finally:
                browser.close()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000,
         int(sys.argv[2]) if len(sys.argv) > 2 else 5)
