"""The registry: the devices of each user that may be offered calls (PROTOCOL §4.1).

A device is a ``Registration`` (defined beside the calls and legs it holds, in
``calls``); the registry finds a user's registrations, oldest first.
"""

from __future__ import annotations

from .calls import Registration, UserKey, new_token

__all__ = ["Registration", "Registry", "UserKey", "new_token"]

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
