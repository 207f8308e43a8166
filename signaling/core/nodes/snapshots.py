"""What another switch needs to take a registration over: its snapshot in the cluster's
book, under a hash of its resume token (SCALE.md decision 7, docs 12.43).

Theory of operation: a client whose link dropped may reconnect to any switch. The switch
that made its registration writes the registration's snapshot to the book when it is
made and again whenever what it says changes: the token (a new one on every resume),
the switches the device has calls homed on (the first call with each), and whether a
connection holds it. While one does, the snapshot has no expiry (a switch that dies
leaves it to the janitor, who gives it the resume grace); once the registration is
detached it expires with the grace, and it goes when the registration ends or moves.
The book only ever sees ``token_key(token)``: whoever reads Redis cannot resume anybody.

The writes are the book's, so they leave with the bus's next pipeline like a
registration's; nothing here waits, and nothing runs per message.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from ..registry import Registration
from .frames import Snapshot

if TYPE_CHECKING:
    from .directory import DeviceBook

__all__ = ["Snapshot", "Snapshots", "token_key"]


def token_key(token: str) -> str:
    """The name the book keeps a token's snapshot under: its SHA-256, in hex."""
    return hashlib.sha256(token.encode()).hexdigest()


class Snapshots:
    """The snapshots of one switch's registrations, kept current in the book."""

    def __init__(self, book: DeviceBook, name: str, grace: float) -> None:
        self._book = book
        self._name = name
        self._grace = grace
        self._homes: dict[Registration, tuple[str, ...]] = {}
        """The other switches each registration has calls homed on: only those that
        have (or had) any, so a device that stays on its switch pays nothing here."""

    def write(self, reg: Registration, ref: int) -> None:
        """``reg`` as it is now, under its current token."""
        snapshot = Snapshot(
            reg.domain, reg.user.sip, reg.hw, reg.flags, self._name, ref, self.homes(reg)
        )
        self._book.keep(token_key(reg.token), snapshot, None if reg.attached else self._grace)

    def homes(self, reg: Registration) -> tuple[str, ...]:
        return self._homes.get(reg, ())

    def homed(self, reg: Registration, ref: int, home: str) -> None:
        """A call homed on ``home`` reached the device: written if that is news."""
        homes = self._homes.get(reg, ())
        if home not in homes:
            self._homes[reg] = (*homes, home)
            self.write(reg, ref)

    def moved_in(self, reg: Registration, snapshot: Snapshot) -> None:
        """``reg`` took over the registration of ``snapshot``: its calls are homed where
        that one's were, and maybe on the switch it left (a call homed there goes on)."""
        homes = (*snapshot.homes, snapshot.node)
        self._homes[reg] = tuple(home for home in dict.fromkeys(homes) if home != self._name)

    def drop(self, token: str) -> None:
        """``token`` works no more: the registration ended, moved, or has a new one."""
        self._book.drop(token_key(token))

    def forget(self, reg: Registration) -> None:
        self._homes.pop(reg, None)
