"""``GET /metrics`` in the Prometheus text format (version 0.0.4).

Gauges are read when scraped (connections, registrations, calls, the outbox's depth, the
login throttle's entries); counters are plain integers the code already keeps (messages
accepted, Posts stored, errors by code, wrong passwords, throttled logins); the one
histogram, how long the hub takes over a frame from a client (parse, route, queue every
frame it causes), is observed by the hub itself.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable

__all__ = ["FrameTimes", "render"]

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

    def lines(self, name: str) -> Iterable[str]:
        running = 0
        for bound, count in zip(BUCKETS, self.counts, strict=False):
            running += count
            yield f'{name}_bucket{{le="{bound}"}} {running}'
        yield f'{name}_bucket{{le="+Inf"}} {self.count}'
        yield f"{name}_sum {self.total:.6f}"
        yield f"{name}_count {self.count}"


def render(
    *,
    connections: int,
    registrations: int,
    calls: int,
    messages: int,
    stored: int,
    outbox_depth: int,
    errors: dict[str, int],
    frame_times: FrameTimes,
    login_failures: int,
    login_throttled: dict[str, int],
    throttle_keys: dict[str, int],
    sender_ids: int = 0,
    resends: dict[str, int] | None = None,
    held: dict[str, int] | None = None,
) -> str:
    out: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: Iterable[str]) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")
        out.extend(samples)

    metric(
        "switchboard_connections",
        "gauge",
        "Open client WebSocket connections.",
        [f"switchboard_connections {connections}"],
    )
    metric(
        "switchboard_registrations",
        "gauge",
        "Registered devices.",
        [f"switchboard_registrations {registrations}"],
    )
    metric("switchboard_calls", "gauge", "Chat calls in progress.", [f"switchboard_calls {calls}"])
    metric(
        "switchboard_messages_total",
        "counter",
        "Chat messages accepted from clients.",
        [f"switchboard_messages_total {messages}"],
    )
    metric(
        "switchboard_messages_stored_total",
        "counter",
        "Messages the messages service has stored.",
        [f"switchboard_messages_stored_total {stored}"],
    )
    metric(
        "switchboard_outbox_depth",
        "gauge",
        "Messages waiting in the hub's outbox.",
        [f"switchboard_outbox_depth {outbox_depth}"],
    )
    metric(
        "switchboard_errors_total",
        "counter",
        "Error replies sent to clients, by code.",
        [
            f'switchboard_errors_total{{code="{code}"}} {count}'
            for code, count in sorted(errors.items())
        ],
    )
    if held is not None:
        metric(
            "switchboard_held",
            "gauge",
            "What the hub keeps in memory, by kind; all 0 once no connection is open and "
            "the resume grace is over.",
            [f'switchboard_held{{what="{what}"}} {count}' for what, count in held.items()],
        )
    metric(
        "switchboard_login_failures_total",
        "counter",
        "Client logins refused for a wrong password or an unknown account.",
        [f"switchboard_login_failures_total {login_failures}"],
    )
    throttled = {"pair": 0, "account": 0, "address": 0, **login_throttled}
    metric(
        "switchboard_login_throttled_total",
        "counter",
        "Client logins answered throttled, by the budget that was spent (pair: refused "
        "before the password was checked; account, address: a wrong password).",
        [
            f'switchboard_login_throttled_total{{budget="{budget}"}} {count}'
            for budget, count in sorted(throttled.items())
        ],
    )
    metric(
        "switchboard_login_throttle_keys",
        "gauge",
        "Entries the login throttle keeps, by kind: (address, account) pairs, accounts, addresses.",
        [
            f'switchboard_login_throttle_keys{{kind="{kind}"}} {count}'
            for kind, count in sorted(throttle_keys.items())
        ],
    )
    metric(
        "switchboard_sender_ids",
        "gauge",
        "Ids of stored messages the hub remembers per sender, across calls (docs 12.21).",
        [f"switchboard_sender_ids {sender_ids}"],
    )
    answered = {"hub": 0, "service": 0, **(resends or {})}
    metric(
        "switchboard_resends_total",
        "counter",
        "Messages resent with an id already stored, by who recognised them (hub: answered "
        "from memory, nothing relayed; service: stored nothing, the ack was corrected).",
        [
            f'switchboard_resends_total{{by="{by}"}} {count}'
            for by, count in sorted(answered.items())
        ],
    )
    metric(
        "switchboard_frame_seconds",
        "histogram",
        "Time the hub takes over one frame from a client (relay latency inside the hub).",
        frame_times.lines("switchboard_frame_seconds"),
    )
    return "\n".join(out) + "\n"
