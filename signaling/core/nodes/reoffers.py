"""Waiting support chats offered again to an agent whose change another switch saw
(docs 12.46).

Theory of operation: a support chat waits at its home (the visitor's switch) until an
agent takes it. On one switch it is offered again whenever one of its agents may take
it now: a device of theirs came or published ``available``, a chat of theirs ended.
In a cluster those changes happen where they happen: the agent's devices may be on
another switch, and the chat that ended may have been homed on a third. That switch
tells each switch whose board news showed a waiting chat of the agent's queues
(``NodeBoards.agent_changed``, one ``AgentChanged`` per home). The home, if a chat
waiting there could be offered to that agent, looks the agent's devices up again (a
device that came since the chat's own lookup has no stand-in here yet), keeps the
stand-ins for those chats while they wait, and offers them as for an agent of its own:
each offer claims the chat in the agent's shared set first (``agent_claims``), so
``max_chats`` holds over every switch, and the home alone picks the one who answers
first. A claim refused now is asked again at the agent's next change.

Nothing here runs per message: only on an agent's change, and only where a chat waits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

from ..actions import LookedUp
from ..calls import Leg
from ..outbox import Outbox
from ..registry import Registration
from .directory import DeviceDirectory
from .frames import AgentChanged
from .remote_legs import RemoteDevices

__all__ = ["Reoffers", "WaitingChats"]


class WaitingChats(Protocol):
    """What the re-offers need of this switch's queues."""

    def waiting_for(self, domain: str, sip: str) -> list[Leg]:
        """The visitors' legs of the chats waiting here that agent ``sip`` could be
        offered now."""

    def reoffer(self, domain: str, sip: str) -> None:
        """Offer again the chats waiting here that agent ``sip`` may answer."""


Keep = Callable[[Leg, tuple[Registration, ...]], None]
"""Keep these stand-ins while the call of this visitor's leg may offer to them."""


class Reoffers:
    def __init__(
        self,
        *,
        name: str,
        outbox: Outbox,
        requests: Iterator[int],
        remote: RemoteDevices,
        devices: DeviceDirectory,
        keep: Keep,
        chats: WaitingChats,
    ) -> None:
        self._name = name
        self._out = outbox
        self._requests = requests
        """Shared with the seat's other questions: one answer entry point for all."""
        self._remote = remote
        self._devices = devices
        """Where calls here find the agents' devices: a stand-in means found already."""
        self._keep = keep
        self._chats = chats
        self._asked: dict[int, tuple[str, tuple[str, ...]]] = {}
        """Lookups not yet answered: request -> (domain, the agents)."""

    def held(self) -> int:
        return len(self._asked)

    def heard(self, frame: AgentChanged) -> None:
        """Another switch says these agents may take chats: where they are is asked
        again, for those a chat here waits for (and is not offered to yet)."""
        domain = frame.domain
        sips = tuple(
            sip
            for sip in frame.sips
            if self._chats.waiting_for(domain, sip)
            and not (frame.missed and self._devices.of(domain, sip))
        )
        if sips:
            request = next(self._requests)
            self._asked[request] = (domain, sips)
            self._out.lookup(request, domain, sips)

    def looked_up(self, answer: LookedUp) -> bool:
        """The agent's devices, as the book answered: stand-ins for those elsewhere,
        kept for the chats that still wait, then the offers. False for an answer to
        another question."""
        asked = self._asked.pop(answer.request, None)
        if asked is None:
            return False
        domain, sips = asked
        found = [record for record in answer.devices if record.node != self._name]
        self._remote.refresh(domain, sips, found)
        for sip in sips:
            legs = self._chats.waiting_for(domain, sip)  # none: taken, closed meanwhile
            devices = self._remote.of(domain, sip)
            for leg in legs:
                self._keep(leg, devices)
            if legs:
                self._chats.reoffer(domain, sip)
        return True
