"""The bus's counters, read by ``/metrics``."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BusStats"]


@dataclass(slots=True)
class BusStats:
    frames_out: int = 0
    frames_in: int = 0
    entries_out: int = 0
    entries_in: int = 0
    pipelines: int = 0
    largest_pipeline: int = 0
    """Most frames one pipeline carried."""
    dropped: int = 0
    """Frames dropped because too many waited for an unreachable Redis."""
    bad_entries: int = 0
    """Inbox entries dropped: malformed, or the switch could not take them."""
    gaps: int = 0
    """Times entries from another node went missing (trimmed, or lost by Redis)."""
    refused: int = 0
    """Commands Redis answered with an error."""
    presence_writes: int = 0
    """Changes of this node's presence shares written (0/1 transitions, publishes)."""
    presence_reads: int = 0
    """Users' presence read (a new follower, a change announced, a reconnect)."""
    late_answers: int = 0
    """Answers (a RegisterResult) sent after ``cluster.answer_wait`` without waiting
    for Redis any longer."""
    fences: int = 0
    """Times this node fenced itself: it had not renewed its lease for ``lease -
    heartbeat`` (``fence``)."""
    rejoins: int = 0
    """Times it came back from a fence without having been declared dead."""
    fenced_frames: int = 0
    """Frames for other nodes not sent because this node was fenced (their calls ended)."""
    resets: int = 0
    """Other nodes' comebacks from a fence heard: the calls with them ended here."""
    stale: int = 0
    """Inbox entries dropped because their sender wrote them before it heard that this
    node had fenced itself (they belong to calls that ended)."""
    lag_ms: float = 0.0
    """Age of the last entry read when it was read (Redis's clock against this node's)."""
