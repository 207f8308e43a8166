"""Registrations: the devices of each user that may be offered calls (PROTOCOL §4.1).

A registration belongs to one connection and acts for the connection's user, never for
whatever ``hw`` says. Call numbers are scoped to it: the client picks positive ones, the
hub hands out negative ones for calls it offers (PROTOCOL §4.3).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from config import UserConfig

if TYPE_CHECKING:
    from .calls import Leg

__all__ = ["Registration", "Registry"]

UserKey = tuple[str, str]
"""(tenant domain, user sip)."""


class Registration:
    __slots__ = ("conn", "domain", "flags", "hw", "legs", "next_offer", "src", "user")

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

    @property
    def key(self) -> UserKey:
        return (self.domain, self.user.sip)

    @property
    def no_media(self) -> bool:
        return "NO_MEDIA_CALL" in self.flags

    def allocate_offer_number(self) -> int:
        number = self.next_offer
        self.next_offer -= 1
        return number


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
