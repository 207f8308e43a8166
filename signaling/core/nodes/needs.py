"""What a switch's seat in a cluster needs of the switch it sits in (``seat.py``).

The seat runs calls homed here through the switch's call core, gives a lost remote
device its resume grace and ends it through the switch's devices, and runs a frame that
waited for a lookup as the switch runs a client's frame. These are the shapes it needs,
so that the seat does not import the parts that build it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from ..calls import Leg
from ..causes import Q931
from ..messages import Inbound, Signaling
from ..registry import Registration
from .boards import BoardHost
from .reoffers import WaitingChats

__all__ = ["CallCore", "DeviceEnds", "Guard", "SupportHost"]


class SupportHost(BoardHost, WaitingChats, Protocol):
    """The switch's live support, as the cluster's boards and re-offers need it."""


class CallCore(Protocol):
    """What the seat needs of the call core: what it does for a local device, and its
    live support (whose boards and waiting chats the cluster shares)."""

    @property
    def support(self) -> SupportHost: ...

    def on_signaling(self, reg: Registration, msg: Signaling) -> None: ...

    def detach(self, reg: Registration) -> None: ...

    def resume(self, reg: Registration, seqs: dict[str, int]) -> None: ...

    def group_live(self, domain: str, sip: str) -> bool: ...

    def reached(self, leg: Leg, seq: int) -> None: ...

    def unreached(self, legs: Iterable[Leg]) -> None: ...


class DeviceEnds(Protocol):
    """What the seat needs of the switch's devices: the resume grace and the end, and a
    registration that resumed on another switch (docs 12.43)."""

    def remote_lost(self, registration: Registration) -> None: ...

    def remote_back(self, registration: Registration) -> None: ...

    def end(self, registration: Registration, cause: Q931) -> None: ...

    def moved_away(
        self, registration: Registration, to: str, ref: int, seqs: tuple[tuple[str, int], ...]
    ) -> None: ...

    def moved_here(
        self, device: Registration, registration: Registration, seqs: tuple[tuple[str, int], ...]
    ) -> None: ...


Guard = Callable[[int, Inbound, Callable[[], None]], None]
"""Runs what waited for connection ``conn`` as its ``inbound`` frame would have run:
a ``ProtocolError`` is answered ``Error`` on that connection (``Switch._guarded``)."""
