"""Q.931 causes the hub uses (PROTOCOL §4.8); ``loc`` is 1 (the hub) for our own."""

from __future__ import annotations

from enum import IntEnum

from .messages import Cause

__all__ = ["HUB", "Q931", "hub_cause"]

HUB = 1
"""Q.931 location "private network serving the local user": the hub itself."""


class Q931(IntEnum):
    UNALLOCATED_NUMBER = 1
    NORMAL_CLEARING = 16
    USER_BUSY = 17
    NO_USER_RESPONDING = 18
    NO_ANSWER = 19
    CALL_REJECTED = 21
    NON_SELECTED_USER_CLEARING = 26
    TEMPORARY_FAILURE = 41
    RESOURCE_UNAVAILABLE = 47
    RECOVERY_ON_TIMER_EXPIRY = 102
    PROTOCOL_ERROR = 111


def hub_cause(num: Q931) -> Cause:
    return Cause(loc=HUB, num=int(num))
