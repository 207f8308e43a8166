"""Live support across switches: the boards of chats homed elsewhere, and the Queue
requests carried to a chat's home (docs 12.46).

Theory of operation: a support chat lives on its home switch (the visitor's). Every
update of its board goes from there to each switch the home knows (``BoardNews``), and
each switch keeps the other switches' chats as their boards show them, so that a
``Subscribe`` on any switch lists every chat of the queue and follows it. The switches a
home tells are those the bus finds live (``node_up``, at each heartbeat: a switch already
known is not told again) and any that sent it a board frame. The first thing a switch
tells one it did not know is ``BoardState``, every chat it holds; the other replaces what
it kept of the sender with it, and its boards hear what changed (a chat new to them as
``ChatWaiting`` or ``ChatTaken``, one gone as ``ChatClosed``). A switch that is lost
(``node_down``) takes its chats with it: the boards here hear ``ChatClosed`` (by
``system``, cause 41), as their calls ended.

A ``Take``, ``Transfer`` or ``Close`` naming a chat homed elsewhere goes to its home
(``QueueAsk``, with the asking connection's registration), which runs it as if the user
and the device were its own and answers (``QueueAnswer``); the answer reaches the asking
connection as the home's own would. A ``TakeResult`` names the device's call number,
which only its own switch knows: the home says its leg's number, and the proxy leg its
offer made (the offer travels before the answer) gives the device's. A request's home is
the switch whose board news brought the chat, or the one that offered the chat to the
asking device (its proxy leg keeps the offer's ids). A request whose home is lost before
it answers is answered ``unavailable``.

What a switch knows of the others' waiting chats also tells it where an agent's change
matters (``agent_changed``: a device of theirs came or published, a chat of theirs ended
here): each switch holding a waiting chat of the agent's queues hears ``AgentChanged``
and offers its chats again (``reoffers``). A switch that learns of a waiting chat it
did not know names the queue's agents online here to its home, which may have looked
them up before they registered.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from config import UserConfig

from ..causes import Q931
from ..directory_view import TenantLookup
from ..errors import ProtocolError, Unavailable
from ..login_phase import reply
from ..messages import Inbound
from ..outbox import Outbox
from ..registry import Registration
from ..support_boards import QueueRequest
from .frames import AgentChanged, BoardNews, BoardState, DeviceRecord, QueueAnswer, QueueAsk
from .proxy_legs import ProxyLegs
from .remote_legs import RemoteDevices

__all__ = ["BoardHost", "NodeBoards"]

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]
BoardKey = tuple[str, str]
"""(domain, queue sip)."""
Held = tuple[str, BoardKey, JsonObject]
"""A chat homed elsewhere as this switch keeps it: (home, board, chat as shown there)."""


class BoardHost(Protocol):
    """What the cluster's boards need of this switch's queues."""

    def homed(self) -> list[tuple[BoardKey, JsonObject]]: ...

    def board_here(self, domain: str, queue: str, mt: str, body: JsonObject) -> None: ...

    def asked(
        self,
        domain: str,
        user: UserConfig,
        reg: Registration | None,
        body: JsonObject,
        answer: Callable[[JsonObject], None],
    ) -> JsonObject | None: ...

    def agents_here(self, domain: str, queue: str) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class _Asked:
    """A request sent to a chat's home, until its answer."""

    home: str
    conn: int
    inbound: Inbound
    device: int
    """The asking registration's number here (0: it has none)."""


class _NoHost:
    def homed(self) -> list[tuple[BoardKey, JsonObject]]:
        return []

    def board_here(self, domain: str, queue: str, mt: str, body: JsonObject) -> None:
        pass

    def asked(
        self,
        domain: str,
        user: UserConfig,
        reg: Registration | None,
        body: JsonObject,
        answer: Callable[[JsonObject], None],
    ) -> JsonObject | None:
        raise Unavailable("live support is not ready on this switch")

    def agents_here(self, domain: str, queue: str) -> list[str]:
        return []


class NodeBoards:
    def __init__(
        self,
        name: str,
        outbox: Outbox,
        proxies: ProxyLegs,
        remote: RemoteDevices,
        tenants: TenantLookup,
        records: Callable[[Registration], DeviceRecord | None],
    ) -> None:
        """``records``: the record other switches know one of this switch's registrations
        by (None for a registration of none of its own); the queues are given later
        (``attach``), for they are built after these parts."""
        self._name = name
        self._out = outbox
        self._proxies = proxies
        self._remote = remote
        self._tenants = tenants
        self._records = records
        self._host: BoardHost = _NoHost()
        self._nodes: set[str] = set()
        """The switches told of this one's chats."""
        self._chats: dict[str, Held] = {}
        """The other switches' chats by ``confId``."""
        self._asks: dict[int, _Asked] = {}
        self._numbers = itertools.count(1)

    def attach(self, host: BoardHost) -> None:
        self._host = host

    def held(self) -> dict[str, int]:
        return {"board_chats": len(self._chats), "queue_asks": len(self._asks)}

    # -- what the queues here ask (``SharedBoards``) ------------------------------------------

    def tell(self, domain: str, queue: str, mt: str, body: JsonObject, kept: bool) -> None:
        frame = BoardNews(domain, queue, mt, body, kept)
        for node in sorted(self._nodes):
            self._out.forward(node, frame)

    def chats(self, domain: str, queue: str) -> list[JsonObject]:
        return [chat for _, board, chat in self._chats.values() if board == (domain, queue)]

    def ask(self, request: QueueRequest) -> bool:
        home = self._home_of(request)
        if home is None:
            return False
        record: DeviceRecord | None = None
        if request.reg is not None:
            record = self._records(request.reg)
        number = next(self._numbers)
        self._asks[number] = _Asked(
            home, request.conn, request.inbound, record.ref if record else 0
        )
        body = request.inbound.body
        self._out.forward(home, QueueAsk(number, request.domain, request.sip, record, body))
        return True

    def agent_changed(self, domain: str, sip: str, queues: list[str]) -> None:
        """Tell each other switch holding a waiting chat of one of ``queues`` (a chat
        without an agent on its board) that the agent may take chats now: one frame per
        such switch, and none when no chat waits elsewhere."""
        wanted = set(queues)
        homes = {
            home
            for home, (board_domain, queue), chat in self._chats.values()
            if board_domain == domain and queue in wanted and _waiting(chat)
        }
        for home in sorted(homes):
            self._out.forward(home, AgentChanged(domain, (sip,)))

    def _agents_here(self, node: str, boards: set[BoardKey]) -> None:
        """Chats of ``boards`` homed on ``node`` wait, and this switch did not know them
        waiting: their home looked their agents up before this switch heard of them, so
        it may have missed an agent whose device came here meanwhile. It hears of the
        queues' agents online here, and looks up those it knows no device of."""
        found: dict[str, set[str]] = {}
        for domain, queue in boards:
            found.setdefault(domain, set()).update(self._host.agents_here(domain, queue))
        for domain, sips in sorted(found.items()):
            if sips:
                self._out.forward(node, AgentChanged(domain, tuple(sorted(sips)), missed=True))

    def _home_of(self, request: QueueRequest) -> str | None:
        held = self._chats.get(request.named)
        if held is not None:
            return held[0]
        if request.reg is not None:
            for proxy in self._proxies.of_device(request.reg):
                if request.named in proxy.ids:
                    return proxy.home
        return None

    # -- the other switches ----------------------------------------------------------------------

    def node_up(self, node: str) -> None:
        """Switch ``node`` is live: told this switch's chats, unless it was already."""
        if node == self._name or node in self._nodes:
            return
        self._nodes.add(node)
        chats = tuple((board[0], board[1], chat) for board, chat in self._host.homed())
        self._out.forward(node, BoardState(chats))

    def node_down(self, node: str) -> None:
        """Switch ``node`` is lost, or cut off: its chats are gone from the boards here,
        and what was asked of it is answered ``unavailable``."""
        self._nodes.discard(node)
        self._replace(node, {})
        for number, asked in list(self._asks.items()):
            if asked.home == node:
                del self._asks[number]
                error = Unavailable("the switch that holds the chat is gone")
                reply(self._out, asked.conn, asked.inbound, error.answer())

    def news(self, node: str, frame: BoardNews) -> None:
        self.node_up(node)
        chat = frame.body.get("chat")
        if not (isinstance(chat, dict) and isinstance(chat.get("confId"), str)):
            return
        conf: str = chat["confId"]
        board = (frame.domain, frame.queue)
        before = self._chats.get(conf)
        if frame.kept:
            self._chats[conf] = (node, board, chat)
            if _newly_waiting(before, board, chat):
                self._agents_here(node, {board})
        elif before is not None and before[:2] == (node, board):
            del self._chats[conf]
        self._host.board_here(frame.domain, frame.queue, frame.mt, frame.body)

    def state(self, node: str, frame: BoardState) -> None:
        self.node_up(node)
        chats = {}
        for domain, queue, chat in frame.chats:
            conf = chat.get("confId")
            if isinstance(conf, str):
                chats[conf] = ((domain, queue), chat)
        self._replace(node, chats)

    def _replace(self, node: str, chats: dict[str, tuple[BoardKey, JsonObject]]) -> None:
        """What this switch keeps of ``node``'s chats is ``chats`` now; the boards here
        hear of each chat new to them or gone."""
        kept = {conf: held for conf, held in self._chats.items() if held[0] == node}
        for conf, (_, board, chat) in kept.items():
            if conf not in chats:
                del self._chats[conf]
                closed = {"chat": chat, "by": "system", "cause": int(Q931.TEMPORARY_FAILURE)}
                self._host.board_here(*board, "ChatClosed", closed)
        anew: set[BoardKey] = set()
        for conf, (board, chat) in chats.items():
            before = kept.get(conf)
            self._chats[conf] = (node, board, chat)
            if before is None or before[2] != chat:
                self._host.board_here(*board, *_shown(chat))
            if _newly_waiting(before, board, chat):
                anew.add(board)
        if anew:
            self._agents_here(node, anew)

    # -- requests between switches ---------------------------------------------------------------

    def asked(self, node: str, frame: QueueAsk) -> None:
        """A user of switch ``node`` asks for a chat homed here; a switch speaks only for
        its own devices."""
        record = frame.record
        if record is not None and record.node != node:
            log.warning("QueueAsk from switch %s for a device of %.40s dropped", node, record.node)
            return
        device = self._remote.ensure(record) if record is not None else None
        tenant = self._tenants.tenant(frame.domain)
        user = tenant.user(frame.sip) if tenant is not None else None

        held = (device,) if device is not None else ()
        self._remote.keep(held)  # until answered: a Take claimed first answers later

        def answer(body: JsonObject) -> None:
            call = body.get("call")
            self._remote.release(held)  # goes unless it has a leg or another call
            self._out.forward(node, QueueAnswer(frame.ask, body, call if type(call) is int else 0))

        try:
            if user is None:
                raise Unavailable("no such user here")
            done = self._host.asked(frame.domain, user, device, frame.body, answer)
        except ProtocolError as exc:
            done = exc.answer()
        if done is not None:  # else a Take claimed first: answered once claimed
            answer(done)

    def answered(self, node: str, frame: QueueAnswer) -> None:
        asked = self._asks.get(frame.ask)
        if asked is None or asked.home != node:
            return
        del self._asks[frame.ask]
        body = frame.body
        if frame.leg and asked.device:  # a TakeResult: the device's own call number
            proxy = self._proxies.leg(node, asked.device, frame.leg)
            if proxy is not None:
                body = {**body, "call": proxy.number}
        reply(self._out, asked.conn, asked.inbound, body)


def _waiting(chat: JsonObject) -> bool:
    """Whether a chat as a board shows it waits for an agent."""
    return "agent" not in chat


def _newly_waiting(before: Held | None, board: BoardKey, chat: JsonObject) -> bool:
    """Whether ``chat`` waits on ``board`` and was not known waiting there before."""
    return _waiting(chat) and not (before and before[1] == board and _waiting(before[2]))


def _shown(chat: JsonObject) -> tuple[str, JsonObject]:
    """How a board learns of a chat it did not show: taken, or waiting."""
    agent = chat.get("agent")
    if isinstance(agent, dict):
        return "ChatTaken", {"chat": chat, "agent": agent.get("sip")}
    return "ChatWaiting", {"chat": chat}
