"""What the messages service tells the hub, and what the hub asks it for its own state
(PROTOCOL §7.5, §12.10): group changes, badges, seen marks and stored Posts.

Theory of operation: the service answers ``SyncGroups`` and ``ReadBadge`` and tells the
hub unasked when a group, a badge or a read mark changed; each is applied to the part
of the core that holds it (the chat's group book and calls, presence). A stored Post's
writer learns ``stored`` on its leg if that leg is still its connection's, else through
the late path (the writer resumed on another connection since, §4.9).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .actions import StoredAck
from .chat import ChatCalls
from .login_phase import Connection
from .pbx_messages import MessagesBridge
from .presence import Presence
from .registry import Registration

__all__ = ["ServiceNotes"]

JsonObject = dict[str, Any]


class ServiceNotes:
    def __init__(
        self,
        messages: MessagesBridge,
        presence: Presence,
        chat: ChatCalls,
        connections: dict[int, Connection],
        remote: Callable[[int], Registration | None] | None = None,
    ) -> None:
        self._messages = messages
        self._presence = presence
        self._chat = chat
        self._connections = connections
        self._remote = remote
        """A cluster's stand-ins for devices elsewhere, by their (negative) conn."""

    def synced(self) -> None:
        """The link is logged in: the groups and the badges watched are asked again."""
        self._messages.query({"mt": "SyncGroups"}, self._group_answer)
        for domain, sip in self._presence.watched_badges():
            self.ask_badge(domain, sip)

    def ask_badge(self, domain: str, sip: str) -> None:
        def done(answer: JsonObject) -> None:
            if answer.get("mt") == "ReadBadgeResult" and type(answer.get("count")) is int:
                self._presence.badge(domain, sip, answer["count"])

        self._messages.query({"mt": "ReadBadge", "domain": domain, "user": sip}, done)

    def notification(self, message: JsonObject) -> None:
        """What the service tells the hub unasked (PROTOCOL §12.10)."""
        mt, domain, user = message.get("mt"), message.get("domain"), message.get("user")
        if mt == "GroupInd":
            return self._group_answer(message)
        if not isinstance(domain, str) or not isinstance(user, str):
            return
        if mt == "Badge" and type(message.get("count")) is int:
            self._presence.badge(domain, user, message["count"])
        elif mt == "ChatDeleted":  # docs/protocol.md 12.32: to the user's sessions
            self._messages.tell(domain, user, message)
        elif mt == "Seen" and type(message.get("seq")) is int:
            call_id = message.get("callId")
            if isinstance(call_id, str):
                self._chat.seen(call_id, user, message["seq"])

    def stored(self, acks: list[StoredAck]) -> None:
        """These Posts are on disk: their senders learn ``stored`` (PROTOCOL §7.5)."""
        chat = self._chat
        for ack in acks:
            registration = self._writer(ack.conn)
            leg = registration.legs.get(ack.number) if registration is not None else None
            if leg is not None and leg.call.call_id == ack.call_id:
                chat.stored(leg, ack)
            else:  # the writer's connection changed since (a resume, §4.9)
                chat.stored_late(ack)
            chat.settled(ack)

    def _writer(self, conn_id: int) -> Registration | None:
        """The device a stored Post's writer was: a connection's, or one elsewhere."""
        if conn_id < 0 and self._remote is not None:
            return self._remote(conn_id)
        conn = self._connections.get(conn_id)
        return conn.registration if conn is not None else None

    def _group_answer(self, message: JsonObject) -> None:
        if message.get("mt") == "GroupInd":
            group = self._chat.groups.update(message)
            if group is not None:
                self._chat.group_changed(group)
