"""The cluster machine of ``test_cluster_machine.py`` with slow readers, and delivery
reports held to what they mean (docs 12.39), under every interleaving Hypothesis finds.

Added to its rules and invariants:

- a device may stop reading: the next message relayed to it finds its queue full, on
  whichever switch it is (the home for a device of its own, the device's switch for a
  device elsewhere), and it is cut off with 4008 as a slow consumer; then it is away as
  after a lost link (its I/O layer closes the socket) and may resume;
- a one-to-one call's message acknowledged ``delivered`` was received by the other side
  before its writer heard it: never on the word of the bus alone.

Every invariant of the machine still holds: one winner, contiguous seqs, no gap or
duplicate for a device, every message answered exactly once.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, precondition, rule

from tests.signaling.core.cluster_harness import Client
from tests.signaling.core.test_cluster_machine import CallsAcrossSwitches, JsonObject


class SlowReadersAcrossSwitches(CallsAcrossSwitches):
    def __init__(self) -> None:
        super().__init__()
        self.slow: set[Client] = set()
        """Connections whose queue the I/O layer reports full."""
        for node in self.cluster.bus.switches:
            self.cluster.congested[node] = lambda conn, pending, node=node: (
                (node, conn) in self.slow
            )
        self.delivered: dict[str, int] = {}
        """Messages told ``delivered`` to their writer: their seq."""

    @precondition(lambda self: any(self._live(name) for name in self.client))
    @rule(data=st.data())
    def stop_reading(self, data: st.DataObject) -> None:
        """A device stops reading its connection: the next message for it overflows."""
        name = data.draw(st.sampled_from(sorted(n for n in self.client if self._live(n))))
        self.slow.add(self.client[name])

    def _observe(self) -> None:
        super()._observe()
        while self._cut_off():
            super()._observe()

    def _cut_off(self) -> bool:
        """Readers the switches cut off (4008) since the last look: their I/O layer
        closes the socket, and the device is away as after a lost link."""
        found = False
        for name, client in sorted(self.client.items()):
            close = self.cluster.closed_with.get(client)
            if close is None or not self._live(name):
                continue
            assert close.code == 4008, close
            self.slow.discard(client)
            node, conn = client
            switch = self.cluster.switch(node)
            self.cluster.feed(node, switch.closed(conn, False), settle=False)
            self.away.add(name)
            self.was_away.add(name)
            found = True
        return found

    def _ack(self, client: Client, item: JsonObject) -> None:
        super()._ack(client, item)
        if item["state"] == "delivered":
            self.delivered[item["id"]] = item["seq"]

    @invariant()
    def delivered_only_what_the_other_side_received(self) -> None:
        for message_id, seq in self.delivered.items():
            stream, conf = self.written[message_id]
            if conf in self.group_confs:
                continue
            received = [
                got
                for other, got in self.received.items()
                if self.stream_conf.get(other) == conf and other != stream
            ]
            assert any(seq in got for got in received), (message_id, seq, conf)


SlowReadersAcrossSwitches.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_slow_readers_across_switches = SlowReadersAcrossSwitches.TestCase
