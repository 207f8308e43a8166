"""What ``/metrics`` reads of the core: one snapshot of counters (``Switch.status``) and
how many of each thing the core keeps (``Switch.held``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from signaling.appwebsocket.throttle import LoginThrottle

from .chat import ChatCalls
from .clock import Clock
from .devices import Devices
from .login_phase import Connection, LoginPhase
from .nodes.seat import NodeSeat
from .pbx_messages import MessagesBridge
from .presence import Presence
from .registry import Registry
from .timers import TimerQueue

__all__ = ["SwitchParts", "SwitchStatus", "held", "snapshot"]


@dataclass(frozen=True, slots=True)
class SwitchStatus:
    """Counters and sizes of a ``Switch`` at one moment; copies, never live views."""

    registrations: int
    """Registered devices, detached ones in their resume grace included."""
    calls: int
    """Chat calls in progress."""
    messages: int
    """Chat messages accepted from clients since start."""
    errors: Mapping[str, int]
    """``Error`` replies sent, by code."""
    login_failures: int
    login_throttled: Mapping[str, int]
    """Logins answered throttled, by the budget that was spent."""
    throttle_keys: Mapping[str, int]
    """Entries the login throttle keeps, by kind."""
    sender_ids: int
    """Ids of stored messages remembered per sender (docs 12.21)."""
    resends: Mapping[str, int]
    """Resent ids recognised, by who recognised them (hub, service)."""


class SwitchParts(Protocol):
    """The parts of a ``Switch`` these figures are read from."""

    clock: Clock
    timers: TimerQueue
    connections: dict[int, Connection]
    registry: Registry
    logins: LoginPhase
    throttle: LoginThrottle
    devices: Devices
    chat: ChatCalls
    presence: Presence
    messages: MessagesBridge
    node: NodeSeat | None
    errors: Counter[str]


def snapshot(parts: SwitchParts) -> SwitchStatus:
    chat, throttle = parts.chat, parts.throttle
    return SwitchStatus(
        registrations=len(parts.registry),
        calls=len(chat.calls),
        messages=chat.messages,
        errors=dict(parts.errors),
        login_failures=throttle.failures,
        login_throttled=dict(throttle.throttled),
        throttle_keys=throttle.tracked(parts.clock.monotonic()),
        sender_ids=len(chat.sender_ids),
        resends=dict(chat.resends),
    )


def held(parts: SwitchParts) -> dict[str, int]:
    parts.timers.next_deadline()  # drops cancelled entries that are due first
    logins, devices, node = parts.logins.held(), parts.devices.held(), parts.node
    return {
        "connections": len(parts.connections),
        "registrations": len(parts.registry),
        "resume_tokens": devices["resume_tokens"],
        "login_deadlines": logins["login_deadlines"],
        "login_checks": logins["login_checks"],
        "resume_graces": devices["resume_graces"],
        "timers": parts.timers.held,
        "throttle_keys": logins["throttle_keys"],
        "resends_waiting": parts.chat.waiting_resends,
        "unreported": parts.chat.unreported,
        "calls": len(parts.chat.calls),
        "presence": parts.presence.held(),
        **(node.held() if node is not None else {}),
        **parts.messages.held(),
        **parts.chat.support.held(),
    }
