"""Random interleavings across three switches (Hypothesis): calls placed, answered by
devices on several switches at once, written in and hung up, members' devices on every
switch joining a group's one call, connections dropped and resumed, and a switch lost,
while the bus delivers in any order.

What is checked, whatever the order:

- one winner per call; every message's seq is one number, each call's seqs contiguous
  (what the Posts carry counts: a message nobody was in the call to hear, whose writer
  lost its ack with its link, is known by its Post alone);
- what each receiver got: per device and leg (its ``callId``, kept across a resume),
  the ``im_message`` seqs strictly increase, so nothing arrives twice or out of order;
- once the bus has settled and nobody is away, a leg still in its call has every seq of
  the call from where it joined to the last one, each either received or its own (no
  gap); in a call between devices that were never away nor lost, a leg received exactly
  the seqs acked ``delivered`` to the other side;
- a device that was away (its connection dropped, resumed later within the grace on its
  switch or any other, naming the last seq each leg got) gets the replay after its
  ``conn``: everything above that seq, nothing twice, no gap (docs 12.43);
- a lost switch: calls homed there end at once with ``rel`` 41 for the devices elsewhere
  (a message they sent that the home never answered is answered by that ``rel``), also
  those over at the home whose end the device's switch had not heard yet; a call
  homed elsewhere whose other side was on the lost switch ends with ``rel`` 41 after the
  grace, its messages meanwhile ``held``, then ``not_delivered`` or ``stored``;
- every message answered exactly once (an ``im_ack`` with a final state, after at most
  one ``held``, or an ``Error`` when its leg was already gone) when its writer was never
  away; a writer that was away may have lost an answer with its old connection, but
  never hears one twice on a connection;
- no leg, stand-in or claim left anywhere once every call is released (``finish``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from signaling.core.calls import Leg as CallLeg
from signaling.core.switch import Switch
from tests.signaling.core.cluster_harness import Client, Cluster
from tests.signaling.core.harness import im
from tests.signaling.core.test_cluster_support_and_groups import TEAM
from tests.support import make_config

JsonObject = dict[str, Any]
Leg = tuple[Client, int]
"""A client (connection) and its call number."""
Stream = tuple[str, str]
"""A device (its name) and one of its legs' ``callId``: what survives a resume."""

GRACE = 60.0
FINAL = {"delivered", "stored", "not_delivered"}


class CallsAcrossSwitches(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.cluster = Cluster(("a", "b", "c"), make_config(rate=1e6, burst=10_000, grace=GRACE))
        self.client: dict[str, Client] = {}
        """Each device's current connection, by name."""
        self.name: dict[Client, str] = {}
        self.sip: dict[str, str] = {}
        for node, sip in [("a", "alice"), ("b", "carol"), *[(n, "bob") for n in "abc"]]:
            self._phone(node, sip)
        for node in "ac":
            self._phone(node, "dave")
        self.callers = {"a:alice": "bob", "b:carol": "dave"}
        self.members = ["a:alice", "a:bob", "b:bob", "c:bob"]
        """alice on a and bob's devices on a, b and c: the group's members."""
        self.cluster.groups(TEAM)
        self.cluster.eager_disk = True
        self.away: set[str] = set()
        self.was_away: set[str] = set()
        self.lost: set[str] = set()
        """Devices of a lost switch."""
        self.lost_node: str | None = None
        self.group_legs: set[Leg] = set()
        self.group_confs: set[str] = set()
        self.next_number = 0
        self.next_id = 0
        self.conf: dict[Leg, str] = {}
        """Every leg seen, with the conversation (confId) it belongs to."""
        self.call_id: dict[Leg, str] = {}
        self.placed: list[Leg] = []
        self.offers: list[Leg] = []
        self.reoffers: set[Leg] = set()
        """Calls offered again after a resume (``setup`` with ``resumed``)."""
        self.answered: set[Leg] = set()
        self.connected: set[Leg] = set()
        """Callers' legs that heard ``conn``."""
        self.ended: set[Leg] = set()
        self.hung_up: set[Stream] = set()
        self.rel_cause: dict[Stream, int | None] = {}
        self.conns: Counter[str] = Counter()
        self.received: dict[Stream, list[int]] = defaultdict(list)
        self.stream_conf: dict[Stream, str] = {}
        self.sent: dict[Stream, list[str]] = defaultdict(list)
        self.written: dict[str, tuple[Stream, str]] = {}
        """Each message id: the stream it was written on, and its call's confId."""
        self.errors: Counter[Stream] = Counter()
        self.finals: Counter[tuple[str, Client]] = Counter()
        """Final answers (``delivered``, ``stored``, ``not_delivered``) by id and connection."""
        self.helds: Counter[tuple[str, Client]] = Counter()
        self.states: dict[str, set[str]] = defaultdict(set)
        self.msg_seq: dict[str, set[int]] = defaultdict(set)
        self.posted: dict[str, set[int]] = defaultdict(set)
        """The seqs of the Posts handed to the messages service, by confId."""
        self.posts_read = 0
        self.homes: dict[str, str] = {}
        """Each call's home by confId, kept once the call is over there: a device
        elsewhere may not have heard of the end when the home is lost."""
        self.home_lost: set[str] = set()
        """Calls (confIds) homed on the lost switch."""
        self.ended_before_loss: set[Stream] = set()
        """Streams that had heard their ``rel`` (any cause) before the switch was lost."""
        self.doomed: set[str] = set()
        """callIds of legs whose call outlives the lost switch but whose other side was
        on it."""

    def _phone(self, node: str, sip: str) -> None:
        name = f"{node}:{sip}"
        client = self.cluster.phone(node, sip)
        self.client[name], self.name[client], self.sip[name] = client, name, sip

    def _live(self, name: str) -> bool:
        return name not in self.away and name not in self.lost

    def _leg_live(self, leg: Leg) -> bool:
        return self.client.get(self.name[leg[0]]) == leg[0] and self._live(self.name[leg[0]])

    def _stream(self, leg: Leg) -> Stream:
        return self.name[leg[0]], self.call_id[leg]

    # -- what the clients see ---------------------------------------------------------------

    def _observe(self) -> None:
        self.cluster.disk()  # a message nobody else could get yet is answered "stored"
        stores = self.cluster.stores
        for post in [store.post for store in stores[self.posts_read :]]:
            self.posted[post["callId"]].add(post["seq"])
            if post.get("id") in self.written:
                self.msg_seq[post["id"]].add(post["seq"])
        self.posts_read = len(stores)
        for node, switch in self.cluster.bus.switches.items():
            self.homes.update(dict.fromkeys(switch.chat.calls, node))
        for client in list(self.name):
            for frame in self.cluster.take(client):
                self._frame(client, frame)

    def _frame(self, client: Client, frame: JsonObject) -> None:
        leg = (client, frame.get("call", 0))
        if frame["mt"] == "Error":  # a late conn's is no answer to a message
            if frame["text"].startswith("facility"):
                assert leg in self.call_id, frame
                self.errors[self._stream(leg)] += 1
            return
        sig = frame["sig"]
        kind = sig["type"]
        if "confId" in sig:
            self.conf[leg] = sig["confId"]
            if leg in self.group_legs or sig.get("cg") == {"sip": TEAM["sip"]}:
                self.group_confs.add(sig["confId"])
        if "callId" in sig:
            self.call_id[leg] = sig["callId"]
            self.stream_conf[self._stream(leg)] = sig["confId"]
        if kind == "setup":
            self.offers.append(leg)
            if {"type": "resumed"} in sig.get("fty", ()):
                self.reoffers.add(leg)
        elif kind == "conn":
            self.connected.add(leg)
            if self.conf[leg] not in self.group_confs:  # every member's join hears conn
                self.conns[self.conf[leg]] += 1
        elif kind == "rel":
            self.ended.add(leg)
            if leg in self.call_id:
                self.rel_cause.setdefault(self._stream(leg), sig.get("cau", {}).get("num"))
        for item in sig.get("fty", ()):
            if item["type"] == "im_ack":
                self._ack(client, item)
            elif item["type"] == "im_message" and "seq" in item:
                stream = self._stream(leg)
                got = self.received[stream]
                assert not got or item["seq"] > got[-1], (stream, got, item["seq"])
                got.append(item["seq"])

    def _ack(self, client: Client, item: JsonObject) -> None:
        message_id, state = item["id"], item["state"]
        assert self.name[client] == self.written[message_id][0][0], (client, item)
        self.states[message_id].add(state)
        if "seq" in item:
            self.msg_seq[message_id].add(item["seq"])
        if state in FINAL:
            self.finals[message_id, client] += 1
        else:
            assert state == "held", item
            self.helds[message_id, client] += 1

    # -- rules ------------------------------------------------------------------------------------

    @precondition(lambda self: any(self._live(name) for name in self.callers))
    @rule(data=st.data())
    def place(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from([n for n in self.callers if self._live(n)]))
        caller = self.client[name]
        self.next_number += 1
        self.placed.append((caller, self.next_number))
        self.cluster.setup(caller, self.next_number, self.callers[name])
        self._observe()

    @precondition(lambda self: any(self._live(name) for name in self.members))
    @rule(data=st.data())
    def join_group(self, data: st.DataObject) -> None:
        member = self.client[data.draw(st.sampled_from([m for m in self.members if self._live(m)]))]
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

    @precondition(lambda self: self._ringing())
    @rule(data=st.data())
    def answer(self, data: st.DataObject) -> None:
        leg = data.draw(st.sampled_from(self._ringing()))
        self.answered.add(leg)
        self.cluster.signal(leg[0], leg[1], {"type": "conn"}, settle=False)
        self._observe()

    @precondition(lambda self: self._writers())
    @rule(data=st.data())
    def write(self, data: st.DataObject) -> None:
        client, number = leg = data.draw(st.sampled_from(self._writers()))
        self.next_id += 1
        message_id = f"m{self.next_id}"
        stream = self._stream(leg)
        self.sent[stream].append(message_id)
        self.written[message_id] = (stream, self.conf[leg])
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
        self.hung_up.add(self._stream(leg))
        self._observe()

    @precondition(lambda self: any(self._live(name) for name in self.client))
    @rule(data=st.data())
    def drop(self, data: st.DataObject) -> None:
        """A device's link is lost (not a clean close): its calls wait for a resume."""
        name = data.draw(st.sampled_from(sorted(n for n in self.client if self._live(n))))
        node, conn = self.client[name]
        self.cluster.feed(node, self.cluster.switch(node).closed(conn, False), settle=False)
        self.away.add(name)
        self.was_away.add(name)
        self._observe()

    @precondition(lambda self: self.away)
    @rule(data=st.data())
    def resume(self, data: st.DataObject) -> None:
        """The device that dropped comes back within the grace, on its switch or on
        another one."""
        name = data.draw(st.sampled_from(sorted(self.away)))
        self._resume(name, data.draw(st.sampled_from(sorted(self.cluster.bus.switches))))

    def _resume(self, name: str, node: str | None = None) -> None:
        old = self.client[name]
        seen = {
            call_id: got[-1] if got else 0
            for (device, call_id), got in self._streams_of(name).items()
            if device == name
        }
        client = self.cluster.resume(old, node or old[0], self.sip[name], seen, settle=False)
        self.away.discard(name)
        self.client[name], self.name[client] = client, name
        self._observe()

    def _streams_of(self, name: str) -> dict[Stream, list[int]]:
        keys = [stream for stream in self.stream_conf if stream[0] == name]
        return {stream: self.received[stream] for stream in keys}

    @precondition(lambda self: self.lost_node is None)
    @rule(node=st.sampled_from("abc"))
    def lose(self, node: str) -> None:
        """A switch dies: every other switch hears ``node_down``; its devices are gone."""
        live = [leg for leg in [*self.connected, *self.answered] if leg not in self.ended]
        self.lost_node = node
        self.ended_before_loss = set(self.rel_cause)
        self.lost = {name for name, client in self.client.items() if client[0] == node}
        self.away -= self.lost
        self.home_lost = {conf for conf, home in self.homes.items() if home == node}
        self.doomed = {
            call_id
            for home, switch in self.cluster.bus.switches.items()
            if home != node
            for call_id in _doomed(home, switch, node)
            if not self._peer_moved(call_id)
        }
        self.cluster.bus.lose(node)
        self._observe()
        for leg in live:  # calls homed on the lost switch end at once where it is
            if self.conf[leg] in self.home_lost and leg[0][0] != node and self._leg_live(leg):
                stream = self._stream(leg)
                if stream not in self.hung_up:
                    assert self.rel_cause.get(stream) == 41, (stream, self.rel_cause.get(stream))

    def _peer_moved(self, call_id: str) -> bool:
        """Whether the other side of leg ``call_id`` was on the lost switch only as far as
        its home knew: the device had resumed on another one, and its move is on the way."""
        confs = {conf for (_, leg_id), conf in self.stream_conf.items() if leg_id == call_id}
        others = [
            name
            for (name, leg_id), conf in self.stream_conf.items()
            if conf in confs and leg_id != call_id
        ]
        return bool(others) and not any(name in self.lost for name in others)

    def _ringing(self) -> list[Leg]:
        """Offers (and re-offers after a resume) nobody answered yet, on live devices."""
        return [
            leg
            for leg in self.offers
            if leg not in self.answered and leg not in self.ended and self._leg_live(leg)
        ]

    def _writers(self) -> list[Leg]:
        """Callers that heard ``conn``, devices that answered; neither hung up nor told."""
        legs = [*self.connected, *self.answered]
        return sorted(
            leg
            for leg in legs
            if leg not in self.ended and leg[1] != 0 and self._leg_live(leg) and leg in self.conf
        )

    # -- invariants -----------------------------------------------------------------------------

    @invariant()
    def one_winner_per_call(self) -> None:
        assert all(count == 1 for count in self.conns.values()), self.conns

    @invariant()
    def no_message_answered_twice_on_a_connection(self) -> None:
        assert all(count == 1 for count in self.finals.values()), self.finals
        assert all(count == 1 for count in self.helds.values()), self.helds
        assert all(len(seqs) == 1 for seqs in self.msg_seq.values()), self.msg_seq

    # -- at the end -------------------------------------------------------------------------------

    def _settle(self) -> None:
        cluster = self.cluster
        while cluster.bus.pending:  # each store on disk before the next delivery
            cluster.bus.step()
            self._observe()
        self._observe()

    def teardown(self) -> None:
        cluster = self.cluster
        self._settle()
        while self.away or self._ringing_resumed():
            for name in sorted(self.away):
                self._resume(name)
            self._settle()
            for leg in self._ringing_resumed():
                self.answered.add(leg)
                cluster.signal(leg[0], leg[1], {"type": "conn"}, settle=False)
                self._settle()
        self._check_receivers()
        if self.lost_node is not None:  # the lost devices' grace runs out
            cluster.advance(GRACE)
            self._settle()
            for stream in self.stream_conf:
                if stream[1] not in self.doomed or stream in self.hung_up:
                    continue
                if stream[0] in self.lost:  # it had moved to the lost switch: gone too
                    continue
                assert self.rel_cause.get(stream) == 41, (stream, self.rel_cause.get(stream))
        for leg in [*self.placed, *self._writers()]:  # ringing ones too
            if leg in self.ended or not self._leg_live(leg):
                continue
            cluster.signal(leg[0], leg[1], {"type": "rel"})
            self.ended.add(leg)
        self._observe()
        for leg in self.offers:  # a group's offers ring on when a member leaves
            if leg not in self.ended and self._leg_live(leg):
                cluster.signal(leg[0], leg[1], {"type": "rel"})
        self._observe()
        self._check_answers()
        for switch in cluster.bus.switches.values():
            assert switch.chat.calls == {}
            assert switch.held()["proxy_legs"] == 0
        cluster.finish()

    def _ringing_resumed(self) -> list[Leg]:
        """Re-offers not answered yet: every call a device had when it dropped, including
        one it placed whose callee answered while it was away (its leg never heard
        ``conn``, yet the call is live and its messages wait for this ``conn``)."""
        return [leg for leg in self._ringing() if leg in self.reoffers]

    def _conf_seqs(self) -> dict[str, set[int]]:
        seqs: dict[str, set[int]] = defaultdict(set)
        for stream, got in self.received.items():
            seqs[self.stream_conf[stream]].update(got)
        for message_id, (_, conf) in self.written.items():
            seqs[conf].update(self.msg_seq.get(message_id, ()))
        for conf, posted in self.posted.items():
            seqs[conf].update(posted)
        return seqs

    def _own(self, stream: Stream) -> set[int]:
        return {seq for message_id in self.sent[stream] for seq in self.msg_seq[message_id]}

    def _check_receivers(self) -> None:
        """The bus has settled and nobody is away: what each leg still in its call got."""
        seqs = self._conf_seqs()
        for conf, all_seqs in seqs.items():  # one seq each, none skipped
            assert all_seqs == set(range(1, len(all_seqs) + 1)), (conf, sorted(all_seqs))
        in_call = {
            self._stream(leg)
            for leg in [*self.connected, *self.answered]
            if leg not in self.ended and self._leg_live(leg) and leg in self.call_id
        }
        for stream in sorted(in_call):
            conf = self.stream_conf[stream]
            last = max(seqs.get(conf) or {0})
            have = set(self.received[stream]) | self._own(stream)
            if conf in self.group_confs:  # from where it joined (or was offered) on
                first = min(have, default=last + 1)
                assert have == set(range(first, last + 1)), (stream, sorted(have), last)
                continue
            assert have == set(range(1, last + 1)), (stream, sorted(have), last)
            others = [s for s in self.stream_conf if self.stream_conf[s] == conf and s != stream]
            names = {stream[0], *(s[0] for s in others)}
            if names & (self.was_away | self.lost):
                continue
            delivered = {
                seq
                for message_id, (writer, written_in) in self.written.items()
                if written_in == conf and writer != stream and writer[0] != stream[0]
                if "delivered" in self.states[message_id]
                for seq in self.msg_seq[message_id]
            }
            assert set(self.received[stream]) == delivered, (stream, self.received[stream])

    def _check_answers(self) -> None:
        """Every message answered once (a writer never away); at most once a connection."""
        for stream, ids in self.sent.items():
            if stream[0] in self.was_away or stream[0] in self.lost:
                continue
            client = self.client[stream[0]]
            finals = sum(self.finals[message_id, client] for message_id in ids)
            answered = finals + self.errors[stream]
            if stream in self.hung_up:  # held when its writer left: its own rel ends it
                answered += sum(
                    not self.finals[message_id, client] and self.helds[message_id, client]
                    for message_id in ids
                )
            if self.stream_conf[stream] in self.home_lost:  # lost with the home, or sent
                ended = stream in self.hung_up or stream in self.ended_before_loss
                assert ended or self.rel_cause.get(stream) == 41, stream
                assert answered <= len(ids), (stream, ids)  # its rel 41 answers the rest
                continue
            assert answered == len(ids), (stream, ids, finals, self.errors[stream])


def _doomed(home: str, switch: Switch, lost: str) -> list[str]:
    """The legs of ``home``'s connected one-to-one calls whose other side is on ``lost``."""
    seat = switch.node
    assert seat is not None

    def where(leg: CallLeg) -> str:
        key = seat.remote.key(leg.reg) if leg.reg.conn < 0 else None
        return key[0] if key is not None else home

    legs = []
    for call in switch.chat.calls.values():
        if call.group is not None or call.caller is None or call.callee is None:
            continue
        sides = [(call.caller, call.callee), (call.callee, call.caller)]
        legs += [leg.call_id for leg, other in sides if where(other) == lost != where(leg)]
    return legs


CallsAcrossSwitches.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_calls_across_switches = CallsAcrossSwitches.TestCase
