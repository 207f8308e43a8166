"""What live support asks of a chat call: the ``CallControl`` protocol (PROTOCOL §9).

``Queues`` places a visitor's call, offers it to agents, answers it for ``Take``, hands
it back for a transfer and ends it, all through these methods; ``ChatCalls`` implements
them. The queues depend on this protocol only, never on the chat core's classes.
"""

from __future__ import annotations

from typing import Any, Protocol

from .calls import Call, Leg
from .messages import Cause, ImMessage
from .registry import Registration

__all__ = ["CallControl"]

JsonObject = dict[str, Any]


class CallControl(Protocol):
    def place(self, call: Call, reg: Registration, number: int) -> Leg:
        """The caller's leg of a new call (it hears ``call_proc``)."""

    def offer(self, call: Call, device: Registration, setup: JsonObject) -> Leg:
        """Offer the call to one more device with this ``setup``."""

    def answer(self, leg: Leg) -> None:
        """The offered device answers (``Take``), as if it had sent ``conn``."""

    def write(self, leg: Leg, message: ImMessage) -> None:
        """A message on the leg, as if its client had sent it."""

    def release(self, call: Call, cause: Cause) -> None:
        """The call ends for every leg with ``cause``."""

    def arm_wait(self, call: Call, seconds: float) -> None:
        """The call waits this long for an answer, then ends (19)."""

    def withdraw(self, leg: Leg) -> None:
        """One offer ends silently (declined, or its device went away)."""

    def end_offer(self, leg: Leg, cause: Cause) -> None:
        """One offer ends, its device told ``cause``."""

    def hand_back(self, leg: Leg) -> None:
        """The answering leg ends (a transfer); the call is unanswered again."""

    def send_fty(self, leg: Leg, item: JsonObject) -> None:
        """One facility item to the leg."""
