"""Logging set-up (STYLE 7): the connection id on every line, text or JSON lines.

Every log record gets a ``conn`` attribute: the connection the running task serves.
Each connection's task is named after it once, when it starts (``name_connection``), and
the record factory reads the name back; code that logs needs to pass nothing. A task
has a name anyway, so this costs an idle connection nothing, where a context variable
set in every connection's task costs a new context mapping each (docs/benchmarks.md).

``configure`` installs a handler on the root logger writing either the classic text line
or one JSON object per line (for log shippers). Secrets are never logged in the first
place: log calls pass ids and codes, not payloads.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from typing import Any

__all__ = [
    "JsonFormatter",
    "configure",
    "connection_task_name",
    "current_connection",
    "install_record_factory",
    "name_connection",
]

_PREFIX = "conn-"

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [conn %(conn)s]: %(message)s"

_installed = False

serving: str | None = None
"""The connection whose frame is being handled outside any task of its own (the
AppWebsockets of the hub and the messages service handle frames in the transport's
callback, ``signaling.appwebsocket.transport``), else None."""


def connection_task_name(conn_id: int | str) -> str:
    """The name of a task that serves connection ``conn_id`` (``create_task(name=...)``)."""
    return f"{_PREFIX}{conn_id}"


def name_connection(conn_id: int | str) -> None:
    """The running task serves connection ``conn_id``: its log lines say so from now on."""
    task = asyncio.current_task()
    if task is not None:
        task.set_name(connection_task_name(conn_id))


def current_connection() -> str:
    """The connection being served, as text; ``"-"`` outside any."""
    if serving is not None:
        return serving
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no event loop in this thread
        return "-"
    name = task.get_name() if task is not None else ""
    return name[len(_PREFIX) :] if name.startswith(_PREFIX) else "-"


def install_record_factory() -> None:
    """Give every log record ``conn`` (idempotent)."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.conn = current_connection()
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
