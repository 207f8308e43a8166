"""The bus's errors: one root, each with the code that goes into logs and ``/healthz``."""

from __future__ import annotations

__all__ = ["BadFrame", "BusError", "NodeNameTaken"]


class BusError(Exception):
    code = "bus_error"


class BadFrame(BusError):
    """An inbox entry that is not what a switch sends: dropped whole, logged."""

    code = "bad_frame"


class NodeNameTaken(BusError):
    """Another live node holds this node's name: the second one must not start."""

    code = "node_name_taken"
