"""What ``/metrics`` reads of the core, as one snapshot (``Switch.status``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["SwitchStatus"]


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
