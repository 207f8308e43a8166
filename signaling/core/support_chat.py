"""One support chat as the hub sees it besides its call (PROTOCOL §9.2-§9.5).

A ``SupportChat`` is what ``Queues`` keeps per live support chat: the queue, the visitor
and the context its web page gave, the agent it is meant for or has, and when it was
last active. ``view`` is its entry on the board (§9.3); ``setup_fty`` what an agent's
offer carries besides the name. The helpers below read a visitor's ``context`` and name
a conversation the way the Queue API does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import unescape
from typing import Any

from config import QueueConfig, UserConfig

from .calls import Call
from .errors import BadJson, BadMime
from .frames import endpoint, setup_offer
from .messages import Sig
from .sanitize import is_opaque, sanitize
from .timers import Timer

__all__ = [
    "SupportChat",
    "context_of",
    "context_of_setup",
    "conversation",
    "conversation_of",
    "preview_of",
    "queue_user",
    "setup_preview",
]

JsonObject = dict[str, Any]

_CONTEXT_FIELDS = {"product": 200, "seller": 200, "url": 2000}
"""The context a visitor's setup may carry (§9.2), with the longest value kept."""


@dataclass(slots=True, eq=False)
class SupportChat:
    """What the hub knows of one support chat besides its call."""

    call: Call
    queue: QueueConfig
    visitor: UserConfig
    since: int
    """When it started (ms since the epoch)."""
    context: JsonObject | None
    target: str | None = None
    """An agent the chat is meant for (the seller of the context, or a transfer's
    ``to``): only that agent is offered it."""
    agent: UserConfig | None = None
    declined: set[str] = field(default_factory=set)
    last: float = 0.0
    """Monotonic time of the latest message (or of the answer): inactivity counts from it."""
    last_ms: int | None = None
    warned: bool = False
    idle: Timer | None = None
    closed_by: str | None = None
    transfers: int = 0
    preview: str | None = None
    """The start of the visitor's first message, as plain text: the board shows it so an
    agent knows what a waiting chat is about before taking it (docs 12.33)."""
    gone_since: int | None = None
    """When the visitor's page closed (ms), while the chat waits out the resume grace
    for a reload (docs 12.38); None while the visitor is online."""

    def view(self) -> JsonObject:
        """The ``chat`` object of the board (§9.3): ``confId`` names the conversation, and
        ``callId`` (§9.3's name) carries the same value for clients written before per-leg
        ids (docs 12.19)."""
        chat: JsonObject = {
            **conversation(self.call),
            "visitor": {"sip": self.visitor.sip, "dn": self.visitor.dn},
            "queue": self.queue.sip,
            "since": self.since,
            "context": self.context,
            "last_message_time": self.last_ms,
            "preview": self.preview,
            "visitor_gone": self.gone_since is not None,
            "gone_since": self.gone_since,
        }
        if self.agent is not None:
            chat["agent"] = {"sip": self.agent.sip, "dn": self.agent.dn}
        return chat

    def setup_fty(self) -> list[JsonObject]:
        """What an agent's ``setup`` carries besides ``im_setup`` and the name."""
        fty: list[JsonObject] = [{"type": "queue", "sip": self.queue.sip, "dn": self.queue.dn}]
        if self.context is not None:
            fty.append({"type": "context", **self.context})
        return fty

    def offer(self) -> JsonObject:
        """The ``setup`` an agent's device is offered: the visitor calling the queue."""
        visitor = self.visitor
        called = {"sip": self.queue.sip}
        return setup_offer(endpoint(visitor.sip, visitor.num), called, visitor.dn, self.setup_fty())

    def touch(self, now: float, wall_ms: int) -> None:
        """A message: the inactivity clock starts again (the hot path: no timer work)."""
        self.last = now
        self.last_ms = wall_ms
        self.warned = False


PREVIEW_CHARS = 140
"""How much of the visitor's first message the board carries."""

_TAG = re.compile(r"<[^>]*>")


def preview_of(html: str) -> str | None:
    """A short plain-text preview of a sanitized message: tags dropped, entities read,
    white space folded, cut to ``PREVIEW_CHARS`` (None when nothing is left)."""
    text = " ".join(unescape(_TAG.sub(" ", html)).split())
    if not text:
        return None
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "\u2026"


def queue_user(queue: QueueConfig) -> UserConfig:
    """The queue as the callee side of its calls (the name a licensed visitor's history
    shows, §7.3)."""
    return UserConfig(sip=queue.sip, dn=queue.dn, num="", password="")


def context_of_setup(sig: Sig) -> JsonObject | None:
    """The visitor's ``context`` facility (§9.2), strings only, each cut to its limit."""
    for item in sig.fty:
        if item.get("type") == "context":
            return context_of(item)
    return None


def context_of(item: JsonObject) -> JsonObject | None:
    context = {
        key: value[:limit]
        for key, limit in _CONTEXT_FIELDS.items()
        if isinstance(value := item.get(key), str) and value
    }
    return context or None


def conversation(call: Call) -> JsonObject:
    """How the Queue API names a chat: ``confId``, and ``callId`` as its alias (12.19)."""
    return {"confId": call.call_id, "callId": call.call_id}


def setup_preview(sig: Sig) -> str | None:
    """The preview of the first text a visitor's ``setup`` carries, if any."""
    for message in sig.messages:
        if message.data is None:
            continue
        try:
            if not is_opaque(message.mime):
                return preview_of(sanitize(message.data, message.mime))
        except BadMime:
            return None  # refused when it is written
    return None


def conversation_of(mt: str, body: JsonObject) -> str:
    """The chat a Take/Transfer/Close names: ``confId``, or the older ``callId`` (the
    conversation, as on the board, or one of its legs); both must agree."""
    conf_id, call_id = body.get("confId"), body.get("callId")
    named = conf_id if conf_id is not None else call_id
    if not isinstance(named, str) or (call_id is not None and call_id != named):
        raise BadJson(f"{mt} needs a confId (or callId, the same conversation id)")
    return named
