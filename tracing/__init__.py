"""Per-subsystem trace flags switched at run time (PROTOCOL §10.1): a ``Tracer`` that code
asks before it builds a trace line, a bounded ring of redacted records, and an optional
rotating file; and ``tracing.logs``, the logging set-up that puts the connection id on
every log line. Imports nothing of Switchboard, so every package may use it."""

from .redact import redact
from .tracer import SUBSYSTEMS, TraceFilter, Tracer, TraceRecord

__all__ = ["SUBSYSTEMS", "TraceFilter", "TraceRecord", "Tracer", "redact"]
