"""A taken support chat nobody writes in is warned, then closed (PROTOCOL §9.5).

Theory of operation: each taken chat has one timer, armed from its last message (or
the answer): after ``support.idle_warn`` both sides get a system message (without a
``seq``: it is not part of the conversation), after ``support.idle_close`` the chat is
released with cause 102. A message only moves the chat's ``last`` (``SupportChat.touch``,
the hot path); the timer, when it fires, looks at how long it has really been silent and
arms itself again for the rest.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from config import SupportConfig

from .call_control import CallControl
from .causes import Q931, hub_cause
from .clock import Clock
from .frames import system_message
from .support_chat import SupportChat, queue_user
from .timers import TimerQueue

__all__ = ["WARNING", "IdleChats"]

WARNING = "<p>This chat will be closed soon because nobody has written for a while.</p>"
"""The system message of §9.5, sent to both sides (without a ``seq``)."""


class IdleChats:
    def __init__(
        self,
        chat: CallControl,
        timers: TimerQueue,
        clock: Clock,
        config: SupportConfig,
        chats: Mapping[str, SupportChat],
    ) -> None:
        """``chats``: the live support chats by ``confId`` (a closed one is not there)."""
        self._chat = chat
        self._timers = timers
        self._clock = clock
        self._config = config
        self._chats = chats

    def arm(self, chat: SupportChat) -> None:
        """The chat was taken, or is silent but not long enough yet."""
        self.stop(chat)
        wait = self._config.idle_close if chat.warned else self._config.idle_warn
        chat.idle = self._timers.arm(chat.last + wait, functools.partial(self._idle, chat))

    @staticmethod
    def stop(chat: SupportChat) -> None:
        """The chat closed, or waits for an agent again (a transfer)."""
        if chat.idle is not None:
            chat.idle.cancel()
            chat.idle = None

    def _idle(self, chat: SupportChat) -> None:
        chat.idle = None
        call = chat.call
        if call.call_id not in self._chats or call.callee is None:
            return  # closed, or waiting again after a transfer (the wait timer runs)
        silent = self._clock.monotonic() - chat.last
        if silent >= self._config.idle_close:
            chat.closed_by = "system"
            return self._chat.release(call, hub_cause(Q931.RECOVERY_ON_TIMER_EXPIRY))
        if silent >= self._config.idle_warn and not chat.warned:
            chat.warned = True
            warning = system_message(queue_user(chat.queue), int(self._clock.wall()), WARNING)
            for leg in (call.caller, call.callee):
                if leg is not None and not leg.parked:
                    self._chat.send_fty(leg, warning)
        self.arm(chat)
