"""The bus's errors: one root, each with the code that goes into logs and ``/healthz``."""

from __future__ import annotations

__all__ = ["BadFrame", "BusError", "BusUnreachable", "NodeNameTaken"]


class BusError(Exception):
    code = "bus_error"
    setting = "cluster.redis"
    """The setting an operator looks at when this stops a node from starting."""


class BadFrame(BusError):
    """An inbox entry that is not what a switch sends: dropped whole, logged."""

    code = "bad_frame"


class BusUnreachable(BusError):
    """Redis did not answer when the node started."""

    code = "bus_unreachable"


class NodeNameTaken(BusError):
    """Another live node holds this node's name: the second one must not start."""

    code = "node_name_taken"
    setting = "server.node"
