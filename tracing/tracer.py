"""The trace: flags per subsystem, an optional filter, a bounded ring of records, and an
optional rotating file (PROTOCOL §10.1; STYLE 6).

Theory of operation. Every subsystem has a flag, an attribute of the ``Tracer`` that
its code tests before it builds anything (``if tracer.pbx: tracer.record(...)``), so a
flag that is off costs one attribute read. A record carries its time, subsystem,
connection, user and tenant and a redacted, shortened text (``redact``); it goes to a
ring of ``trace.buffer`` records, numbered so that readers fetch what came after the
last number they saw, and to ``trace.file`` when one is set. The filter (an extension)
keeps only records of one user or one tenant.

Redaction is paid when a record is read, not when it is made. A ring is read rarely
(an operator polls a page) and written on every traced frame: with the ``appwebsocket``
flag on, as it is by default, every Post a hub sends its messages service, where
``redact`` was 3.7 of a record's 4.4 µs. So a text of up to ``RAW_MAX`` characters is
kept as it came (a reference: the frame's own string) and redacted on the way out of
every reader (``since``, ``text``, ``records_json``); a longer one is redacted and cut at
once, so that the ring never holds more than ``RAW_MAX`` characters a record. With a
file, every record is written redacted as it is made, and kept so.

Flags change at run time through ``set_flags`` (the admin routes); nothing else needs
telling, since every check reads the attribute at the moment it traces.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any, NamedTuple

from .redact import redact

__all__ = ["RAW_MAX", "SUBSYSTEMS", "TraceFilter", "TraceRecord", "Tracer"]

SUBSYSTEMS = ("pbx", "http", "app", "database", "appwebsocket", "signalling", "browser")
"""The flags, as PROTOCOL §10.1 names them."""


RAW_MAX = 1024
"""Characters of a text kept unredacted until it is read; a longer one is redacted and
cut when it is recorded (the ring's memory stays bounded: ``trace.buffer`` times this)."""


class TraceRecord(NamedTuple):
    """One record as readers see it: its text redacted and cut (``redact``). A named
    tuple: made for every traced frame, in a third of a frozen dataclass's time."""

    seq: int
    time: float
    subsystem: str
    text: str
    conn: int | None = None
    user: str | None = None
    domain: str | None = None

    def line(self) -> str:
        """One line of the text download and of the file."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.time))
        millis = int(self.time * 1000) % 1000
        who = f"{self.user or '-'}@{self.domain or '-'}"
        conn = "-" if self.conn is None else str(self.conn)
        return f"{stamp}.{millis:03d}Z {self.seq} {self.subsystem} conn={conn} {who} {self.text}"


class _Kept(NamedTuple):
    """A record in the ring: ``text`` as it came unless ``shown`` (already redacted)."""

    seq: int
    time: float
    subsystem: str
    text: str
    conn: int | None
    user: str | None
    domain: str | None
    shown: bool

    def public(self) -> TraceRecord:
        text = self.text if self.shown else redact(self.text)
        return TraceRecord(
            self.seq, self.time, self.subsystem, text, self.conn, self.user, self.domain
        )


@dataclass(frozen=True, slots=True)
class TraceFilter:
    """Only records of this user (and/or tenant); empty fields match everything."""

    user: str = ""
    domain: str = ""

    def admits(self, user: str | None, domain: str | None) -> bool:
        if self.user and user != self.user:
            return False
        return not (self.domain and domain != self.domain)


class Tracer:
    __slots__ = (
        "_file",
        "_records",
        "_seq",
        "app",
        "appwebsocket",
        "boot",
        "browser",
        "clock",
        "database",
        "filter",
        "http",
        "on_change",
        "pbx",
        "signalling",
    )

    def __init__(
        self,
        *,
        flags: Iterable[str] = (),
        buffer: int = 10_000,
        file: Path | None = None,
        file_max: int = 10 * 1024 * 1024,
        file_count: int = 3,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.pbx = self.http = self.app = self.database = False
        self.appwebsocket = self.signalling = self.browser = False
        self.filter = TraceFilter()
        self.clock = clock
        self._records: deque[_Kept] = deque(maxlen=max(1, buffer))
        self._seq = itertools.count(1)
        self.boot = secrets.token_hex(4)
        """Differs after every start: a reader holding a ``since`` from before a restart
        sees a new ``boot`` and starts again from 0."""
        self._file: logging.Logger | None = None
        self.on_change: list[Callable[[dict[str, bool]], None]] = []
        """Called with the flags after every ``set_flags``."""
        if file is not None:
            self._file = _file_logger(file, file_max, file_count)
        self.set_flags(dict.fromkeys(flags, True))

    # -- switching -------------------------------------------------------------------------

    def flags(self) -> dict[str, bool]:
        return {name: bool(getattr(self, name)) for name in SUBSYSTEMS}

    def set_flags(self, changes: Mapping[str, bool]) -> None:
        """Switch flags at once; unknown names are a ValueError (nothing is changed)."""
        unknown = sorted(set(changes) - set(SUBSYSTEMS))
        if unknown:
            raise ValueError(f"unknown trace flag(s): {', '.join(unknown)}")
        for name, on in changes.items():
            setattr(self, name, bool(on))
        flags = self.flags()
        for listener in self.on_change:
            listener(flags)

    def state(self) -> dict[str, Any]:
        """What ``GET /admin/trace`` answers."""
        return {"flags": self.flags(), "filter": asdict(self.filter)}

    # -- recording -------------------------------------------------------------------------

    def record(
        self,
        subsystem: str,
        text: str,
        *,
        conn: int | None = None,
        user: str | None = None,
        domain: str | None = None,
    ) -> None:
        """Keep one record. Call it only when the subsystem's flag is on."""
        if not self.filter.admits(user, domain):
            return
        shown = self._file is not None or len(text) > RAW_MAX
        if shown:
            text = redact(text)
        kept = _Kept(next(self._seq), self.clock(), subsystem, text, conn, user, domain, shown)
        self._records.append(kept)
        if self._file is not None:
            self._file.info("%s", kept.public().line())

    def since(self, seq: int, limit: int = 1000) -> list[TraceRecord]:
        """Records numbered above ``seq``, oldest first, at most ``limit``."""
        found = [kept for kept in self._records if kept.seq > seq]
        return [kept.public() for kept in found[:limit]]

    def text(self) -> str:
        """The whole buffer, a line a record (``GET /admin/trace/download``)."""
        return "".join(kept.public().line() + "\n" for kept in self._records)

    def records_json(self, seq: int, limit: int = 1000) -> dict[str, Any]:
        records = self.since(seq, limit)
        last = records[-1].seq if records else seq
        first = self._records[0].seq if self._records else 0
        return {
            "records": [record._asdict() for record in records],
            "last": last,
            "first": first,  # above since + 1: records were overwritten before being read
            "boot": self.boot,
        }


def _file_logger(path: Path, max_bytes: int, count: int) -> logging.Logger:
    """A private logger writing bare lines to a rotating file, never to the root log."""
    path.parent.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger(f"switchboard.trace.file.{path.resolve()}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = RotatingFileHandler(path, maxBytes=max_bytes, backupCount=count, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.handlers[:] = [handler]
    return logger
