"""Routing a library's stdlib `logging` records into structlog, so `--log-format json` output
stays one JSON object per line even when APScheduler has something to say."""

from __future__ import annotations

import logging

import structlog


class StructlogHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            structlog.get_logger(record.name).log(record.levelno, record.getMessage())
        except Exception:
            self.handleError(record)


def route_to_structlog(logger_name: str, level: int = logging.WARNING) -> None:
    """Send `logger_name`'s records at `level` and above through structlog, and only there."""
    logger = logging.getLogger(logger_name)
    logger.handlers = [StructlogHandler()]
    logger.propagate = False
    logger.setLevel(level)
