"""Where a user's devices are: the ``DeviceDirectory`` the call core offers calls to.

A standalone switch's directory is its own ``Registry``: the registrations of its own
connections, at no extra cost. A switch in a cluster offers calls through
``ReachableDevices``: its own registrations, then stand-ins for the ones on other
switches (``remote_legs.RemoteDevices``) as far as the last ``Lookup`` found them. The
cluster's shared record of every registration is a ``DeviceBook`` (Redis in production,
a dict in the in-memory bus); a switch writes its own registrations there and reads the
others' only through ``Lookup``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ..registry import Registration

if TYPE_CHECKING:
    from .frames import DeviceRecord, Snapshot
    from .remote_legs import RemoteDevices

__all__ = ["DeviceBook", "DeviceDirectory", "ReachableDevices"]


class DeviceDirectory(Protocol):
    """The registrations of (domain, sip) a call may be offered to, on any switch: a
    remote one is a registration whose ``conn`` is negative (``remote_legs``)."""

    def of(self, domain: str, sip: str) -> tuple[Registration, ...]: ...


class DeviceBook(Protocol):
    """The cluster's shared record of registrations: each switch writes its own, and
    reads the others' only through ``Lookup`` (answered by the bus); and the snapshots
    of its registrations, by ``snapshots.token_key``, read through ``Recall``."""

    def publish(self, record: DeviceRecord) -> None: ...

    def withdraw(self, node: str, ref: int) -> None: ...

    def keep(self, key: str, snapshot: Snapshot, expiry: float | None) -> None:
        """Write ``snapshot`` under ``key``: for ``expiry`` seconds, or until dropped."""

    def drop(self, key: str) -> None: ...

    def give_back(self, key: str, request: int) -> None:
        """The snapshot ``Recall`` ``request`` took from under ``key`` was not used:
        takeable again, unless its switch dropped or wrote it since."""


class ReachableDevices:
    """A cluster switch's directory for calls: its own registrations first (the order a
    standalone switch offers in), then the known ones elsewhere. A view that keeps
    nothing of its own: registrations are added to and removed from the switch's own
    registry, stand-ins by ``RemoteDevices``."""

    def __init__(self, local: DeviceDirectory, remote: RemoteDevices) -> None:
        self._local = local
        self._remote = remote

    def of(self, domain: str, sip: str) -> tuple[Registration, ...]:
        local = self._local.of(domain, sip)
        remote = self._remote.of(domain, sip)
        return local + remote if remote else local
