"""The sans-I/O signaling core: codec, call state table, registry, chat calls, limits.

Nothing in this package awaits or touches a socket; ``Switch`` takes events and returns
the actions to carry out.
"""

from .actions import Action, Close, Send
from .clock import Clock, ManualClock, SystemClock
from .switch import Switch

__all__ = ["Action", "Clock", "Close", "ManualClock", "Send", "Switch", "SystemClock"]
