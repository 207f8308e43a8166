"""Live support on the call model: queues, agents, the board (PROTOCOL §9.2-§9.6).

Theory of operation: a visitor's ``setup`` to a queue's sip becomes a chat call whose
callee side is the queue. It is offered at once to every *available* agent of the queue
(presence open on an attached device, activity ``available``, fewer support chats than
their ``max_chats``), and again to agents who become available while it waits. The
first ``conn`` (or ``Take``) wins: the chat core answers it exactly like a chat to a user
with several devices, and since the whole core runs one event at a time, the first
answer processed is the only one; every other agent's offer is released with cause 26
and a later frame on it is told ``already_taken``.

A chat nobody takes within ``support.wait_timeout`` is released with cause 19 (its
volatile messages go to the ``message.offline`` webhook). A taken chat silent for
``support.idle_warn`` gets a system warning, and after ``support.idle_close`` is released
with cause 102. ``Transfer`` hands the chat to another agent or queue, who gets the
transcript on ``conn``. The board (``api:"Queue"``) lists waiting and active chats and
follows every change (``support_boards``, where a cluster's switches share it); the same
changes go to the webhooks, from the chat's home alone.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from typing import Any

from config import QueueConfig, SupportConfig, UserConfig

from .agent_load import AgentLoad
from .agent_slots import AgentSlots, LocalSlots
from .agent_status import AgentStatus
from .call_control import CallControl
from .calls import Call, Leg
from .causes import Q931, hub_cause
from .clock import Clock
from .directory_view import TenantLookup
from .errors import (
    BadJson,
    BadState,
    Forbidden,
    NotFound,
    Unavailable,
    UnknownMt,
)
from .frames import name_identification
from .login_phase import reply
from .messages import Inbound, Sig
from .nodes.directory import DeviceDirectory
from .outbox import Outbox
from .presence import Presence
from .registry import Registration, UserKey
from .support_boards import Boards, LocalBoards, QueueRequest, SharedBoards
from .support_chat import (
    SupportChat,
    context_of,
    context_of_setup,
    conversation,
    conversation_of,
    queue_user,
    setup_preview,
)
from .support_idle import IdleChats
from .support_rules import board_terms, check_close, check_transfer, may_answer
from .support_takes import Takes
from .timers import TimerQueue

__all__ = ["Queues", "SupportChat"]

JsonObject = dict[str, Any]


class Queues:
    def __init__(
        self,
        *,
        chat: CallControl,
        outbox: Outbox,
        timers: TimerQueue,
        clock: Clock,
        tenants: TenantLookup,
        registry: DeviceDirectory,
        presence: Presence,
        config: SupportConfig,
        max_calls: int,
        max_ids: int,
        licensed: Callable[[UserConfig], bool],
        slots: AgentSlots | None = None,
        boards: SharedBoards | None = None,
    ) -> None:
        self._chat = chat
        self._slots = slots or LocalSlots()
        """Room under an agent's ``max_chats`` beyond this switch (a cluster's claims)."""
        self._shared = boards or LocalBoards()  # the other switches' boards (a cluster's)
        self._out = outbox
        self._clock = clock
        self._tenants = tenants
        self._presence = presence
        self._config = config
        self._max_calls = max_calls
        self._max_ids = max_ids
        self._licensed = licensed
        self.chats: dict[str, SupportChat] = {}
        """Live support chats by conversation id (``confId``)."""
        self._boards = Boards(outbox, self._shared)
        self._idle = IdleChats(chat, timers, clock, config, self.chats)
        self._load = AgentLoad(registry, presence, max_calls, self.chats)
        self._takes = Takes(chat, self._load, self._slots, self.chats, max_calls)
        self._agent_status = AgentStatus(outbox, presence)
        self._contexts: dict[UserKey, JsonObject] = {}
        """What a visitor's web page said when the account was made (§9.1)."""

    def visitor_context(self, domain: str, sip: str, context: object) -> None:
        """Keep a visitor account's ``context`` (None forgets it): its chats carry it
        unless their ``setup`` brings one."""
        kept = context_of(context) if isinstance(context, dict) else None
        if kept is None:
            self._contexts.pop((domain, sip), None)
        else:
            self._contexts[(domain, sip)] = kept

    # -- a visitor calls a queue (§9.2) ----------------------------------------------------

    def call(self, reg: Registration, number: int, sig: Sig, queue: QueueConfig) -> None:
        context = context_of_setup(sig) or self._contexts.get(reg.key)
        target = None
        seller = context.get("seller") if context else None
        tenant = self._tenants.tenant(reg.domain)
        if seller and tenant is not None:
            own_queue = tenant.queue(seller)
            if own_queue is not None:
                queue = own_queue  # the seller's own queue
            elif tenant.user(seller) is not None and seller != reg.user.sip:
                target = seller  # a seller who answers their own chats
        wall = self._clock.wall()
        call = Call(
            secrets.token_hex(16),
            reg.domain,
            self._max_ids,
            reg.user,
            queue_user(queue),
            self._licensed(reg.user),
        )
        chat = SupportChat(call, queue, reg.user, int(wall * 1000), context, target)
        call.support = chat
        self.chats[call.call_id] = chat
        caller = self._chat.place(call, reg, number)
        chat.preview = setup_preview(sig)
        self._waiting(chat)
        self._chat.arm_wait(call, self._config.wait_timeout)
        for message in sig.messages:
            self._chat.write(caller, message)

    def first_words(self, call: Call) -> None:
        """The visitor wrote for the first time: a waiting chat's board entry gets its
        preview (``ChatUpdated``, docs 12.33); a taken chat's agent reads the message
        itself. Messages the setup carried are in the first ``ChatWaiting`` already, so
        this frame comes once at most per chat."""
        chat = call.support
        if chat is not None and chat.agent is None and call.call_id in self.chats:
            self._board(call.domain, chat.queue.sip, "ChatUpdated", {"chat": chat.view()})

    def visitor_presence(self, domain: str, sip: str, online: bool) -> None:
        """A visitor went offline (its page closed, docs 12.38) or came back: its chats
        remember it, and the board entries of the waiting ones say so at once (a taken
        chat's agent is in the chat). The chats wait out the resume grace for a reload."""
        gone = None if online else int(self._clock.wall() * 1000)
        for chat in list(self.chats.values()):
            if chat.call.domain == domain and chat.visitor.sip == sip:
                chat.gone_since = gone
                if chat.agent is None:
                    self._board(domain, chat.queue.sip, "ChatUpdated", {"chat": chat.view()})

    def _waiting(self, chat: SupportChat) -> None:
        view = chat.view()
        self._board(chat.call.domain, chat.queue.sip, "ChatWaiting", {"chat": view})
        self._out.notify("chat.waiting", {"domain": chat.call.domain, "chat": view})
        self._offer(chat)

    def _offer(self, chat: SupportChat) -> None:
        """Offer the waiting chat to every available agent not offered it yet."""
        call = chat.call
        if call.callee is not None or call.call_id not in self.chats:
            return
        tenant = self._tenants.tenant(call.domain)
        if tenant is None:
            return
        offered = {leg.reg.user.sip for leg in call.offers}
        candidates = [chat.target] if chat.target else chat.queue.agents
        for sip in candidates:
            if sip in offered or sip in chat.declined or sip == chat.visitor.sip:
                continue
            agent = tenant.user(sip)
            if agent is not None and self.available(call.domain, agent):
                ring = functools.partial(self._ring, chat, sip)
                self._slots.ask(call.domain, agent, call.call_id, ring)

    def _ring(self, chat: SupportChat, sip: str) -> bool:
        """Offer the waiting chat to the agent's devices; False when none could take it."""
        call = chat.call
        if call.callee is not None or call.call_id not in self.chats:
            return False
        devices = self._load.devices(call.domain, sip)
        for device in devices:
            self._chat.offer(call, device, chat.offer())
        return bool(devices)

    def available(self, domain: str, agent: UserConfig) -> bool:
        """Whether the agent can be offered one more chat here (``agent_load``)."""
        return self._load.available(domain, agent)

    # -- what the chat core tells the queue --------------------------------------------------

    def taken(self, call: Call, leg: Leg) -> None:
        """An agent answered: the others' offers are gone (cause 26, see chat/control.py)."""
        chat: SupportChat = call.support
        assert chat is not None
        agent = leg.reg.user
        transferred = chat.transfers > 0
        chat.agent = agent
        active = self._load.took(call.domain, agent.sip, call.call_id)
        self._slots.keep_only(call.call_id, agent.sip)
        if active >= agent.max_chats:
            self._withdraw_offers(call.domain, agent.sip)
        view = chat.view()
        self._board(call.domain, chat.queue.sip, "ChatTaken", {"chat": view, "agent": agent.sip})
        self._out.notify("chat.taken", {"domain": call.domain, "chat": view, "agent": agent.sip})
        chat.last = self._clock.monotonic()
        chat.warned = False
        self._idle.arm(chat)
        caller = call.caller
        if transferred and caller is not None and not caller.parked:
            self._chat.send_fty(caller, name_identification(agent.dn))

    def _withdraw_offers(self, domain: str, sip: str) -> None:
        """The agent is full: the other chats still ringing there stop (cause 26) and
        wait for someone else; they come back when the agent has room again."""
        for chat in list(self.chats.values()):
            call = chat.call
            if call.domain != domain or call.callee is not None:
                continue
            for leg in [leg for leg in call.offers if leg.reg.user.sip == sip]:
                self._chat.end_offer(leg, hub_cause(Q931.NON_SELECTED_USER_CLEARING))
            self._slots.release(call.call_id, sip)

    def declined(self, leg: Leg) -> None:
        """An agent released its offer: the chat keeps waiting for the others."""
        chat: SupportChat = leg.call.support
        chat.declined.add(leg.reg.user.sip)
        self._chat.withdraw(leg)
        if not any(other.reg.user is leg.reg.user for other in leg.call.offers):
            self._slots.release(leg.call.call_id, leg.reg.user.sip)

    def closed(self, call: Call, cause: int, by: str | None) -> None:
        """The call ended, whoever ended it."""
        gone = self.chats.pop(call.call_id, None)
        if gone is None:
            return
        chat = gone
        self._slots.release(call.call_id)
        self._idle.stop(chat)
        agent = chat.agent
        if agent is not None:
            self._finished(call.domain, agent.sip, call.call_id)
        view = chat.view()
        who = chat.closed_by or by or "system"
        update = {"chat": view, "by": who, "cause": cause}
        self._board(call.domain, chat.queue.sip, "ChatClosed", update)
        self._out.notify("chat.closed", {"domain": call.domain, **update})
        if agent is not None:
            self.agent_changed(call.domain, agent.sip)

    def agent_changed(self, domain: str, sip: str) -> None:
        """A user's presence, devices or load changed: tell ``agent.status`` and offer
        the waiting chats they may now take, here and, in a cluster, on the switches
        holding waiting chats of their queues (docs 12.46)."""
        tenant = self._tenants.tenant(domain)
        if tenant is None:
            return
        queues = [queue.sip for queue in tenant.all_queues() if sip in queue.agents]
        if queues:
            self._agent_status.tell(domain, sip, queues)
            if self._presence.activity(domain, sip) == "available":  # not away, as known here
                self._shared.agent_changed(domain, sip, queues)
        self.reoffer(domain, sip)

    def reoffer(self, domain: str, sip: str) -> None:
        """Offer again the chats waiting here that agent ``sip`` may answer."""
        for chat in list(self.chats.values()):
            call = chat.call
            if call.domain == domain and call.callee is None and may_answer(chat, sip):
                self._offer(chat)

    def waiting_for(self, domain: str, sip: str) -> list[Leg]:
        """The visitors' legs of the chats waiting here that agent ``sip`` could be
        offered now (not offered, declined or their own): a cluster's seat keeps the
        agent's devices elsewhere for them while they wait."""
        return [
            chat.call.caller
            for chat in self.chats.values()
            if chat.call.domain == domain
            and chat.call.callee is None
            and chat.call.caller is not None
            and may_answer(chat, sip)
            and sip not in chat.declined
            and sip != chat.visitor.sip
            and all(leg.reg.user.sip != sip for leg in chat.call.offers)
        ]

    def agents_here(self, domain: str, queue: str) -> list[str]:
        """The queue's agents online on this switch and not away, as known here."""
        tenant = self._tenants.tenant(domain)
        found = tenant.queue(queue) if tenant is not None else None
        return [
            sip
            for sip in (found.agents if found is not None else ())
            if self._presence.here(domain, sip)
            and self._presence.activity(domain, sip) == "available"
        ]

    # -- the Queue API (§9.3, §9.4) ------------------------------------------------------

    def request(
        self, conn: int, domain: str, sip: str, reg: Registration | None, inbound: Inbound
    ) -> JsonObject | None:
        """One ``api:"Queue"`` request of a logged-in user (``sip`` empty: an App object,
        refused), in its own tenant; returns the result's body, or None when it went to
        the switch that holds the chat it names (which answers)."""
        tenant = self._tenants.tenant(domain)
        user = tenant.user(sip) if tenant is not None and sip else None
        if user is None:
            raise Forbidden("the Queue API is for users (agents and visitors)")
        mt, body = inbound.mt, inbound.body
        if mt in ("Subscribe", "Unsubscribe"):
            queue = self._queue_of_agent(domain, sip, body.get("queue"))
            if mt == "Unsubscribe":
                self._boards.unfollow(conn, domain, queue.sip)
                return {"mt": "UnsubscribeResult", "queue": queue.sip}
            here = [chat for key, chat in self.homed() if key == (domain, queue.sip)]
            self._boards.follow(conn, inbound.src, domain, queue.sip, here)
            return {"mt": "SubscribeResult", "queue": queue.sip, **board_terms(user, queue)}
        if mt not in ("Take", "Transfer", "Close"):
            raise UnknownMt(f"unknown Queue mt {mt[:40]!r}")
        named = conversation_of(mt, body)
        chat = self._named(named, body)
        if chat is None and self._shared.ask(QueueRequest(conn, inbound, reg, domain, sip, named)):
            return None

        def answer(body: JsonObject) -> None:
            # a Take claimed first is answered later: on the connection that holds the
            # registration then (it may have resumed on another meanwhile)
            reply(self._out, reg.conn if reg is not None and reg.conn else conn, inbound, body)

        return self._act(chat, domain, user, reg, body, answer)

    def asked(
        self,
        domain: str,
        user: UserConfig,
        reg: Registration | None,
        body: JsonObject,
        answer: Callable[[JsonObject], None],
    ) -> JsonObject | None:
        """A ``Take``, ``Transfer`` or ``Close`` another switch sent for a chat homed
        here, on behalf of its user (and the user's device there, as ``reg``); None when
        ``answer`` is told later (a Take claimed first)."""
        mt = body.get("mt")
        if mt not in ("Take", "Transfer", "Close"):
            raise UnknownMt(f"unknown Queue mt {str(mt)[:40]!r}")
        chat = self._named(conversation_of(mt, body), body)
        return self._act(chat, domain, user, reg, body, answer)

    def _named(self, named: str, body: JsonObject) -> SupportChat | None:
        found = self.chats.get(named)
        if found is None and body.get("confId") is None:  # a leg's own callId, as the
            found = self._chat_with_leg(named)  # agent's offered setup carried it
        return found

    def _act(
        self,
        found: SupportChat | None,
        domain: str,
        user: UserConfig,
        reg: Registration | None,
        body: JsonObject,
        answer: Callable[[JsonObject], None],
    ) -> JsonObject | None:
        if found is None or found.call.domain != domain:
            raise NotFound("no such support chat")
        mt = body["mt"]
        if mt == "Close":
            return self._close(found, user)
        if reg is None:
            raise BadState(f"{mt} not allowed before Register")
        if mt == "Take":
            return self._takes.take(found, reg, answer)
        to = body.get("to")
        if not isinstance(to, str) or not to:
            raise BadJson("Transfer needs to (an agent's or a queue's sip)")
        return self._transfer(found, reg, to)

    def homed(self) -> list[tuple[tuple[str, str], JsonObject]]:
        """Every chat homed here as its queue's board shows it: ((domain, queue), chat)."""
        return [((c.call.domain, c.queue.sip), c.view()) for c in self.chats.values()]

    def board_here(self, domain: str, queue: str, mt: str, body: JsonObject) -> None:
        """An update of a chat homed on another switch, for the boards here."""
        self._boards.here(domain, queue, mt, body)

    def _chat_with_leg(self, call_id: str) -> SupportChat | None:
        """The chat one of whose legs has this ``callId`` (a scan: rare, and bounded by
        the support chats in progress)."""
        for chat in self.chats.values():
            if any(leg.call_id == call_id for leg in chat.call.legs()):
                return chat
        return None

    def _queue_of_agent(self, domain: str, sip: str, name: object) -> QueueConfig:
        if not isinstance(name, str):
            raise BadJson("queue must be a queue's sip")
        tenant = self._tenants.tenant(domain)
        queue = tenant.queue(name) if tenant is not None else None
        if queue is None:
            raise NotFound("no such queue")
        if sip not in queue.agents:
            raise Forbidden("only the queue's agents see its board")
        return queue

    def _transfer(self, chat: SupportChat, reg: Registration, to: str) -> JsonObject:
        call = chat.call
        current = check_transfer(chat, reg.user)
        tenant = self._tenants.tenant(call.domain)
        assert tenant is not None
        old_queue = chat.queue
        queue = tenant.queue(to)
        if queue is not None:
            chat.queue, chat.target = queue, None
        else:
            agent = tenant.user(to)
            if agent is None:
                raise NotFound("no such agent or queue")
            if agent.sip in (current.reg.user.sip, chat.visitor.sip) or not self.available(
                call.domain, agent
            ):
                raise Unavailable(f"{to} cannot take the chat now")
            chat.target = agent.sip
        previous = chat.agent
        assert previous is not None
        self._chat.hand_back(current)
        self._finished(call.domain, previous.sip, call.call_id)
        chat.agent = None
        chat.transfers += 1
        chat.declined = {previous.sip}  # handed on: it goes to someone else
        self._idle.stop(chat)
        moved = {"chat": chat.view(), "from": previous.sip, "to": to}
        self._board(call.domain, old_queue.sip, "ChatTransferred", moved)
        if chat.queue.sip != old_queue.sip:
            self._board(call.domain, chat.queue.sip, "ChatTransferred", moved)
        self._chat.arm_wait(call, self._config.wait_timeout)
        self._waiting(chat)
        self.agent_changed(call.domain, previous.sip)
        return {"mt": "TransferResult", **conversation(call), "to": to}

    def _close(self, chat: SupportChat, user: UserConfig) -> JsonObject:
        call = chat.call
        check_close(chat, user)
        chat.closed_by = user.sip
        self._chat.release(call, hub_cause(Q931.NORMAL_CLEARING))
        return {"mt": "CloseResult", **conversation(call)}

    def connection_closed(self, conn: int) -> None:
        self._boards.connection_closed(conn)

    def held(self) -> dict[str, int]:
        """What live support keeps now (``Switch.held``)."""
        return {
            "support_chats": len(self.chats),
            "support_boards": len(self._boards),
            "support_agents": len(self._load) + len(self._agent_status),
        }

    def _finished(self, domain: str, agent: str, call_id: str) -> None:
        """The agent no longer has this chat: neither its claim nor its count."""
        self._slots.release(call_id, agent)
        self._load.finished(domain, agent, call_id)

    # -- sending -------------------------------------------------------------------------

    def _board(self, domain: str, queue: str, mt: str, body: JsonObject) -> None:
        self._boards.update(domain, queue, mt, body)
