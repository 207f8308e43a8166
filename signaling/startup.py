"""Start-up failures told in one line: which setting, and why.

An operator who starts ``switchboard serve`` with a database that does not exist, an
unreachable port or a malformed value needs the name of the setting to fix and the
reason, not a traceback of the ORM. ``StartupFailure`` is that line. Components report
what they cannot use as ``ConfigError`` naming their setting (the messages service names
``messages.database``); a file the server cannot write in its data directory is
``server.data_dir``. Anything else that fails during start-up is a bug and keeps its
traceback.

``HeldLog`` keeps the log records written while the app starts up: they are written out
once the server is ready (or failed in a way that needs the traceback), and dropped when
the failure is one of ours, whose single line already says what they would.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from logging.handlers import BufferingHandler
from pathlib import Path

from config import ConfigError
from signaling.bus.errors import BusError

__all__ = ["HeldLog", "StartupFailure", "startup_failure"]


@dataclass(frozen=True)
class StartupFailure:
    setting: str
    reason: str

    def line(self) -> str:
        return f"switchboard: cannot start: {self.setting}: {self.reason}"


def startup_failure(exc: BaseException, data_dir: Path) -> StartupFailure | None:
    """The setting and reason behind ``exc``, or None when it is not a start-up
    failure an operator can fix (a bug: keep the traceback)."""
    if isinstance(exc, ConfigError):
        return StartupFailure(exc.where, _one_line(exc.problem))
    if isinstance(exc, BusError):
        return StartupFailure(exc.setting, _one_line(str(exc)))
    if isinstance(exc, OSError) and exc.filename is not None and _inside(exc.filename, data_dir):
        reason = f"{(exc.strerror or str(exc)).lower()}: {exc.filename}"
        return StartupFailure("server.data_dir", _one_line(reason))
    return None


def _inside(filename: object, folder: Path) -> bool:
    try:
        Path(str(filename)).resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def _one_line(text: str) -> str:
    return " ".join(text.split())


class HeldLog:
    """Holds every record the root logger gets until ``release`` or ``discard``."""

    def __init__(self) -> None:
        self._root = logging.getLogger()
        self._handlers = list(self._root.handlers)
        self._held = BufferingHandler(capacity=1 << 30)
        self._root.handlers[:] = [self._held]

    def release(self) -> None:
        """Back to the real handlers, after writing what was held to them."""
        if self._root.handlers != [self._held]:
            return
        self._root.handlers[:] = self._handlers
        for record in self._held.buffer:
            for handler in self._handlers:
                if record.levelno >= handler.level:
                    handler.handle(record)
        self._held.buffer.clear()

    def discard(self) -> None:
        """Back to the real handlers; what was held is dropped."""
        if self._root.handlers == [self._held]:
            self._root.handlers[:] = self._handlers
        self._held.buffer.clear()
