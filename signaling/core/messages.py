"""Inbound messages as slotted dataclasses (PROTOCOL §1, §4).

The codec (``signaling.core.codec``) is the only place that builds them; everything past
the codec can trust their types and treats them as immutable. They are not ``frozen``:
a frozen ``__init__`` assigns through ``object.__setattr__`` and cost about 10 % of the
hub's CPU on the relay path (docs/benchmarks.md), where four of them are built per frame.

Fields a client may omit are ``None``; unknown fields are dropped (PROTOCOL §1.3) except
unknown facility objects, which are kept verbatim so they can travel between the parties.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "Cause",
    "Endpoint",
    "ImMessage",
    "Inbound",
    "Register",
    "Sig",
    "Signaling",
]

JsonObject = dict[str, Any]


@dataclass(slots=True)
class Inbound:
    """One parsed frame: the envelope plus the whole object for the api layer to read."""

    mt: str
    api: str | None
    src: object
    body: JsonObject


@dataclass(frozen=True, slots=True)
class Register:
    """PbxSignal ``Register`` (PROTOCOL §4.1)."""

    src: object
    hw: str | None
    flags: frozenset[str]
    resume: str | None = None
    """The token of a registration to take over (§4.9)."""
    seqs: tuple[tuple[str, int], ...] = ()
    """(confId, or the leg's callId; last seq the client saw) per call (§4.9)."""

    @property
    def no_media(self) -> bool:
        return "NO_MEDIA_CALL" in self.flags


@dataclass(slots=True)
class Endpoint:
    """A Signal EP (``cg``/``cd``): a sip user part and/or a number."""

    sip: str | None
    num: str | None


@dataclass(frozen=True, slots=True)
class Cause:
    """Q.931 cause, ``cau {"loc":L,"num":N}`` (PROTOCOL §4.8)."""

    loc: int
    num: int

    def to_json(self) -> JsonObject:
        return {"loc": self.loc, "num": self.num}


@dataclass(slots=True)
class ImMessage:
    """The ``im_message`` facility (PROTOCOL §4.6), as the client sent it."""

    data: str | None
    mime: str | None
    typing: bool | None
    more: bool
    id: str | None
    attach: str | None
    subject: str | None
    participants: str | None = None
    """Signal's group-chat list; the hub writes its own for group calls (12.25)."""

    @property
    def is_typing_only(self) -> bool:
        return self.data is None and self.typing is not None


@dataclass(slots=True)
class Sig:
    """One Signal message carried in ``Signaling`` (PROTOCOL §4.3)."""

    type: str
    cd: Endpoint | None
    cau: Cause | None
    channel: int | None
    messages: tuple[ImMessage, ...]
    fty: tuple[JsonObject, ...]
    """Facility objects other than ``im_message``, verbatim."""
    fields: JsonObject | None = None
    """For the types the hub passes on (``info``, ``progress``, ``user_info``,
    ``channels``, ``disc``): their documented fields, checked, ready to relay (12.25).
    Identities (``cg``, ``cd``) are never among them: the hub owns who is who."""

    def has_fty(self, kind: str) -> bool:
        return any(item.get("type") == kind for item in self.fty)


@dataclass(slots=True)
class Signaling:
    """PbxSignal ``Signaling``: one Signal message of call ``call`` (PROTOCOL §4.3)."""

    src: object
    call: int
    sig: Sig
