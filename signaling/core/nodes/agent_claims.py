"""``max_chats`` across switches: an agent's support chats counted in one shared set.

Theory of operation: a support chat lives on its home switch (the visitor's), so no
switch alone sees every chat an agent is offered or has taken. Each agent has one set
in the cluster's shared state, keyed by tenant and sip, holding every chat offered to or
taken by the agent, on any switch (its home's name, ``:`` and its ``confId``: the claims
of a lost switch go with it). Before the home offers a chat to
an agent it sends a ``Claim`` (add the chat if the set holds fewer than ``max_chats``:
one atomic step across switches); the offer goes out only when ``Switch.claimed`` says
it was granted. When the agent's part in the chat is over, the home sends ``Unclaim``.
A refused claim leaves the chat waiting for the other agents, as a full agent does on
one switch, until the agent may take chats again (docs 12.46): then the chat is offered
to them again, and claimed again. A change heard while the claim is still being asked
(the agent's room came back as Redis refused it) asks once more when it is refused.

A claim released while it is still being asked is taken back when its answer comes.

A ``Take`` of a chat not offered to the agent is claimed first too (``Queues``, docs
12.46): its ``ring`` runs the Take, its ``refused`` answers it when the claim is refused,
released before its answer, or asked anew meanwhile (released, then offered again).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from config import UserConfig

from ..actions import Claimed
from ..outbox import Outbox

__all__ = ["AgentClaims"]

_Ask = tuple[str, UserConfig, str, Callable[[], bool], Callable[[], None] | None]


class AgentClaims:
    def __init__(self, outbox: Outbox, node: str, requests: Iterator[int]) -> None:
        self._out = outbox
        self._node = node
        self._requests = requests
        """Shared with the seat's other questions: one answer entry point for all."""
        self._asked: dict[int, _Ask] = {}
        """Claims not yet answered: request -> (domain, agent, chat, how to offer it,
        whom to tell of a refusal)."""
        self._again: set[int] = set()
        """Claims asked again while being asked: a refusal asks once more."""
        self._held: dict[str, dict[str, tuple[str, int]]] = {}
        """Chat -> agent sip -> (key, the request that claimed it): asked or granted."""

    def held(self) -> int:
        return len(self._held) + len(self._asked)

    claims_first = True

    def holding(self, call_id: str, sip: str) -> str | None:
        held = self._held.get(call_id, {}).get(sip)
        if held is None:
            return None
        return "asked" if held[1] in self._asked else "held"

    def ask(
        self,
        domain: str,
        agent: UserConfig,
        call_id: str,
        ring: Callable[[], bool],
        refused: Callable[[], None] | None = None,
    ) -> None:
        agents = self._held.setdefault(call_id, {})
        held = agents.get(agent.sip)
        if held is not None:  # asked already, or offered: one claim per agent and chat
            if held[1] in self._asked:  # its answer may predate the agent's change
                self._again.add(held[1])
            return
        key = f"max_chats:{domain}:{agent.sip}"
        request = next(self._requests)
        agents[agent.sip] = (key, request)
        self._asked[request] = (domain, agent, call_id, ring, refused)
        self._out.claim(request, key, self._member(call_id), agent.max_chats)

    def claimed(self, answer: Claimed) -> bool:
        """Take the answer to a claim of this part's; False for another part's."""
        asked = self._asked.pop(answer.request, None)
        if asked is None:
            return False
        again = answer.request in self._again
        self._again.discard(answer.request)
        domain, agent, call_id, ring, refused = asked
        sip = agent.sip
        current = self._held.get(call_id, {}).get(sip)
        if current is not None and current[1] != answer.request:
            if refused is not None:  # a Take's claim: answered, its chat's newer claim stands
                refused()
            return True  # asked again since: the newer answer decides
        if current is None:  # released while it was asked
            if answer.granted:
                self._out.unclaim(f"max_chats:{domain}:{sip}", self._member(call_id))
            if refused is not None:
                refused()
        elif not answer.granted:  # the agent is full elsewhere: the chat waits for others
            self._forget(call_id, sip)
            if again:
                self.ask(domain, agent, call_id, ring, refused)
            elif refused is not None:
                refused()
        elif not ring():  # no device of the agent's can take it now
            self.release(call_id, sip)
        return True

    def release(self, call_id: str, sip: str | None = None) -> None:
        agents = self._held.get(call_id)
        for name in list(agents or ()) if sip is None else [sip]:
            held = self._forget(call_id, name)
            if held is not None and held[1] not in self._asked:  # else: when answered
                self._out.unclaim(held[0], self._member(call_id))

    def _forget(self, call_id: str, sip: str) -> tuple[str, int] | None:
        agents = self._held.get(call_id)
        held = agents.pop(sip, None) if agents is not None else None
        if agents is not None and not agents:
            del self._held[call_id]
        return held

    def _member(self, call_id: str) -> str:
        return f"{self._node}:{call_id}"

    def keep_only(self, call_id: str, sip: str) -> None:
        for other in list(self._held.get(call_id, ())):
            if other != sip:
                self.release(call_id, other)
