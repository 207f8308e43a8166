"""The call state tables (PROTOCOL §5)."""

from __future__ import annotations

import pytest

from signaling.core.callstate import CLIENT, Event, LegState, Role, client_event, hub_event
from signaling.core.errors import BadState


def test_every_client_event_not_in_the_table_is_bad_state() -> None:
    for role in Role:
        for state in LegState:
            for event in Event:
                if (role, state, event) in CLIENT:
                    assert client_event(role, state, event) == CLIENT[role, state, event]
                else:
                    with pytest.raises(BadState) as error:
                        client_event(role, state, event)
                    assert event.value in error.value.text and state.value in error.value.text


def test_caller_cannot_answer_and_callee_cannot_write_before_conn() -> None:
    with pytest.raises(BadState):
        client_event(Role.CALLER, LegState.ALERTING, Event.CONN)
    with pytest.raises(BadState):
        client_event(Role.CALLEE, LegState.OFFERED, Event.FACILITY)


def test_hub_events_move_the_caller_forward_only() -> None:
    assert hub_event(Role.CALLER, LegState.SETUP_SENT, Event.CALL_PROC) is LegState.PROCEEDING
    assert hub_event(Role.CALLER, LegState.PROCEEDING, Event.ALERT) is LegState.ALERTING
    assert hub_event(Role.CALLER, LegState.ALERTING, Event.CONN) is LegState.CONNECTED
    assert hub_event(Role.CALLER, LegState.ALERTING, Event.ALERT) is None  # no second alert
    assert hub_event(Role.CALLEE, LegState.OFFERED, Event.CONN) is None
