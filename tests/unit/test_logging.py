"""Logs: JSON lines with the keys operators' pipelines expect (ts, level, msg, logger) and, during
a reconcile, controller, name, namespace and reconcileID; the console rendering for people."""

from __future__ import annotations

import io
import json
import logging
import re
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import pytest
import structlog

from reconciler.engine.runner import reconcile_once
from reconciler.model.errors import Transient
from reconciler.model.objects import Obj
from reconciler.observability.logging import configure_logging
from reconciler.observability.stdlib_logs import route_to_structlog

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


@pytest.fixture
def output() -> Iterator[io.StringIO]:
    saved = structlog.get_config()
    stream = io.StringIO()
    try:
        yield stream
    finally:
        structlog.configure(**saved)
        structlog.contextvars.clear_contextvars()


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


class Chatty:
    """A controller that logs during its reconcile, then returns or raises."""

    name = "workload-controller"

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    def watches(self) -> Sequence[tuple[str, str]]:
        return [("carto.run/v1alpha1", "Workload")]

    def reconcile(self, obj: Obj) -> float | None:
        structlog.get_logger("reconciler.engine.owner").info("owner status written")
        if self.error is not None:
            raise self.error
        return None


def test_json_lines_start_with_ts_level_msg_logger(output: io.StringIO) -> None:
    configure_logging("info", json_output=True, file=output)
    log = structlog.get_logger("reconciler.daemon.service")
    log.info("daemon started", environment="simulator")
    log.debug("not at info")
    log.warning("something odd", count=2)
    first, second = lines(output)
    assert list(first) == ["ts", "level", "msg", "logger", "environment"]
    assert first["level"] == "info" and first["msg"] == "daemon started"
    assert first["logger"] == "reconciler.daemon.service"
    assert RFC3339.match(first["ts"]), first["ts"]
    assert datetime.fromisoformat(first["ts"]).utcoffset() is not None  # zoned: UTC
    assert "event" not in first and "timestamp" not in first
    assert (second["level"], second["msg"], second["count"]) == ("warning", "something odd", 2)


def test_json_exception_is_a_string_on_its_line(output: io.StringIO) -> None:
    configure_logging("info", json_output=True, file=output)
    try:
        raise ValueError("boom")
    except ValueError:
        structlog.get_logger("reconciler.daemon.loop").exception("reconcile tick failed")
    [line] = lines(output)
    assert line["level"] == "error" and line["msg"] == "reconcile tick failed"
    assert "ValueError: boom" in line["exception"]


def test_a_library_routed_through_structlog_keeps_its_logger_name(output: io.StringIO) -> None:
    configure_logging("info", json_output=True, file=output)
    route_to_structlog("test-library")
    logging.getLogger("test-library.scheduler").warning("job missed")
    [line] = lines(output)
    assert (line["logger"], line["level"], line["msg"]) == \
        ("test-library.scheduler", "warning", "job missed")


def test_every_line_of_a_reconcile_carries_its_object_and_reconcile_id(
    output: io.StringIO
) -> None:
    configure_logging("info", json_output=True, file=output)
    obj: Obj = {"apiVersion": "carto.run/v1alpha1", "kind": "Workload",
                "metadata": {"name": "app", "namespace": "team"}}
    key = ("carto.run", "Workload", "team", "app")
    reconcile_once(Chatty(), obj, key, None)
    reconcile_once(Chatty(Transient("Unreachable", "reset")), obj, key, None)
    reconcile_once(Chatty(KeyError("bug")), obj, key, None)
    structlog.get_logger("reconciler.daemon.loop").info("after")
    logged = lines(output)
    assert [line["msg"] for line in logged] == [
        "owner status written", "owner status written", "reconcile failed",
        "owner status written", "reconcile crashed", "after"]
    during = logged[:-1]
    for line in during:
        assert (line["controller"], line["namespace"], line["name"]) == \
            ("workload-controller", "team", "app"), line
        assert uuid.UUID(line["reconcileID"])
    ids = [line["reconcileID"] for line in during]
    assert ids[0] != ids[1] == ids[2] != ids[3] == ids[4] != ids[0]  # one per reconcile
    assert logged[1]["logger"] == "reconciler.engine.owner"
    assert logged[2]["logger"] == "reconciler.engine.runner"
    assert "KeyError" in logged[4]["traceback"]
    # Nothing is left bound once the reconcile is over.
    assert not {"controller", "name", "namespace", "reconcileID"} & set(logged[-1])


def test_console_lines_stay_readable(output: io.StringIO) -> None:
    configure_logging("info", file=output)
    obj: Obj = {"apiVersion": "carto.run/v1alpha1", "kind": "Workload",
                "metadata": {"name": "app", "namespace": "team"}}
    reconcile_once(Chatty(), obj, ("carto.run", "Workload", "team", "app"), None)
    [line] = output.getvalue().splitlines()
    assert line.startswith(str(datetime.now().year))
    assert "[info" in line and "owner status written" in line
    assert "[reconciler.engine.owner]" in line
    assert "controller=workload-controller" in line and "name=app" in line
    assert "reconcileID=" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)
