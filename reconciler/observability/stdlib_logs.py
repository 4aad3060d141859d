"""Routing a library's stdlib `logging` records into structlog, so `--log-format json` output
stays one JSON object per line even when APScheduler has something to say."""

from __future__ import annotations

import logging

import structlog

# APScheduler warns each time a tick is due while the previous one still runs. The daemon asks
# for exactly that (one instance, missed ticks coalesced; the first tick waits for the queues'
# first pass), so it is debug, not a warning.
_EXPECTED = ("maximum number of running instances reached",)


class StructlogHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            level = record.levelno
            if any(text in message for text in _EXPECTED):
                level = logging.DEBUG
            if level >= (logging.getLogger(record.name).getEffectiveLevel() or 0):
                structlog.get_logger(record.name).log(level, message)
        except Exception:
            self.handleError(record)


def route_to_structlog(logger_name: str, level: int = logging.WARNING) -> None:
    """Send `logger_name`'s records at `level` and above through structlog, and only there."""
    logger = logging.getLogger(logger_name)
    logger.handlers = [StructlogHandler()]
    logger.propagate = False
    logger.setLevel(level)
