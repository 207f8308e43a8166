"""``GET /metrics`` in the Prometheus text format (version 0.0.4).

Gauges are read when scraped (connections, registrations, calls, the outbox's depth, the
login throttle's entries); counters are plain integers the code already keeps (messages
accepted, Posts stored, errors by code, wrong passwords, throttled logins); the two
histograms are how long the hub takes over a frame from a client (parse, route, queue
every frame it causes), observed by the hub itself, and how long each garbage collection
held the process, observed by ``gc_pauses.GcPauses``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from .core.status import SwitchStatus

if TYPE_CHECKING:
    from .bus.redis_bus import RedisBus

__all__ = ["GC_PAUSE_SECONDS", "FrameTimes", "render"]

GC_PAUSE_SECONDS = "switchboard_gc_pause_seconds"

BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)
"""Seconds; a frame usually takes tens of microseconds."""


class FrameTimes:
    """A histogram of seconds, cumulative only when rendered (one increment to observe)."""

    __slots__ = ("count", "counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.count = 0
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(BUCKETS, seconds)] += 1
        self.count += 1
        self.total += seconds

    def observe_each(self, seconds: float, count: int) -> None:
        """``count`` samples that took ``seconds`` together, each counted as the average
        (frames handled as one event)."""
        self.counts[bisect_left(BUCKETS, seconds / count)] += count
        self.count += count
        self.total += seconds

    def lines(self, name: str, labels: str = "") -> Iterable[str]:
        """The samples; ``labels`` (``generation="2"``) go before ``le`` on each."""
        running = 0
        within = f"{labels}," if labels else ""
        for bound, count in zip(BUCKETS, self.counts, strict=False):
            running += count
            yield f'{name}_bucket{{{within}le="{bound}"}} {running}'
        yield f'{name}_bucket{{{within}le="+Inf"}} {self.count}'
        tail = f"{{{labels}}}" if labels else ""
        yield f"{name}_sum{tail} {self.total:.6f}"
        yield f"{name}_count{tail} {self.count}"


def render(
    status: SwitchStatus,
    *,
    connections: int,
    stored: int,
    outbox_depth: int,
    frame_times: FrameTimes,
    held: Mapping[str, int] | None = None,
    bus: RedisBus | None = None,
    gc_pauses: Iterable[str] | None = None,
) -> str:
    """The whole page: the core's ``status`` and what the hub adds (its sockets, the
    outbox, frame times, ``held``: what it and its core keep, by kind; ``gc_pauses``:
    the samples of the collector's pauses, ``GcPauses.lines``)."""
    page = _Page()
    page.single("switchboard_connections", "gauge", _CONNECTIONS, connections)
    page.single("switchboard_registrations", "gauge", _REGISTRATIONS, status.registrations)
    page.single("switchboard_calls", "gauge", _CALLS, status.calls)
    page.single("switchboard_messages_total", "counter", _MESSAGES, status.messages)
    page.single("switchboard_messages_stored_total", "counter", _STORED, stored)
    page.single("switchboard_outbox_depth", "gauge", _OUTBOX, outbox_depth)
    page.by_label("switchboard_errors_total", "counter", _ERRORS, "code", status.errors)
    if held is not None:
        page.by_label("switchboard_held", "gauge", _HELD, "what", held, ordered=False)
    _logins(page, status)
    page.single("switchboard_sender_ids", "gauge", _SENDER_IDS, status.sender_ids)
    answered = {"hub": 0, "service": 0, **status.resends}
    page.by_label("switchboard_resends_total", "counter", _RESENDS, "by", answered)
    name = "switchboard_frame_seconds"
    page.metric(name, "histogram", _FRAME_SECONDS, frame_times.lines(name))
    if gc_pauses is not None:
        page.metric(GC_PAUSE_SECONDS, "histogram", _GC_PAUSE_SECONDS, gc_pauses)
    if bus is not None:
        _cluster(page, bus)
    return page.text()


def _cluster(page: _Page, bus: RedisBus) -> None:
    """What crosses between nodes (docs/operations.md "Running several nodes")."""
    stats = bus.stats
    frames = {"out": stats.frames_out, "in": stats.frames_in}
    page.by_label("switchboard_bus_frames_total", "counter", _BUS_FRAMES, "way", frames)
    entries = {"out": stats.entries_out, "in": stats.entries_in}
    page.by_label("switchboard_bus_entries_total", "counter", _BUS_ENTRIES, "way", entries)
    page.single("switchboard_bus_pipelines_total", "counter", _BUS_PIPELINES, stats.pipelines)
    largest = stats.largest_pipeline
    page.single("switchboard_bus_largest_pipeline", "gauge", _BUS_LARGEST, largest)
    page.single("switchboard_bus_dropped_total", "counter", _BUS_DROPPED, stats.dropped)
    page.single("switchboard_bus_bad_entries_total", "counter", _BUS_BAD, stats.bad_entries)
    page.single("switchboard_bus_gaps_total", "counter", _BUS_GAPS, stats.gaps)
    page.single("switchboard_bus_refused_total", "counter", _BUS_REFUSED, stats.refused)
    writes, reads = stats.presence_writes, stats.presence_reads
    page.single("switchboard_bus_presence_writes_total", "counter", _BUS_PRESENCE_OUT, writes)
    page.single("switchboard_bus_presence_reads_total", "counter", _BUS_PRESENCE_IN, reads)
    page.single("switchboard_bus_late_answers_total", "counter", _BUS_LATE, stats.late_answers)
    alone = bus.logins.asks.unanswered
    page.single("switchboard_bus_unanswered_logins_total", "counter", _BUS_UNANSWERED, alone)
    lag = round(stats.lag_ms / 1000, 6)
    page.single("switchboard_bus_inbox_lag_seconds", "gauge", _BUS_LAG, lag)
    page.single("switchboard_bus_nodes", "gauge", _BUS_NODES, bus.nodes)
    page.single("switchboard_bus_up", "gauge", _BUS_UP, int(bus.up))
    _fences(page, bus)


def _fences(page: _Page, bus: RedisBus) -> None:
    """A node cut off from Redis fences itself (docs/protocol.md 12.39)."""
    stats, now = bus.stats, bus.standing.value
    standing = {name: int(name == now) for name in ("up", "fenced", "dead")}
    page.by_label("switchboard_bus_standing", "gauge", _BUS_STANDING, "standing", standing)
    page.single("switchboard_bus_fences_total", "counter", _BUS_FENCES, stats.fences)
    page.single("switchboard_bus_rejoins_total", "counter", _BUS_REJOINS, stats.rejoins)
    unsent = stats.fenced_frames
    page.single("switchboard_bus_fenced_frames_total", "counter", _BUS_UNSENT, unsent)
    page.single("switchboard_bus_resets_total", "counter", _BUS_RESETS, stats.resets)
    page.single("switchboard_bus_stale_entries_total", "counter", _BUS_STALE, stats.stale)


def _logins(page: _Page, status: SwitchStatus) -> None:
    page.single(
        "switchboard_login_failures_total", "counter", _LOGIN_FAILURES, status.login_failures
    )
    throttled = {"pair": 0, "account": 0, "address": 0, **status.login_throttled}
    page.by_label("switchboard_login_throttled_total", "counter", _THROTTLED, "budget", throttled)
    keys = status.throttle_keys
    page.by_label("switchboard_login_throttle_keys", "gauge", _THROTTLE_KEYS, "kind", keys)


class _Page:
    """The text being written: for each metric its HELP and TYPE lines, then its samples."""

    def __init__(self) -> None:
        self._lines: list[str] = []

    def metric(self, name: str, kind: str, help_text: str, samples: Iterable[str]) -> None:
        self._lines.append(f"# HELP {name} {help_text}")
        self._lines.append(f"# TYPE {name} {kind}")
        self._lines.extend(samples)

    def single(self, name: str, kind: str, help_text: str, value: float) -> None:
        self.metric(name, kind, help_text, [f"{name} {value}"])

    def by_label(
        self,
        name: str,
        kind: str,
        help_text: str,
        label: str,
        counts: Mapping[str, int],
        *,
        ordered: bool = True,
    ) -> None:
        """One sample per label value; sorted by it unless ``ordered`` is false."""
        items = sorted(counts.items()) if ordered else counts.items()
        self.metric(name, kind, help_text, [f'{name}{{{label}="{k}"}} {v}' for k, v in items])

    def text(self) -> str:
        return "\n".join(self._lines) + "\n"


_CONNECTIONS = "Open client WebSocket connections."
_REGISTRATIONS = "Registered devices."
_CALLS = "Chat calls in progress."
_MESSAGES = "Chat messages accepted from clients."
_STORED = "Messages the messages service has stored."
_OUTBOX = "Messages waiting in the hub's outbox."
_ERRORS = "Error replies sent to clients, by code."
_HELD = (
    "What the hub keeps in memory, by kind; all 0 once no connection is open and "
    "the resume grace is over."
)
_LOGIN_FAILURES = "Client logins refused for a wrong password or an unknown account."
_THROTTLED = (
    "Client logins answered throttled, by the budget that was spent (pair: refused "
    "before the password was checked; account, address: a wrong password)."
)
_THROTTLE_KEYS = (
    "Entries the login throttle keeps, by kind: (address, account) pairs, accounts, addresses."
)
_SENDER_IDS = "Ids of stored messages the hub remembers per sender, across calls (docs 12.21)."
_RESENDS = (
    "Messages resent with an id already stored, by who recognised them (hub: answered "
    "from memory, nothing relayed; service: stored nothing, the ack was corrected)."
)
_FRAME_SECONDS = "Time the hub takes over one frame from a client (relay latency inside the hub)."
_GC_PAUSE_SECONDS = (
    "Time each garbage collection held the process, by generation (2: a full one; the "
    "hub freezes what outlives it, so it walks only what is new)."
)
_BUS_FRAMES = "Frames between this node and the others, by way (cluster)."
_BUS_ENTRIES = "Inbox stream entries between this node and the others (several frames each)."
_BUS_PIPELINES = "Redis pipelines this node's bus wrote (one per writer turn)."
_BUS_LARGEST = "Most frames one of this node's pipelines carried."
_BUS_DROPPED = "Frames dropped because Redis was unreachable and too many waited."
_BUS_BAD = "Inbox entries dropped: malformed, or the switch could not take them."
_BUS_GAPS = "Times entries from another node went missing (its calls here then end)."
_BUS_REFUSED = "Redis commands answered with an error (a key of the wrong type, out of memory)."
_BUS_PRESENCE_OUT = "Changes of this node's share of users' presence written (0/1, publishes)."
_BUS_PRESENCE_IN = "Users' presence read from Redis (a new subscriber, a change, a reconnect)."
_BUS_LATE = "RegisterResults sent after cluster.answer_wait without Redis having taken the write."
_BUS_UNANSWERED = (
    "Login questions (a login's count, a visitor account) Redis did not answer within "
    "cluster.answer_wait or that were not asked (fenced): decided by this node's counts."
)
_BUS_LAG = "Age of the last inbox entry when it was read (Redis's clock against this node's)."
_BUS_NODES = "Hub nodes this node knows of, itself included."
_BUS_UP = "1 while the heartbeat works and the inbox is read, else 0."
_BUS_STANDING = (
    "1 for this node's standing in the cluster: up, fenced (it could not renew its lease "
    "and stopped its work with other nodes; back once Redis answers) or dead (declared dead "
    "by the others: restart it)."
)
_BUS_FENCES = "Times this node fenced itself (its lease not renewed for lease - heartbeat)."
_BUS_REJOINS = "Times this node came back from a fence without having been declared dead."
_BUS_UNSENT = "Frames for other nodes not sent because this node was fenced (their calls ended)."
_BUS_RESETS = "Other nodes' returns from a fence heard (the calls with them ended here)."
_BUS_STALE = "Inbox entries dropped: written before their sender knew this node had fenced itself."
