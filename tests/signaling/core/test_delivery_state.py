"""The delivery state table (PROTOCOL §4.6): what may become of a message."""

from __future__ import annotations

import json

import pytest

from signaling.core.callstate import HUB, Event, LegState, Role, describe, released
from signaling.core.delivery_state import (
    TRANSITIONS,
    Delivery,
    DeliveryError,
    Outcome,
    advance,
)
from signaling.core.delivery_state import describe as describe_delivery


def test_every_move_not_in_the_table_is_refused_naming_state_and_outcome() -> None:
    for state in Delivery:
        for outcome in Outcome:
            if (state, outcome) in TRANSITIONS:
                assert advance(state, outcome) is TRANSITIONS[state, outcome]
            else:
                with pytest.raises(DeliveryError) as error:
                    advance(state, outcome)
                assert state.value in str(error.value) and outcome.value in str(error.value)


def test_nothing_leaves_a_final_state_and_only_pending_waits_for_the_disk() -> None:
    assert {before for before, _ in TRANSITIONS} == {
        Delivery.HELD,
        Delivery.PENDING,
        Delivery.SENT,
        Delivery.STORED,
    }
    for outcome in Outcome:
        assert (Delivery.DELIVERED, outcome) not in TRANSITIONS
        assert (Delivery.NOT_DELIVERED, outcome) not in TRANSITIONS
    assert advance(Delivery.PENDING, Outcome.ON_DISK) is Delivery.STORED
    with pytest.raises(DeliveryError):
        advance(Delivery.HELD, Outcome.ON_DISK)


def test_a_message_sent_to_another_switch_is_delivered_only_on_its_report() -> None:
    """docs 12.39: ``sent`` ends ``delivered`` by a report, or waits ``held`` without."""
    assert {outcome for state, outcome in TRANSITIONS if state is Delivery.SENT} == {
        Outcome.REPORTED,
        Outcome.UNREPORTED,
    }
    assert advance(Delivery.SENT, Outcome.REPORTED) is Delivery.DELIVERED
    assert advance(Delivery.SENT, Outcome.UNREPORTED) is Delivery.HELD
    assert advance(Delivery.HELD, Outcome.FORWARDED) is Delivery.SENT
    with pytest.raises(DeliveryError):
        advance(Delivery.SENT, Outcome.LOST)  # a call that ends makes it held first


def test_states_are_the_wire_words() -> None:
    assert json.dumps({"state": Delivery.NOT_DELIVERED}) == '{"state": "not_delivered"}'
    assert Delivery("stored") is Delivery.STORED and Delivery.HELD == "held"


def test_both_tables_print_one_move_a_line() -> None:
    lines = describe_delivery().splitlines()
    assert len(lines) == len(TRANSITIONS)
    assert "pending --on_disk--> stored" in lines
    assert "hub callee alerting --rel--> released" in describe().splitlines()


def test_the_hub_may_end_a_leg_in_every_state_but_idle() -> None:
    for role in Role:
        for state in LegState:
            if state is LegState.IDLE:
                assert (role, state, Event.REL) not in HUB
            else:
                assert released(role, state) is LegState.RELEASED
