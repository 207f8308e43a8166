"""Per-subsystem trace flags switched at run time (PROTOCOL §10.1). Not part of this
release yet; the hub logs through the standard ``logging`` module meanwhile."""

__all__: list[str] = []
