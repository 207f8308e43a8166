"""Where a chat leg changes state, and where it ends (PROTOCOL §4.5, §4.7, §5).

Theory of operation: a leg's state is only ever an answer of the call-state tables
(``callstate.py``): ``hub_event`` looks the hub's move up in ``HUB``, traces it and tells
the leg; ``forget`` takes the table's ``rel`` row and drops the leg from its device;
``end`` says ``rel`` (after the other side's ``disc``, when there was one) and forgets.
The client's own moves are looked up in ``CLIENT`` where its frame is taken
(``control.py``). ``refuse`` answers a ``setup`` that never became a leg.

Call states and routing go to the tracer's ``signalling`` flag, never the relay of a
message (that is ``pbx``'s to see).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tracing import Tracer

from ..calls import Leg
from ..callstate import Event, hub_event, released
from ..causes import Q931, hub_cause
from ..frames import rel
from ..messages import Cause
from ..registry import Registration
from ..wire import Wire

__all__ = ["NORMAL", "Legs"]

JsonObject = dict[str, Any]
NORMAL = hub_cause(Q931.NORMAL_CLEARING)


class Legs:
    def __init__(
        self,
        *,
        wire: Wire,
        tracer: Tracer,
        leg_ended: Callable[[Leg], None] | None = None,
    ) -> None:
        self._wire = wire
        self.tracer = tracer
        self._leg_ended = leg_ended
        """Told of each leg that ended (a cluster's seat: what the call kept for devices
        on other switches goes with it)."""

    def hub_event(self, leg: Leg, event: Event, sig: JsonObject) -> None:
        """Tell a leg what happened, if its state table lets that happen now."""
        next_state = hub_event(leg.role, leg.state, event)
        if next_state is None:
            return
        if self.tracer.signalling:
            change = f"{leg.state.value} -> {next_state.value}"
            self.note(leg.reg, leg.number, f"hub {sig.get('type')}: {change}")
        leg.state = next_state
        if leg.resume is None:  # a resumed call learns its state from the replay
            self._wire.sig(leg, sig)

    def forget(self, leg: Leg) -> None:
        """The leg is over: released, its typing stopped, gone from its device's calls."""
        leg.state = released(leg.role, leg.state)
        if leg.typing is not None:
            leg.typing.cancel()
            leg.typing = None
        if leg.reg.legs.get(leg.number) is leg:
            del leg.reg.legs[leg.number]
            if self._leg_ended is not None:
                self._leg_ended(leg)

    def end(self, leg: Leg, cause: Cause, disc: JsonObject | None = None) -> None:
        """The hub releases the leg (after the other side's ``disc``, when given)."""
        if disc is not None and not leg.parked:  # the other side's disc, then our rel
            self._wire.sig(leg, {**disc, "cau": cause.to_json()})
        if not leg.reg.attached:  # told at its resume (docs 12.35)
            leg.reg.remember_ended(leg, cause)
        self._wire.sig(leg, rel(cause))
        self.forget(leg)

    def refuse(self, reg: Registration, number: int, cause: Q931) -> None:
        if self.tracer.signalling:
            self.note(reg, number, f"refused: rel cause {int(cause)} ({cause.name.lower()})")
        self._wire.to_number(reg, number, rel(hub_cause(cause)))

    def note(self, reg: Registration, number: int, text: str) -> None:
        user = reg.user
        self.tracer.record(
            "signalling", f"call {number}: {text}", conn=reg.conn, user=user.sip, domain=reg.domain
        )
