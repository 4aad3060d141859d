"""structlog, configured once per process; context is bound per unit of work.

Two renderings of the same events:
- console (the default): `TIMESTAMP [level] message [logger] key=value ...`, for people;
- JSON (`--log-format json`), one object per line with the keys log pipelines built for
  controller-runtime and Flux expect: `ts` (RFC 3339, UTC), `level`, `msg`, `logger` (the
  module that logged), then the event's own keys. Every line logged during a reconcile also
  carries `controller`, `name`, `namespace` and `reconcileID` (a UUID per reconcile), bound by
  `engine/runner.reconcile_once` through `structlog.contextvars`.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

# The keys a JSON line starts with, in this order; the event's own keys follow.
JSON_FIRST_KEYS = ("ts", "level", "msg", "logger")


class NamedPrintLogger(structlog.PrintLogger):
    """A `PrintLogger` that knows the name it was asked for (`get_logger(__name__)`)."""

    def __init__(self, file: TextIO | None = None, name: str = "") -> None:
        super().__init__(file)
        self.name = name


class NamedPrintLoggerFactory:
    """One `NamedPrintLogger` per name, writing to `file` (stderr when it is created)."""

    def __init__(self, file: TextIO | None = None) -> None:
        self._file = file
        self._loggers: dict[str, NamedPrintLogger] = {}

    def __call__(self, *args: Any) -> NamedPrintLogger:
        name = str(args[0]) if args and args[0] is not None else ""
        logger = self._loggers.get(name)
        if logger is None:
            logger = self._loggers[name] = NamedPrintLogger(self._file or sys.stderr, name)
        return logger


def add_logger_name(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    name = getattr(logger, "name", "")
    if name and "logger" not in event_dict:
        event_dict["logger"] = name
    return event_dict


def order_json_keys(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """`ts`, `level`, `msg`, `logger` first, so a line reads the same way every time."""
    first = {key: event_dict.pop(key) for key in JSON_FIRST_KEYS if key in event_dict}
    return {**first, **event_dict}


def configure_logging(level: str = "warning", json_output: bool = False,
                      file: TextIO | None = None) -> None:
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.WARNING)
    processors: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        add_logger_name,
    ]
    if json_output:
        processors += [
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("msg"),
            order_json_keys,
            structlog.processors.JSONRenderer(),
        ]
    else:
        processors += [
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.dev.ConsoleRenderer(colors=False),
        ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=NamedPrintLoggerFactory(file),
        cache_logger_on_first_use=False,
    )
