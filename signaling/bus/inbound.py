"""What one node reads from its inbox stream: entries checked, numbered, handed over.

Each entry names its sender's run and carries a number per (sender, target). A number
already seen is a copy left by a pipeline the sender resent: dropped. A number that
skips is entries lost (trimmed while this node was behind, or lost by Redis): the calls
with that sender can no longer be trusted, so they end as if the sender had died
(``node_down``), and what follows is taken as new. Entries of runs declared dead are
dropped: their calls here ended already. A malformed entry, or one the switch raises on,
costs that entry only: it is logged and counted, and the reader goes on. Marker entries
(``m``), which a run writes to make its inbox exist, are skipped.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Protocol

from signaling.core.nodes.frames import NodeFrame

from .codec import decode_frames
from .errors import BadFrame
from .stats import BusStats

__all__ = ["Inbound", "Receiver"]

log = logging.getLogger(__name__)


class Receiver(Protocol):
    def from_nodes(self, sender: str, frames: list[NodeFrame]) -> None: ...

    def node_down(self, address: str) -> None: ...


class Inbound:
    def __init__(
        self,
        peer: Receiver,
        stats: BusStats,
        dead: Callable[[str], bool],
        cut_off: Callable[[str], None] | None = None,
    ) -> None:
        """``cut_off``: end the calls with a sender whose entries went missing (the
        peer's ``node_down`` unless given)."""
        self._peer = peer
        self._stats = stats
        self._dead = dead
        self._cut_off = cut_off or peer.node_down
        self._numbers: dict[str, int] = {}
        """The last entry number read per sender."""

    def forget(self, sender: str) -> None:
        self._numbers.pop(sender, None)

    def entry(self, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        if b"m" in fields:
            return
        stats = self._stats
        try:
            sender = fields[b"n"].decode()
            number = int(fields[b"s"])
            frames = decode_frames(fields[b"f"])
        except (KeyError, ValueError, UnicodeDecodeError, BadFrame) as exc:
            stats.bad_entries += 1
            log.error("cluster: dropped a malformed inbox entry %r: %s", entry_id, exc)
            return
        if self._dead(sender):
            return
        last = self._numbers.get(sender, 0)
        if number <= last:
            return  # a resent pipeline's copy
        self._numbers[sender] = number
        if number != last + 1:
            stats.gaps += 1
            log.error(
                "cluster: entries %d to %d from %s are missing; its calls here end",
                last + 1,
                number - 1,
                sender,
            )
            self._handle(sender, lambda: self._cut_off(sender))
        stats.entries_in += 1
        stats.frames_in += len(frames)
        with contextlib.suppress(ValueError):
            stats.lag_ms = time.time() * 1000 - int(entry_id.split(b"-")[0])
        self._handle(sender, lambda: self._peer.from_nodes(sender, frames))

    def _handle(self, sender: str, run: Callable[[], None]) -> None:
        try:
            run()
        except Exception:
            self._stats.bad_entries += 1
            log.exception("cluster: internal error handling an entry from %s", sender)
