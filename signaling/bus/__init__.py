"""The way between switches: the interface the in-memory bus implements (``interface``),
the in-memory bus that wires several ``Switch`` objects in one process for tests
(``memory``), and the Redis bus between hub processes (``redis_bus``; the hub hands it
each cluster action with ``take`` as it carries out the rest itself)."""

from .interface import Bus
from .memory import MemoryBook, MemoryBus

__all__ = ["Bus", "MemoryBook", "MemoryBus"]
