"""Room for one more support chat under an agent's ``max_chats`` (PROTOCOL §9.2).

Theory of operation: before a waiting chat is offered to an agent, ``Queues`` asks its
``AgentSlots`` for the agent. A standalone switch holds every support chat of its
tenants, so its own count (``Queues.available``) is the whole truth: ``LocalSlots``
offers at once and keeps nothing. In a cluster, chats homed on other switches count too:
the cluster's slots (``nodes.agent_claims``) claim the chat in the agent's shared set
first and offer only once the claim is granted. Either way the queue tells its slots
when an agent's part in a chat is over (declined, another agent took it, closed), so a
claim never outlives what it counted.

A ``Take`` of a chat that was not offered to the agent is claimed the same way before it
is run (``Queues``): ``refused`` then hears that the claim was not granted, or that the
chat's claim was released before its answer came.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from config import UserConfig

__all__ = ["AgentSlots", "LocalSlots"]


class AgentSlots(Protocol):
    claims_first: bool
    """Whether ``ask`` may answer later (a cluster's claims) rather than at once."""

    def ask(
        self,
        domain: str,
        agent: UserConfig,
        call_id: str,
        ring: Callable[[], bool],
        refused: Callable[[], None] | None = None,
    ) -> None:
        """Offer chat ``call_id`` to ``agent`` (``ring``) once it has room; ``ring`` says
        whether any device was offered it. ``refused``: told when the room was not given
        (the agent is full elsewhere, or the claim was released while it was asked, even
        if asked anew since)."""

    def holding(self, call_id: str, sip: str) -> str | None:
        """``asked`` or ``held`` when chat ``call_id`` is claimed for agent ``sip``."""

    def release(self, call_id: str, sip: str | None = None) -> None:
        """The agent ``sip`` (None: every agent) no longer has chat ``call_id``."""

    def keep_only(self, call_id: str, sip: str) -> None:
        """Agent ``sip`` took chat ``call_id``: the others' offers of it are over."""


class LocalSlots:
    """A standalone switch: the queue's own count decided already; nothing to keep."""

    __slots__ = ()

    claims_first = False

    def ask(
        self,
        domain: str,
        agent: UserConfig,
        call_id: str,
        ring: Callable[[], bool],
        refused: Callable[[], None] | None = None,
    ) -> None:
        ring()

    def holding(self, call_id: str, sip: str) -> str | None:
        return None

    def release(self, call_id: str, sip: str | None = None) -> None:
        pass

    def keep_only(self, call_id: str, sip: str) -> None:
        pass
