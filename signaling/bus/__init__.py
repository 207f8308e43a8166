"""The way between switches: the interface a transport implements (``interface``) and
the in-memory one that wires several ``Switch`` objects in one process for tests
(``memory``). A Redis transport implements the same interface later (SCALE.md)."""

from .interface import Bus
from .memory import MemoryBook, MemoryBus

__all__ = ["Bus", "MemoryBook", "MemoryBus"]
