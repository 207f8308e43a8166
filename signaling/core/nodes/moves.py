"""Registrations moving between switches (SCALE.md decision 7, docs 12.43): what a switch
remembers while a client resumes on it a registration another switch holds, and after one
of its own registrations moved away.

- A ``Register`` with a resume token this switch does not know waits for the cluster's
  snapshot of the token (``Recall``), and the connection's PbxSignal frames wait behind
  it (``Recalling``), so that they run as they would have on one switch: after it, in
  order.
- A registration that moved away leaves its new address behind for a while (the newest
  ``MOVED_KEPT``), so that a home that offers it a call before it heard of the move is
  told where the device is now rather than that it is gone.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from config import UserConfig

from ..messages import Inbound, Register
from .frames import DeviceMoved

__all__ = ["MOVED_KEPT", "Moves", "Recalling"]

MOVED_KEPT = 256


@dataclass(slots=True)
class Recalling:
    """A ``Register`` waiting for the snapshot of its resume token; ``later``: the
    connection's frames since, which run after it; ``number``: the ``Recall``'s."""

    conn: int
    inbound: Inbound
    request: Register
    user: UserConfig
    later: list[Inbound] = field(default_factory=list)
    number: int = 0


class Moves:
    def __init__(self) -> None:
        self._by_request: dict[int, Recalling] = {}
        self._by_conn: dict[int, Recalling] = {}
        self._moved: OrderedDict[int, DeviceMoved] = OrderedDict()

    def __len__(self) -> int:
        """Registers waiting for a snapshot."""
        return len(self._by_request)

    def wait(self, request: int, waiting: Recalling) -> None:
        waiting.number = request
        self._by_request[request] = self._by_conn[waiting.conn] = waiting

    def holds(self, conn: int, inbound: Inbound) -> bool:
        """Whether ``inbound`` waits: its connection's Register waits for a snapshot."""
        waiting = self._by_conn.get(conn) if self._by_conn else None
        if waiting is not None:
            waiting.later.append(inbound)
        return waiting is not None

    def answered(self, request: int) -> Recalling | None:
        """The Register the answer to ``request`` is for (None: answered already)."""
        waiting = self._by_request.pop(request, None)
        if waiting is not None:
            del self._by_conn[waiting.conn]
        return waiting

    def went(self, ref: int, moved: DeviceMoved) -> None:
        """Registration ``ref`` of this switch moved away, as ``moved`` says."""
        self._moved[ref] = moved
        if len(self._moved) > MOVED_KEPT:
            self._moved.popitem(last=False)

    def where(self, ref: int) -> DeviceMoved | None:
        """Where registration ``ref`` went, if it moved away lately."""
        return self._moved.get(ref)
