"""``GET /metrics`` of a messages service run on its own (``--role messages``), in the
Prometheus text format (version 0.0.4), as the hub's: gauges read when scraped, counters
the service already keeps. A service embedded in a hub has no route of its own: the
hub's ``/metrics`` describes the process."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["ServiceFigures", "render"]


@dataclass(frozen=True, slots=True)
class ServiceFigures:
    """What the service tells ``/metrics`` (``MessagesService.figures``)."""

    hubs: int
    posts: int
    batches: int
    refused: int
    waiting: int
    replicas_up: bool | None
    """None without ``messages.replicas``."""


_HELP = (
    ("switchboard_service_hubs", "gauge", "hub connections logged in", "hubs"),
    ("switchboard_service_posts_total", "counter", "Posts answered stored", "posts"),
    ("switchboard_service_batches_total", "counter", "transactions committed", "batches"),
    ("switchboard_service_refused_total", "counter", "Posts answered unavailable", "refused"),
    ("switchboard_service_waiting", "gauge", "Posts queued for the database", "waiting"),
)


def render(figures: ServiceFigures) -> str:
    return "".join(f"{line}\n" for line in _lines(figures))


def _lines(figures: ServiceFigures) -> Iterator[str]:
    for name, kind, text, field in _HELP:
        yield f"# HELP {name} {text}"
        yield f"# TYPE {name} {kind}"
        yield f"{name} {getattr(figures, field)}"
    if figures.replicas_up is not None:
        name = "switchboard_service_replicas_up"
        yield f"# HELP {name} 1 while this replica hears the others (messages.replicas)"
        yield f"# TYPE {name} gauge"
        yield f"{name} {int(figures.replicas_up)}"
