"""Who may do what with a live support chat (docs/protocol.md 12.34).

A taken chat belongs to the agent who has it: only that agent or a ``supervisor`` of the
chat's queue may close it or transfer it; the visitor may always close it. A chat still
waiting may be closed by any agent of its queue. With the queue's ``take_on_write`` an
agent who writes into a chat still ringing for them takes it, as ``Take`` would: the
first one who writes owns it, as live-helper operators expect.
"""

from __future__ import annotations

from config import QueueConfig, UserConfig

from .calls import Leg
from .errors import Forbidden
from .messages import Sig
from .support_chat import SupportChat

__all__ = [
    "SUPERVISOR",
    "board_terms",
    "check_close",
    "check_transfer",
    "may_answer",
    "takes_on_write",
]

SUPERVISOR = "supervisor"


def _supervises(chat: SupportChat, user: UserConfig) -> bool:
    return user.role == SUPERVISOR and user.sip in chat.queue.agents


def may_answer(chat: SupportChat, sip: str) -> bool:
    """Whether agent ``sip`` may answer the chat: the agent it is meant for, or any agent
    of its queue when it is meant for none."""
    return chat.target == sip or (chat.target is None and sip in chat.queue.agents)


def board_terms(user: UserConfig, queue: QueueConfig) -> dict[str, object]:
    """What ``SubscribeResult`` tells an agent of the queue it watches, so that a console
    offers only what the hub allows: its ``role`` there (``"supervisor"`` or ``"agent"``)
    and whether writing into a ringing chat takes it (docs/protocol.md 12.34)."""
    role = SUPERVISOR if user.role == SUPERVISOR else "agent"
    return {"role": role, "take_on_write": queue.take_on_write}


def check_close(chat: SupportChat, user: UserConfig) -> None:
    """``Close``: the visitor, the owner of a taken chat, a supervisor of its queue, or,
    while the chat waits, any agent of the queue; others are ``forbidden``."""
    owner = chat.call.callee.reg.user.sip if chat.call.callee is not None else None
    if user.sip in (chat.visitor.sip, owner) or _supervises(chat, user):
        return
    if owner is None and user.sip in chat.queue.agents:
        return
    if owner is not None and user.sip in chat.queue.agents:
        raise Forbidden("only the agent who has the chat or a supervisor closes it")
    raise Forbidden("only the visitor and the queue's agents close a chat")


def check_transfer(chat: SupportChat, user: UserConfig) -> Leg:
    """``Transfer``: the owner of a taken chat or a supervisor of its queue; the leg of
    the agent who has it now."""
    current = chat.call.callee
    if current is None:
        raise Forbidden("only a taken chat is transferred")
    if current.reg.user.sip != user.sip and not _supervises(chat, user):
        raise Forbidden("only the agent who has the chat or a supervisor transfers it")
    return current


def takes_on_write(leg: Leg, sig: Sig) -> bool:
    """Does this ``facility`` take the chat ringing on ``leg``: a message (not typing
    alone) written into an offered support chat of a ``take_on_write`` queue?"""
    call = leg.call
    chat: SupportChat | None = call.support
    if chat is None or not chat.queue.take_on_write or call.callee is not None:
        return False
    if leg not in call.offers:
        return False
    return any(not message.is_typing_only for message in sig.messages)
