"""What a transport between switches provides (SCALE.md decisions 1-3, 10).

A switch in a cluster returns, among its actions, ``Forward``, ``Lookup``, ``Claim``,
``Unclaim``, ``PresenceShare``, ``PresenceWatch`` and ``WhenFindable``. Its I/O layer
hands every list of actions to ``Bus.carry``, which keeps those and returns the rest to
be carried out locally as before. The transport delivers what it kept through the
switches' entry points: ``from_nodes`` (frames of one sender, in the order sent),
``looked_up``, ``claimed`` and ``presence_shares`` (answers from the shared state),
``node_down`` (a switch is gone). The shared record of registrations that
``Lookup`` reads is a ``DeviceBook`` the transport also provides.
"""

from __future__ import annotations

from typing import Protocol

from signaling.core.actions import Action
from signaling.core.nodes.directory import DeviceBook

__all__ = ["Bus"]


class Bus(Protocol):
    book: DeviceBook
    """The cluster's registrations: each switch is built with it."""

    def carry(self, node: str, actions: list[Action]) -> list[Action]:
        """Take the cluster actions of switch ``node`` for delivery; return the others."""
        ...
