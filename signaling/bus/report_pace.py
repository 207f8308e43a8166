"""When a node's delivery reports leave for the other nodes (docs/protocol.md 12.39).

A node reports the messages it pushed to its devices once per batch of frames it read
(``Reached``, cumulative). Under load the batches are large and a report answers
hundreds of messages; at a moderate rate every message comes alone, and its report
would cost a pipeline of this node's and a read of the home's, as much Redis work as the
message itself. So a pipeline that carries reports is followed by the next one with
reports no sooner than ``gap`` later: the reports made meanwhile wait and leave together
(adjacent ones as one frame, ``outbound.join_reports``), unless something else this node
sends goes first and takes them along. The first report after a quiet spell leaves at
once; at most ``gap`` is added to a ``delivered`` ack, never to a relayed message.
"""

from __future__ import annotations

import math

__all__ = ["REPORT_GAP", "ReportPace"]

REPORT_GAP = 0.005
"""Seconds: at 1,000 messages a second between two nodes, one report pipeline for about
four messages (docs/benchmarks.md)."""


class ReportPace:
    __slots__ = ("_gap", "_last")

    def __init__(self, gap: float = REPORT_GAP) -> None:
        self._gap = gap
        self._last = -math.inf

    def wait(self, now: float) -> float:
        """Seconds until reports may leave again (0: with the next pipeline)."""
        return max(0.0, self._last + self._gap - now)

    def sent(self, now: float) -> None:
        """A pipeline with reports leaves now."""
        self._last = now
