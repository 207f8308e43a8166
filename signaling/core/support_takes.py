"""``Take`` (PROTOCOL §9.4): an agent answers a waiting support chat.

Theory of operation: a device the chat rings for answers its offer; a device of an agent
of the chat's queue that was not offered it (declined, away, registered since, or full on
this switch's count) is offered it and answers at once, if it has room for a call and
the agent is under ``max_chats`` here. In a cluster that count is not the whole truth: an
agent's chats homed on other switches count too (``nodes.agent_claims``). There a chat
not offered to the agent is claimed in the agent's shared set first, as an offer is; the
Take runs once the claim is granted, checked again then (the chat may have been taken or
ended meanwhile, the device may be gone), and its answer goes out later (``answer``). A
chat whose claim for the agent stands already (offered to another of the agent's
devices) is taken at once; one whose claim is still being asked is refused (the offer
is on its way).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .agent_load import AgentLoad
from .agent_slots import AgentSlots
from .call_control import CallControl
from .errors import AlreadyTaken, Forbidden, NotFound, ProtocolError, Unavailable
from .registry import Registration
from .support_chat import SupportChat, conversation
from .support_rules import may_answer

__all__ = ["Takes"]

JsonObject = dict[str, Any]


class Takes:
    def __init__(
        self,
        chat: CallControl,
        load: AgentLoad,
        slots: AgentSlots,
        chats: dict[str, SupportChat],
        max_calls: int,
    ) -> None:
        self._chat = chat
        self._load = load
        self._slots = slots
        self._chats = chats
        """The live support chats by ``confId`` (the queues' own dict)."""
        self._max_calls = max_calls

    def take(
        self,
        chat: SupportChat,
        reg: Registration,
        answer: Callable[[JsonObject], None] | None = None,
    ) -> JsonObject | None:
        """Answer the chat on ``reg``'s offer, or offer it there and answer. A chat not
        offered to the agent counts under ``max_chats`` on every switch of a cluster:
        it is claimed first (``answer`` is told the outcome later, and None returned),
        unless the agent's claim of it stands already."""
        call = chat.call
        sip = reg.user.sip
        if not may_answer(chat, sip) or sip == chat.visitor.sip:
            raise Forbidden("not an agent of this chat's queue (or it is your own chat)")
        if call.callee is not None:
            raise AlreadyTaken("another agent took this chat")
        leg = next((leg for leg in call.offers if leg.reg is reg), None)
        if leg is None and self._load.taken(call.domain, sip) >= reg.user.max_chats:
            raise Unavailable("max_chats reached: close a chat first")
        if leg is None:
            if len(reg.legs) >= self._max_calls or not reg.no_media or not reg.attached:
                raise Unavailable("this device cannot take another call")
            if answer is not None and self._slots.claims_first:
                claim = self._slots.holding(call.call_id, sip)
                if claim == "asked":
                    raise Unavailable("the chat is being offered to you: answer the offer")
                if claim is None:
                    self._claim(chat, reg, answer)
                    return None
            leg = self._chat.offer(call, reg, chat.offer())
        self._chat.answer(leg)
        return {"mt": "TakeResult", **conversation(call), "call": leg.number}

    def _claim(
        self, chat: SupportChat, reg: Registration, answer: Callable[[JsonObject], None]
    ) -> None:
        """Claim the chat in the agent's shared set, then run the Take (checked again:
        the chat may have been taken or ended meanwhile) and answer it."""
        call_id = chat.call.call_id

        def ring() -> bool:
            try:
                found = self._chats.get(call_id)
                if found is None:
                    raise NotFound("no such support chat")
                if not self._load.holds(reg):  # ended, or its stand-in let go, meanwhile
                    raise Unavailable("this device is gone")
                taken = self.take(found, reg)
            except ProtocolError as exc:
                answer(exc.answer())
                return False
            assert taken is not None
            answer(taken)
            return True

        def refused() -> None:
            found = self._chats.get(call_id)
            if found is None:
                error: ProtocolError = NotFound("no such support chat")
            elif found.call.callee is not None:
                error = AlreadyTaken("another agent took this chat")
            elif self._slots.holding(call_id, reg.user.sip) is not None:  # claimed anew
                error = Unavailable("the chat is being offered to you: answer the offer")
            else:
                error = Unavailable("max_chats reached: close a chat first")
            answer(error.answer())

        self._slots.ask(chat.call.domain, reg.user, call_id, ring, refused)
