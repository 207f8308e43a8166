"""How many support chats an agent has, and whether they can take one more (§9.2).

An agent is *available* for a waiting chat when a device of theirs can take a call
(no-media, attached, below ``max_calls``), their activity is ``available``, and the
chats they have taken plus those ringing for them are fewer than their ``max_chats``.
This is the count of the switch the chats live on; in a cluster the chats homed on
other switches count through the agents' claims as well (``agent_slots``).
"""

from __future__ import annotations

from collections.abc import Mapping

from config import UserConfig

from .nodes.directory import DeviceDirectory
from .presence import Presence
from .registry import Registration, UserKey
from .support_chat import SupportChat

__all__ = ["AgentLoad"]


class AgentLoad:
    def __init__(
        self,
        registry: DeviceDirectory,
        presence: Presence,
        max_calls: int,
        chats: Mapping[str, SupportChat],
    ) -> None:
        """``chats``: the support chats in progress here (their offers count)."""
        self._registry = registry
        self._presence = presence
        self._max_calls = max_calls
        self._chats = chats
        self._active: dict[UserKey, set[str]] = {}
        """The support chats each agent has taken and not yet closed."""

    def devices(self, domain: str, sip: str) -> list[Registration]:
        """The agent's devices that can be offered a chat now."""
        return [
            device
            for device in self._registry.of(domain, sip)
            if device.no_media and device.attached and len(device.legs) < self._max_calls
        ]

    def holds(self, device: Registration) -> bool:
        """Whether ``device`` is still one of its user's devices here (not ended, nor a
        stand-in let go)."""
        return any(found is device for found in self._registry.of(device.domain, device.user.sip))

    def taken(self, domain: str, sip: str) -> int:
        """Support chats the agent has taken and not yet closed."""
        return len(self._active.get((domain, sip), ()))

    def load(self, domain: str, sip: str) -> int:
        """Support chats the agent has taken or is being offered."""
        offered = sum(
            1
            for chat in self._chats.values()
            if chat.call.domain == domain
            and any(leg.reg.user.sip == sip for leg in chat.call.offers)
        )
        return self.taken(domain, sip) + offered

    def available(self, domain: str, agent: UserConfig) -> bool:
        """Presence open on a device that can take a call, activity ``available``, room
        under ``max_chats`` for one more chat, offered or taken (§9.2)."""
        if self.load(domain, agent.sip) >= agent.max_chats:
            return False
        if self._presence.activity(domain, agent.sip) != "available":
            return False
        return bool(self.devices(domain, agent.sip))

    def took(self, domain: str, sip: str, call_id: str) -> int:
        """The agent took chat ``call_id``: how many they have now."""
        active = self._active.setdefault((domain, sip), set())
        active.add(call_id)
        return len(active)

    def finished(self, domain: str, sip: str, call_id: str) -> None:
        """The agent no longer has this chat; an agent with none has no entry at all."""
        active = self._active.get((domain, sip))
        if active is not None:
            active.discard(call_id)
            if not active:
                del self._active[(domain, sip)]

    def __len__(self) -> int:
        return len(self._active)
