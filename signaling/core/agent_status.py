"""What the ``agent.status`` webhook last said of each agent (PROTOCOL §9.6).

An agent's status is its presence (``open`` or ``closed``, docs 12.37: a clean close is
``closed`` at once) and the activity it published. The webhook is told only changes, so
the last status told is kept per agent while the agent is online, and forgotten once it
is ``closed`` (nothing kept for an agent who is away). A switch tells only of the agents
whose devices it holds: one that never told an agent ``open`` has no ``closed`` to tell
(in a cluster the agent may be online on another switch, docs 12.46).
"""

from __future__ import annotations

from .outbox import Outbox
from .presence import Presence
from .registry import UserKey

__all__ = ["AgentStatus"]


class AgentStatus:
    def __init__(self, outbox: Outbox, presence: Presence) -> None:
        self._out = outbox
        self._presence = presence
        self._status: dict[UserKey, tuple[str, str]] = {}
        """The last (status, activity) told to the ``agent.status`` webhook."""

    def tell(self, domain: str, sip: str, queues: list[str]) -> None:
        """Tell the webhook the agent's status if it changed since last told."""
        online = self._presence.here(domain, sip)  # each node tells of its own devices
        if not online and (domain, sip) not in self._status:
            return  # never told open here: its devices are elsewhere, or it left already
        activity = self._presence.activity(domain, sip) if online else ""
        status = ("open" if online else "closed", activity)
        if self._status.get((domain, sip)) == status:
            return
        self._status[(domain, sip)] = status
        self._out.notify(
            "agent.status",
            {
                "domain": domain,
                "agent": sip,
                "status": status[0],
                "activity": status[1],
                "queues": queues,
            },
        )
        if not online:
            del self._status[(domain, sip)]

    def __len__(self) -> int:
        return len(self._status)
