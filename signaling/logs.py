"""Logging set-up (STYLE 7): the connection id on every line, text or JSON lines.

Every log record gets a ``conn`` attribute from the ``CONNECTION`` context variable,
which each connection's task sets once when it starts; code that logs needs to pass
nothing. ``configure`` installs a handler on the root logger writing either the
classic text line or one JSON object per line (for log shippers). Secrets are never
logged in the first place: log calls pass ids and codes, not payloads.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import Any

__all__ = ["CONNECTION", "JsonFormatter", "configure", "install_record_factory"]

CONNECTION: contextvars.ContextVar[str] = contextvars.ContextVar("connection", default="-")
"""The connection the current task serves (``"-"`` outside any)."""

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [conn %(conn)s]: %(message)s"

_installed = False


def install_record_factory() -> None:
    """Give every log record ``conn`` (idempotent)."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.conn = CONNECTION.get()
        return record

    logging.setLogRecordFactory(factory)
    _installed = True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, conn, message (and the error)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "conn": getattr(record, "conn", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(log_format: str = "text", level: int = logging.INFO) -> None:
    """The root logger writes to stderr as ``text`` or ``json``."""
    install_record_factory()
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
