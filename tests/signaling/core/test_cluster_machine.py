"""Random interleavings across three switches (Hypothesis): calls placed, answered by
devices on several switches at once, written in and hung up, and members' devices on
every switch joining a group's one call, while the bus delivers in any order. Whatever
the order: one winner per call, each call's seqs contiguous (a group's too), every
message with an id answered exactly once (an ``im_ack``, or an ``Error`` when its leg was
already gone), and no leg or claim left anywhere once every call is released.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.signaling.core.cluster_harness import Client, Cluster
from tests.signaling.core.harness import im
from tests.signaling.core.test_cluster_support_and_groups import TEAM
from tests.support import make_config

JsonObject = dict[str, Any]
Leg = tuple[Client, int]
"""A client and its call number."""


class CallsAcrossSwitches(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.cluster = Cluster(("a", "b", "c"), make_config(rate=1e6, burst=10_000))
        phone = self.cluster.phone
        self.callers = {phone("a", "alice"): "bob", phone("b", "carol"): "dave"}
        self.devices = [phone(node, "bob") for node in "abc"] + [phone(n, "dave") for n in "ac"]
        self.members = [*list(self.callers)[:1], *self.devices[:3]]
        """alice on a and bob's devices on a, b and c: the group's members."""
        self.cluster.groups(TEAM)
        self.cluster.eager_disk = True
        self.group_legs: set[Leg] = set()
        self.group_confs: set[str] = set()
        self.next_number = 0
        self.conf: dict[Leg, str] = {}
        """Every leg seen, with the conversation (confId) it belongs to."""
        self.placed: list[Leg] = []
        self.offers: list[Leg] = []
        self.answered: set[Leg] = set()
        self.connected: set[Leg] = set()
        """Callers' legs that heard ``conn``."""
        self.ended: set[Leg] = set()
        self.conns: Counter[str] = Counter()
        self.sent: Counter[Leg] = Counter()
        self.answers: Counter[Leg] = Counter()
        self.acked: Counter[tuple[Client, str]] = Counter()
        self.seqs: dict[str, list[int]] = defaultdict(list)

    # -- what the clients see ---------------------------------------------------------------

    def _observe(self) -> None:
        self.cluster.disk()  # a message nobody else could get yet is answered "stored"
        for client in [*self.callers, *self.devices]:
            for frame in self.cluster.take(client):
                self._frame(client, frame)

    def _frame(self, client: Client, frame: JsonObject) -> None:
        leg = (client, frame.get("call", 0))
        if frame["mt"] == "Error":  # a late conn's is no answer to a message
            self.answers[leg] += frame["text"].startswith("facility")
            return
        sig = frame["sig"]
        kind = sig["type"]
        if "confId" in sig:
            self.conf[leg] = sig["confId"]
            if leg in self.group_legs or sig.get("cg") == {"sip": TEAM["sip"]}:
                self.group_confs.add(sig["confId"])
        if kind == "setup":
            self.offers.append(leg)
        elif kind == "conn":
            self.connected.add(leg)
            if self.conf[leg] not in self.group_confs:  # every member's join hears conn
                self.conns[self.conf[leg]] += 1
        elif kind == "rel":
            self.ended.add(leg)
        for item in sig.get("fty", ()):
            if item["type"] == "im_ack":
                self.answers[leg] += 1
                self.acked[client, item["id"]] += 1
                self.seqs[self.conf[leg]].append(item["seq"])

    # -- rules ------------------------------------------------------------------------------------

    @rule(index=st.integers(0, 1))
    def place(self, index: int) -> None:
        caller = list(self.callers)[index]
        self.next_number += 1
        self.placed.append((caller, self.next_number))
        self.cluster.setup(caller, self.next_number, self.callers[caller])
        self._observe()

    @rule(index=st.integers(0, 3))
    def join_group(self, index: int) -> None:
        member = self.members[index]
        self.next_number += 1
        leg = (member, self.next_number)
        self.placed.append(leg)
        self.group_legs.add(leg)
        sig = {"type": "setup", "channel": 0, "cd": {"sip": TEAM["sip"]}}
        self.cluster.signal(member, self.next_number, {**sig, "fty": [{"type": "im_setup"}]})
        self._observe()

    @precondition(lambda self: self.cluster.bus.pending)
    @rule(data=st.data())
    def deliver(self, data: st.DataObject) -> None:
        pending = self.cluster.bus.pending
        self.cluster.bus.step(data.draw(st.integers(0, len(pending) - 1)))
        self._observe()

    @precondition(lambda self: any(leg not in self.answered for leg in self.offers))
    @rule(data=st.data())
    def answer(self, data: st.DataObject) -> None:
        leg = data.draw(st.sampled_from([leg for leg in self.offers if leg not in self.answered]))
        self.answered.add(leg)
        self.cluster.signal(leg[0], leg[1], {"type": "conn"}, settle=False)
        self._observe()

    @precondition(lambda self: self._writers())
    @rule(data=st.data())
    def write(self, data: st.DataObject) -> None:
        client, number = leg = data.draw(st.sampled_from(self._writers()))
        self.sent[leg] += 1
        message_id = f"{client[0]}{client[1]}-{number}-{self.sent[leg]}"
        self.cluster.signal(
            client, number, {"type": "facility", "fty": [im("hi", id=message_id)]}, settle=False
        )
        self._observe()

    @precondition(lambda self: self._writers())
    @rule(data=st.data())
    def hang_up(self, data: st.DataObject) -> None:
        leg = data.draw(st.sampled_from(self._writers()))
        self.cluster.signal(leg[0], leg[1], {"type": "rel"}, settle=False)
        self.ended.add(leg)
        self._observe()

    def _writers(self) -> list[Leg]:
        """Callers that heard ``conn``, devices that answered; neither hung up nor told."""
        legs = [*self.connected, *self.answered]
        return sorted(leg for leg in legs if leg not in self.ended and leg[1] != 0)

    # -- invariants -----------------------------------------------------------------------------

    @invariant()
    def one_winner_per_call(self) -> None:
        assert all(count == 1 for count in self.conns.values()), self.conns

    @invariant()
    def no_message_answered_twice(self) -> None:
        assert all(count == 1 for count in self.acked.values()), self.acked

    def teardown(self) -> None:
        cluster = self.cluster
        while cluster.bus.pending:  # each store on disk before the next delivery
            cluster.bus.step()
            self._observe()
        for leg in [*self.placed, *self._writers()]:  # ringing ones too
            if leg in self.ended:
                continue
            cluster.signal(leg[0], leg[1], {"type": "rel"})
            self.ended.add(leg)
        self._observe()
        for leg in self.offers:  # a group's offers ring on when a member leaves
            if leg not in self.ended:
                cluster.signal(leg[0], leg[1], {"type": "rel"})
        self._observe()
        for leg, count in self.sent.items():  # every message heard back exactly once
            assert self.answers[leg] == count, (leg, count, self.answers[leg])
        for conf, seqs in self.seqs.items():  # one seq each, none skipped
            assert sorted(seqs) == list(range(1, len(seqs) + 1)), (conf, seqs)
        for switch in cluster.bus.switches.values():
            assert switch.chat.calls == {}
            assert switch.held()["proxy_legs"] == 0
        cluster.finish()


CallsAcrossSwitches.TestCase.settings = settings(
    max_examples=50,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_calls_across_switches = CallsAcrossSwitches.TestCase
