"""Registrations: the devices of each user that may be offered calls (PROTOCOL §4.1).

A registration belongs to one connection and acts for the connection's user, never for
whatever ``hw`` says. Call numbers are scoped to it: the client picks positive ones, the
hub hands out negative ones for calls it offers (PROTOCOL §4.3).

A registration whose connection drops is *detached* (``conn`` 0) for the resume grace
(§4.9): it still counts for presence and keeps its calls, but nothing is sent to it and
it is offered nothing new, until a new connection takes it over with its ``token``.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from config import UserConfig

if TYPE_CHECKING:
    from .calls import Leg
    from .timers import Timer

__all__ = ["Registration", "Registry"]

UserKey = tuple[str, str]
"""(tenant domain, user sip)."""


class Registration:
    __slots__ = (
        "conn",
        "domain",
        "drop_cause",
        "flags",
        "grace",
        "hw",
        "legs",
        "next_offer",
        "src",
        "taken",
        "token",
        "user",
    )

    def __init__(
        self,
        conn: int,
        domain: str,
        user: UserConfig,
        hw: str,
        flags: frozenset[str],
        src: object,
    ) -> None:
        self.conn = conn
        self.domain = domain
        self.user = user
        self.hw = hw
        self.flags = flags
        self.src = src
        self.legs: dict[int, Leg] = {}
        self.next_offer = -1
        self.token = new_token()
        """Lets a later connection of the same user take this registration over (§4.9)."""
        self.grace: Timer | None = None
        """While detached: when the registration ends for good."""
        self.drop_cause = 16
        """The cause its calls end with if the grace runs out (16 clean close, 41 lost)."""
        self.taken: dict[int, None] = {}
        """Call numbers of support offers another agent answered first (§9.2), newest
        last: a late frame on one is told ``already_taken``."""

    def remember_taken(self, number: int) -> None:
        self.taken[number] = None
        if len(self.taken) > 64:
            del self.taken[next(iter(self.taken))]

    @property
    def attached(self) -> bool:
        """A connection serves it (not waiting for a resume)."""
        return self.conn != 0

    @property
    def key(self) -> UserKey:
        return (self.domain, self.user.sip)

    @property
    def no_media(self) -> bool:
        return "NO_MEDIA_CALL" in self.flags

    @property
    def app_data(self) -> bool:
        """The device takes ``im_message`` of other mimes as opaque application data and
        never renders them (docs/protocol.md 12.25)."""
        return "APP_DATA" in self.flags

    def allocate_offer_number(self) -> int:
        number = self.next_offer
        self.next_offer -= 1
        return number


def new_token() -> str:
    return secrets.token_urlsafe(24)


class Registry:
    def __init__(self) -> None:
        self._by_user: dict[UserKey, list[Registration]] = {}

    def add(self, registration: Registration) -> None:
        self._by_user.setdefault(registration.key, []).append(registration)

    def remove(self, registration: Registration) -> None:
        devices = self._by_user.get(registration.key)
        if devices and registration in devices:
            devices.remove(registration)
            if not devices:
                del self._by_user[registration.key]

    def of(self, domain: str, sip: str) -> list[Registration]:
        return self._by_user.get((domain, sip), [])

    def __len__(self) -> int:
        return sum(len(devices) for devices in self._by_user.values())
