"""What one node reads from its inbox stream: entries checked, numbered, handed over.

Each entry names its sender's run and carries a number per (sender, target). A number
already seen is a copy left by a pipeline the sender resent: dropped. A number that
skips is entries lost (trimmed while this node was behind, or lost by Redis): the calls
with that sender can no longer be trusted, so they end as if the sender had died
(``node_down``), and what follows is taken as new. Entries of runs declared dead are
dropped: their calls here ended already. A malformed entry, or one the switch raises on,
costs that entry only: it is logged and counted, and the reader goes on. Marker entries
(``m``), which a run writes to make its inbox exist, are skipped.

A *reset* (``r``: the sender's epoch) says that the sender fenced itself and came back
(``fence``): the calls with it end here (``came_back``), and its entries are numbered from
1 again. The epoch heard last from each sender goes on every entry sent back to it
(``heard``, read by ``Outbound``). After this run fenced itself, the entries of a run it
cut off that carry an older epoch than this run's (``expect``) were written before that
run heard of it, for the calls that ended: they are dropped (``stale``).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable
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
        came_back: Callable[[str], None] | None = None,
    ) -> None:
        """``cut_off``: end the calls with a sender whose entries went missing (the
        peer's ``node_down`` unless given); ``came_back``: end the calls with a sender
        that fenced itself and came back (the same unless given)."""
        self._peer = peer
        self._stats = stats
        self._dead = dead
        self._cut_off = cut_off or peer.node_down
        self._came_back = came_back or peer.node_down
        self._numbers: dict[str, int] = {}
        """The last entry number read per sender."""
        self.heard: dict[str, int] = {}
        """The epoch of each sender's last reset."""
        self._expected: dict[str, int] = {}
        """Senders this run cut off when it fenced itself: the epoch their entries need."""

    def forget(self, sender: str) -> None:
        self._numbers.pop(sender, None)
        self.heard.pop(sender, None)
        self._expected.pop(sender, None)

    def senders(self) -> set[str]:
        """The runs this run has read entries from."""
        return set(self._numbers)

    def expect(self, senders: Iterable[str], epoch: int) -> None:
        """This run fenced itself (its ``epoch``): what ``senders`` wrote before they
        heard of it is dropped."""
        for sender in senders:
            self._expected[sender] = epoch

    def entry(self, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        if b"m" in fields:
            return
        stats = self._stats
        try:
            sender = fields[b"n"].decode()
            reset = int(fields.get(b"r", 0))
            if not reset:
                number = int(fields[b"s"])
                epoch = int(fields.get(b"e", 0))
                frames = decode_frames(fields[b"f"])
        except (KeyError, ValueError, UnicodeDecodeError, BadFrame) as exc:
            stats.bad_entries += 1
            log.error("cluster: dropped a malformed inbox entry %r: %s", entry_id, exc)
            return
        if self._dead(sender):
            return
        if reset:
            self._reset(sender, reset)
            return
        last = self._numbers.get(sender, 0)
        if number <= last:
            return  # a resent pipeline's copy
        self._numbers[sender] = number
        if self._expected and epoch < self._expected.get(sender, 0):
            stats.stale += 1  # about calls that ended when this run fenced itself
            return
        if number != last + 1:
            self._gap(sender, last, number)
        stats.entries_in += 1
        stats.frames_in += len(frames)
        with contextlib.suppress(ValueError):
            stats.lag_ms = time.time() * 1000 - int(entry_id.split(b"-")[0])
        self._handle(sender, lambda: self._peer.from_nodes(sender, frames))

    def _gap(self, sender: str, last: int, number: int) -> None:
        self._stats.gaps += 1
        log.error(
            "cluster: entries %d to %d from %s are missing; its calls here end",
            last + 1,
            number - 1,
            sender,
        )
        self._handle(sender, lambda: self._cut_off(sender))

    def _reset(self, sender: str, epoch: int) -> None:
        """``sender`` fenced itself and came back; a copy (a resent pipeline) or an
        older reset changes nothing."""
        if epoch <= self.heard.get(sender, 0):
            return
        self.heard[sender] = epoch
        self._numbers.pop(sender, None)
        self._stats.resets += 1
        log.warning(
            "cluster: node run %s fenced itself and is back; the calls with it end here", sender
        )
        self._handle(sender, lambda: self._came_back(sender))

    def _handle(self, sender: str, run: Callable[[], None]) -> None:
        try:
            run()
        except Exception:
            self._stats.bad_entries += 1
            log.exception("cluster: internal error handling an entry from %s", sender)
