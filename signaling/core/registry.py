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
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from config import UserConfig

if TYPE_CHECKING:
    from .calls import Leg
    from .nodes.proxy_legs import ProxyLeg

__all__ = ["Registration", "Registry"]

UserKey = tuple[str, str]
"""(tenant domain, user sip)."""

_NOTHING_TAKEN: Mapping[int, None] = MappingProxyType({})
"""What ``taken`` is until an offer is first taken elsewhere: one shared empty mapping
rather than an empty dict in every registration."""


class Registration:
    """One device of a user. There is one for every registered connection, so it keeps
    nothing it can share or make when asked (``legs``, ``taken``, the default ``hw``)."""

    __slots__ = (
        "_hw",
        "_legs",
        "conn",
        "domain",
        "drop_cause",
        "flags",
        "next_offer",
        "proxied",
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
        hw: str | None,
        flags: frozenset[str],
        src: object,
    ) -> None:
        self.conn = conn
        self.domain = domain
        self.user = user
        self._hw: str | int = conn if hw is None else hw
        """The name the client gave, else the id of the connection it registered on."""
        self.flags = flags
        self.src = src
        self._legs: dict[int, Leg] | None = None
        self.next_offer = -1
        self.proxied: dict[int, ProxyLeg] | None = None
        """Its legs in calls whose home is another switch, by call number (a cluster's
        ``nodes.proxy_legs``); None on a device that has none, so a local call pays
        nothing for them."""
        self.token = new_token()
        """Lets a later connection of the same user take this registration over (§4.9)."""
        self.drop_cause = 16
        """The cause its calls end with if the grace runs out (16 clean close, 41 lost)."""
        self.taken: Mapping[int, None] = _NOTHING_TAKEN
        """Call numbers of support offers another agent answered first (§9.2), newest
        last: a late frame on one is told ``already_taken``."""

    def remember_taken(self, number: int) -> None:
        taken = self.taken if isinstance(self.taken, dict) else {}
        taken[number] = None
        if len(taken) > 64:
            del taken[next(iter(taken))]
        self.taken = taken

    @property
    def legs(self) -> dict[int, Leg]:
        """Its calls by call number (§4.3), made when first asked for: an idle device that
        was never offered a call has none."""
        legs = self._legs
        if legs is None:
            legs = self._legs = {}
        return legs

    @property
    def hw(self) -> str:
        """The device's name (§4.1): as the client gave it, else ``conn-`` and the id of
        the connection it registered on."""
        hw = self._hw
        return hw if isinstance(hw, str) else f"conn-{hw}"

    @hw.setter
    def hw(self, name: str) -> None:
        self._hw = name

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


_Devices = Registration | tuple[Registration, ...]


class Registry:
    """The registrations of each user, oldest first, by tenant and then by sip.

    Kept lean, since most users have one device: the keys are the tenant's and the
    user's own strings (no key tuple per user), and a user's one registration is stored
    as it is, several as a tuple."""

    def __init__(self) -> None:
        self._tenants: dict[str, dict[str, _Devices]] = {}

    def add(self, registration: Registration) -> None:
        users = self._tenants.setdefault(registration.domain, {})
        sip = registration.user.sip
        found = users.get(sip)
        users[sip] = registration if found is None else (*_tuple(found), registration)

    def remove(self, registration: Registration) -> None:
        users = self._tenants.get(registration.domain)
        sip = registration.user.sip
        devices = _tuple(users.get(sip)) if users is not None else ()
        if users is None or registration not in devices:
            return
        rest = tuple(device for device in devices if device is not registration)
        if len(rest) > 1:
            users[sip] = rest
        elif rest:
            users[sip] = rest[0]
        else:
            del users[sip]
            if not users:
                del self._tenants[registration.domain]

    def of(self, domain: str, sip: str) -> tuple[Registration, ...]:
        users = self._tenants.get(domain)
        return _tuple(users.get(sip)) if users is not None else ()

    def __len__(self) -> int:
        return sum(
            len(_tuple(found)) for users in self._tenants.values() for found in users.values()
        )


def _tuple(found: _Devices | None) -> tuple[Registration, ...]:
    if found is None:
        return ()
    return (found,) if isinstance(found, Registration) else found
