"""A node that cannot renew its lease stops its work with the other nodes before they can
declare it dead (SCALE.md decision 5 and "Failures"; docs/protocol.md 12.39).

Theory of operation: the others declare a run dead once its lease has been missing for two
of their heartbeats, so never before ``lease`` plus two heartbeats after its last renewal
reached Redis (14 s by default). The run itself *fences* ``lease - heartbeat`` after it
sent its last renewal that worked (8 s by default): before its lease can even run out, and
three heartbeats before anyone may declare it dead. A renewal cannot have reached Redis
before it was sent, so no clocks are compared; a stalled event loop fences late at worst.

The states, and what moves a run between them (``TABLE``):

- ``UP``: the lease is renewed within the bound; the run works with the others.
- ``FENCED`` (``lapsed``: the bound passed without a renewal that worked): the run has ended
  its calls with every other run (as their ``node_down`` would), sends nothing to them and
  reads nothing from them, sets up new calls with its own devices only, and keeps what it
  must write to Redis (registrations, presence, claims) until it can. Its own clients stay.
- ``DEAD`` (``declared_dead``: Redis answered, and the others had declared it dead, or a
  new run holds its name): it stays so until it is restarted.

From ``FENCED`` a renewal that works (``renewed``: the lease still its own, or run out but
nobody declared the run dead) brings it back ``UP``. The others never ended the calls it
ended, so it tells each run it cut off, by a *reset* entry in that run's inbox, which ends
them there too (its users' presence there stands: it kept it). Each fence has a number, the
run's *epoch*, carried by the reset; a run that heard a reset puts its epoch on every entry
it sends back, and the fenced run drops the entries written before that (``Inbound``), which
belong to the calls that ended. Then it writes its state again as after a Redis restart.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable

__all__ = ["TABLE", "Fence", "Standing"]

log = logging.getLogger(__name__)


class Standing(enum.Enum):
    UP = "up"
    FENCED = "fenced"
    DEAD = "dead"


TABLE: dict[tuple[Standing, str], Standing] = {
    (Standing.UP, "renewed"): Standing.UP,
    (Standing.UP, "lapsed"): Standing.FENCED,
    (Standing.UP, "declared_dead"): Standing.DEAD,
    (Standing.FENCED, "renewed"): Standing.UP,
    (Standing.FENCED, "lapsed"): Standing.FENCED,
    (Standing.FENCED, "declared_dead"): Standing.DEAD,
    (Standing.DEAD, "renewed"): Standing.DEAD,
    (Standing.DEAD, "lapsed"): Standing.DEAD,
    (Standing.DEAD, "declared_dead"): Standing.DEAD,
}
"""(standing, event) -> the next standing."""


class Fence:
    def __init__(
        self, after: float, *, fenced: Callable[[], None], back: Callable[[], None]
    ) -> None:
        """``after``: seconds without a renewal that worked before the run fences itself;
        ``fenced`` and ``back`` are called as it fences itself and as it comes back."""
        self.after = after
        self.standing = Standing.UP
        self.up = True
        """``standing is UP``, read on the bus's hot path."""
        self.open = asyncio.Event()
        """Set while up: the bus's writer and reader wait for it."""
        self.open.set()
        self.epoch = 0
        """How many times the run fenced itself: the number its resets carry."""
        self.cut: frozenset[str] = frozenset()
        """The runs whose calls the last fence ended: told by a reset when it is over."""
        self.since = 0.0
        """When the run last fenced itself (monotonic seconds)."""
        self._fenced = fenced
        self._back = back
        self._timer: asyncio.TimerHandle | None = None

    def renewed(self, sent: float) -> None:
        """A renewal sent at ``sent`` (monotonic) worked: the bound runs from there. One
        answered later than the bound proves nothing for now: the next one will."""
        if self.standing is Standing.DEAD or time.monotonic() - sent >= self.after:
            return
        before = self._move("renewed")
        self._arm(sent + self.after)
        if before is Standing.FENCED:
            log.warning(
                "cluster: this node reaches Redis again after %.1f s fenced and nobody "
                "declared it dead: it works with the other nodes again",
                time.monotonic() - self.since,
            )
            self._back()

    def declared_dead(self) -> None:
        self._move("declared_dead")
        self.stop()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self, at: float) -> None:
        self.stop()
        delay = max(0.0, at - time.monotonic())
        self._timer = asyncio.get_running_loop().call_later(delay, self._lapsed)

    def _lapsed(self) -> None:
        self._timer = None
        if self._move("lapsed") is not Standing.UP:
            return
        self.epoch += 1
        self.since = time.monotonic()
        log.error(
            "cluster: this node has not renewed its lease for %.1f s: it fences itself "
            "before the others can declare it dead; its calls with other nodes end, its "
            "own calls go on",
            self.after,
        )
        self._fenced()

    def _move(self, event: str) -> Standing:
        """Take ``event``; the standing before it."""
        before = self.standing
        self.standing = TABLE[before, event]
        self.up = self.standing is Standing.UP
        if self.up:
            self.open.set()
        else:
            self.open.clear()
        return before
